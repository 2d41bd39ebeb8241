"""An image grid, the plot every lab uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import KitError

__all__ = ["show_grid"]


def show_grid(images: Sequence[Any], titles: Sequence[str] | None = None, ncols: int = 4, size: float = 3.2) -> None:
    """Show images (PIL, HxWx3 RGB arrays or HxW grayscale arrays) in a grid with optional titles."""
    import matplotlib.pyplot as plt

    if not len(images):
        raise KitError("show_grid got no images")
    if titles is not None and len(titles) != len(images):
        raise KitError(f"show_grid got {len(images)} images but {len(titles)} titles: give one title per image")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, cmap="gray" if getattr(image, "ndim", 3) == 2 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    fig.tight_layout()
    plt.show()
