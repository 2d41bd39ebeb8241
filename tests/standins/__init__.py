"""Stand-in models: the real architectures with random weights, written where each library looks for weights.

The notebooks run unchanged against them; their predictions are meaningless and must never be shown as results.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "STANDIN"


def install_all(root: Path) -> dict[str, str]:
    """Write every lab's stand-in under `root`; return the environment variables that point the libraries there."""
    import importlib  # TEMPORARY while the labs are written

    env: dict[str, str] = {}
    for name in ("resnet", "yolo", "siglip"):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError:
            continue
        env.update(module.install(Path(root)))
    return env
