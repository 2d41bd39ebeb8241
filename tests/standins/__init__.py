"""Stand-in models: the real architectures with random weights, written where each library looks for weights.

The notebooks run unchanged against them; their predictions are meaningless and must never be shown as results.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "STANDIN"


def install_all(root: Path) -> dict[str, str]:
    """Write every lab's stand-in under `root`; return the environment variables that point the libraries there."""
    from . import fasterrcnn, resnet, siglip, yolo

    env: dict[str, str] = {}
    for module in (resnet, fasterrcnn, yolo, siglip):  # fasterrcnn after resnet: it adds to resnet's STANDIN file
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
