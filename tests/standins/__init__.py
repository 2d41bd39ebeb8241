"""Stand-in models: the real architectures with random weights, written where each library looks for weights.

The notebooks run unchanged against them; their predictions are meaningless and must never be shown as results.
Each family (a module here) is built the first time a test needs it, once per test run, whichever process of the
run asks first (`ensure`); the others wait for it and then find it done.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

MARKER = "STANDIN"
FAMILIES = ("resnet", "fasterrcnn", "yolo", "siglip", "clip")  # the modules here, each with install(root)
FOLDERS = {"torch": ("resnet", "fasterrcnn"), "ultralytics": ("yolo",), "huggingface": ("siglip", "clip")}


def hub_snapshot(hf_home: Path, model_id: str) -> Path:
    """Make the hub-cache folders of `model_id` under `hf_home` (refs/main naming one snapshot); return the snapshot."""
    import hashlib

    repo = Path(hf_home) / "hub" / ("models--" + model_id.replace("/", "--"))
    commit = hashlib.sha1(f"cvkit stand-in for {model_id}".encode()).hexdigest()  # any 40-hex id will do
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def environment(root: Path) -> dict[str, str]:
    """The environment variables that point the libraries at the stand-ins under `root` (built or not yet)."""
    root = Path(root).resolve()
    return {"TORCH_HOME": str(root / "torch"), "HF_HOME": str(root / "huggingface"), "HF_HUB_OFFLINE": "1",
            "YOLO_CONFIG_DIR": str(root / "ultralytics"), "YOLO_OFFLINE": "1"}


def ensure(*families: str) -> None:
    """Build each of `families` under $CVKIT_STANDINS_ROOT unless this run has built it already (a lock per family
    makes every other process of the run wait for the one building it)."""
    import importlib

    from filelock import FileLock

    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"no stand-in family {sorted(unknown)}: choose among {FAMILIES}")
    root = Path(os.environ["CVKIT_STANDINS_ROOT"])
    for family in families:
        done = root / f".{family}.done"
        if done.exists():
            continue
        with FileLock(root / f".{family}.lock"):
            if not done.exists():
                import torch

                with torch.random.fork_rng(devices=[]):  # the seeds a stand-in sets stay out of the tests' own
                    importlib.import_module(f"{__name__}.{family}").install(root)
                done.touch()
    if "yolo" in families and "ultralytics.utils" in sys.modules:
        # ultralytics reads its settings file once, at import: if that was before the stand-ins existed, re-read it
        sys.modules["ultralytics.utils"].SETTINGS._load()


def copy_to_kit_cache(cache: Path, labs=(1, 2, 3), keep_marker: bool = True) -> Path:
    """Lay this run's stand-ins out as a kit cache (as `make weights` would); without their markers they pass for
    real downloads, which is how the tests exercise the code that handles real weights."""
    root = Path(os.environ["CVKIT_STANDINS_ROOT"])
    lab_folders = {1: ["torch"], 2: ["ultralytics", "torch"], 3: ["huggingface"]}  # lab 2 compares with Faster R-CNN
    folders = list(dict.fromkeys(folder for lab in labs for folder in lab_folders[lab]))
    ensure(*(family for folder in folders for family in FOLDERS[folder]))
    for folder in folders:
        shutil.copytree(root / folder, cache / folder, symlinks=True)
    if not keep_marker:
        for marker in cache.rglob(MARKER):
            marker.unlink()
    return cache
