"""Stand-in models: the real architectures with random weights, written where each library looks for weights.

The notebooks run unchanged against them; their predictions are meaningless and must never be shown as results.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "STANDIN"


def install_all(root: Path) -> dict[str, str]:
    """Write every lab's stand-in under `root`; return the environment variables that point the libraries there."""
    from . import resnet, siglip, yolo

    env: dict[str, str] = {}
    for module in (resnet, yolo, siglip):
        env.update(module.install(Path(root)))
    return env


def copy_to_kit_cache(cache: Path, labs=(1, 2, 3), keep_marker: bool = True) -> Path:
    """Lay this run's stand-ins out as a kit cache (as `make weights` would); without their markers they pass for
    real downloads, which is how the tests exercise the code that handles real weights."""
    import os
    import shutil

    weights_dir = json.loads((Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics" / "settings.json").read_text())[
        "weights_dir"]
    sources = {
        1: (Path(os.environ["TORCH_HOME"]), cache / "torch"),
        2: (Path(weights_dir), cache / "ultralytics" / "weights"),
        3: (Path(os.environ["HF_HOME"]) / "hub", cache / "huggingface" / "hub"),
    }
    for lab in labs:
        source, target = sources[lab]
        shutil.copytree(source, target, symlinks=True)
    if 2 in labs:  # its settings (weights_dir is re-pointed by cvkit.use_kit_cache) and fonts
        shutil.copytree(Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics", cache / "ultralytics" / "Ultralytics")
    if not keep_marker:
        for marker in cache.rglob(MARKER):
            marker.unlink()
    return cache
