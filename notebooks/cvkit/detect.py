"""Helpers for Lab 2 (object detection with ultralytics YOLO): the plot of the detector's grids.

The lesson itself (predicting, reading `Results`, the tables, NMS, IoU, the camera loop) is in the notebook's cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .core import KitError

__all__ = ["show_score_maps"]


def show_score_maps(image: Any, maps: Sequence[Any], titles: Sequence[str], size: float = 4.0) -> None:
    """Show the network's input image beside one heat map per grid (2-D scores in [0, 1]), on one colour scale."""
    import matplotlib.pyplot as plt
    import numpy as np

    if not maps or len(maps) != len(titles):
        raise KitError(f"show_score_maps needs one title per map, got {len(maps)} maps and {len(titles)} titles")
    arrays = [np.asarray(m.float().cpu() if hasattr(m, "float") else m, dtype=float) for m in maps]
    if any(a.ndim != 2 for a in arrays):
        raise KitError(f"each score map must be 2-D (rows x columns), got shapes {[a.shape for a in arrays]}")
    fig, axes = plt.subplots(1, len(arrays) + 1, figsize=(size * (len(arrays) + 1), size * 1.1))
    axes[0].imshow(image)
    axes[0].set_title("network input", fontsize=11)
    for ax, array, title in zip(axes[1:], arrays, titles):
        shown = ax.imshow(array, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=11)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=list(axes), fraction=0.02, pad=0.01, label="best class score")
    plt.show()
