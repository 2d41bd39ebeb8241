"""Stand-in models: the real architectures with random weights, written where each library looks for weights.

The notebooks run unchanged against them; their predictions are meaningless and must never be shown as results.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "STANDIN"


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


def install_all(root: Path) -> dict[str, str]:
    """Write every lab's stand-in under `root`; return the environment variables that point the libraries there."""
    from . import clip, fasterrcnn, resnet, siglip, yolo

    env: dict[str, str] = {}
    for module in (resnet, fasterrcnn, yolo, siglip, clip):  # fasterrcnn after resnet: it adds to resnet's STANDIN file
        env.update(module.install(Path(root)))
    return env


def copy_to_kit_cache(cache: Path, labs=(1, 2, 3), keep_marker: bool = True) -> Path:
    """Lay this run's stand-ins out as a kit cache (as `make weights` would); without their markers they pass for
    real downloads, which is how the tests exercise the code that handles real weights."""
    import os
    import shutil

    root = Path(os.environ["CVKIT_STANDINS_ROOT"])
    folders = {1: ["torch"], 2: ["ultralytics", "torch"], 3: ["huggingface"]}  # lab 2 compares with Faster R-CNN
    for folder in dict.fromkeys(folder for lab in labs for folder in folders[lab]):
        shutil.copytree(root / folder, cache / folder, symlinks=True)
    if not keep_marker:
        for marker in cache.rglob(MARKER):
            marker.unlink()
    return cache
