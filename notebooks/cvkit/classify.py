"""Helpers for Lab 1: what the centre crop keeps, model inputs as pictures, the lab's tables and figures, and the
checks of its exercises."""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from .checks import report_check

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from pandas.io.formats.style import Styler

__all__ = [
    "crop_box", "show_crops", "pad_to_keep_whole", "to_picture",
    "top5_table", "classification_scorecard", "highlight_hits", "show_heatmap",
    "show_feature_maps", "show_cams", "check_convolution", "check_top5", "check_gradcam",
]

HIT, MISS = "background-color: #c6efce; color: #006100", "background-color: #ffc7ce; color: #9c0006"


def crop_box(size: tuple[int, int], preprocess: Any) -> tuple[float, float, float, float]:
    """The (left, top, right, bottom) box of an image of `size` (width, height) that `preprocess`'s resize and centre
    crop keep, in the image's own pixels."""
    width, height = size
    scale = preprocess.resize_size[0] / min(width, height)  # the short side goes to resize_size
    side = min(preprocess.crop_size[0] / scale, width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def show_crops(images: Sequence[Image.Image], preprocess: Any, titles: Sequence[str] | None = None,
               ncols: int = 6, size: float = 2.6) -> None:
    """Show each image with what the centre crop of `preprocess` throws away dimmed and the kept square framed."""
    from .plots import show_grid

    framed = []
    for image in images:
        box = crop_box(image.size, preprocess)
        shown = Image.blend(image, Image.new("RGB", image.size, (0, 0, 0)), 0.6)
        shown.paste(image.crop(tuple(round(v) for v in box)), (round(box[0]), round(box[1])))
        ImageDraw.Draw(shown).rectangle(box, outline=(255, 215, 0), width=max(2, round(min(image.size) / 100)))
        framed.append(shown)
    show_grid(framed, titles, ncols=ncols, size=size)


def pad_to_keep_whole(image: Image.Image, preprocess: Any, fill: tuple[int, int, int] | None = None) -> Image.Image:
    """The image centred on a square canvas so large that `preprocess`'s resize and centre crop keep all of it.

    The canvas is filled with the normalisation's mean colour by default, which the model receives as zeros.
    """
    if fill is None:
        fill = tuple(round(255 * m) for m in preprocess.mean)
    side = ceil(max(image.size) * preprocess.resize_size[0] / preprocess.crop_size[0]) + 2
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def to_picture(tensor: torch.Tensor, preprocess: Any) -> np.ndarray:
    """A normalised (3, H, W) model input as an (H, W, 3) picture in [0, 1], for display."""
    import torch

    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    return (tensor.detach().float().cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def top5_table(index: Sequence[str], names: Sequence[Sequence[str]], probs: Any) -> Styler:
    """One row per image: its k classes with their probabilities, each cell shaded by its probability."""
    import numpy as np
    import pandas as pd

    probs = np.asarray(probs, dtype=float)
    if probs.shape != (len(index), len(names[0])) or any(len(row) != probs.shape[1] for row in names):
        raise ValueError(f"expected {len(index)} rows of {len(names[0])} names and probabilities, got {probs.shape}")
    cells = [[f"{n} ({p:.2f})" for n, p in zip(row_names, row_probs)] for row_names, row_probs in zip(names, probs)]
    table = pd.DataFrame(cells, index=list(index), columns=[f"top-{k + 1}" for k in range(probs.shape[1])])
    return table.style.background_gradient(cmap="Blues", gmap=probs, axis=None, vmin=0.0, vmax=1.0)


def classification_scorecard(
    index: Sequence[str], names: Sequence[Sequence[str]], expected: Sequence[Sequence[str]]
) -> pd.DataFrame:
    """One row per image: the accepted labels, the top-1 class, and whether top-1 and the top 5 hold an accepted one."""
    import pandas as pd

    rows = []
    for row_names, accepted in zip(names, expected, strict=True):
        rows.append({
            "expected": " | ".join(accepted),
            "top-1": row_names[0],
            "top-1 hit": row_names[0] in accepted,
            "top-5 hit": any(name in accepted for name in row_names[:5]),
        })
    return pd.DataFrame(rows, index=list(index))


def highlight_hits(table: pd.DataFrame) -> Styler:
    """The table with its True cells green and its False cells red (boolean columns only)."""
    flags = [column for column in table.columns if table[column].dtype == bool]
    return table.style.map(lambda value: HIT if value else MISS, subset=flags)


def show_heatmap(table: pd.DataFrame, title: str, label: str) -> None:
    """Show a numeric table as a heatmap, rows and columns named, values written in the cells when they fit."""
    import matplotlib.pyplot as plt
    import numpy as np

    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * values.shape[1] + 3), max(3.0, 0.4 * values.shape[0] + 1.5)))
    shown = ax.imshow(values, cmap="viridis", aspect="auto", vmin=0.0)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns], rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), [str(i) for i in table.index])
    if values.size <= 200:
        middle = (values.max() + max(values.min(), 0.0)) / 2
        for (row, column), value in np.ndenumerate(values):
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value > middle else "white")
    fig.colorbar(shown, ax=ax, label=label)
    ax.set_title(title)
    fig.tight_layout()
    plt.show()


def show_feature_maps(picture: Any, features: dict[str, torch.Tensor], n: int = 8, size: float = 1.9) -> None:
    """Show the picture, then per feature map (1, C, H, W) one row of its `n` channels with the largest mean."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(features), n + 1, figsize=(size * (n + 1), size * len(features) + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, feature) in zip(axes, features.items()):
        maps = feature.detach().float().cpu()[0]
        strongest = maps.mean(dim=(1, 2)).argsort(descending=True)[:n].tolist()
        row[0].imshow(picture)
        row[0].set_title(f"{name}: {maps.shape[0]} maps of {maps.shape[1]} x {maps.shape[2]}", fontsize=9, loc="left")
        for ax, channel in zip(row[1:], strongest):
            ax.imshow(maps[channel].numpy(), cmap="viridis")
            ax.set_title(f"channel {channel}", fontsize=9)
    fig.tight_layout()
    plt.show()


def show_cams(pictures: Sequence[Any], cams: Any, titles: Sequence[str] | None = None, ncols: int = 6,
              size: float = 2.6) -> None:
    """Show each (H, W, 3) picture under its class activation map (N, 1, H, W), each map scaled to its maximum and
    drawn more opaque where it is higher."""
    import matplotlib.pyplot as plt
    import numpy as np

    maps = np.asarray(cams.detach().float().cpu() if hasattr(cams, "detach") else cams, dtype=float)[:, 0]
    if len(maps) != len(pictures):
        raise ValueError(f"got {len(pictures)} pictures but {len(maps)} maps")
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    ncols = max(1, min(ncols, len(pictures)))
    fig, axes = plt.subplots(-(-len(pictures) // ncols), ncols, figsize=(size * ncols, size * -(-len(pictures) // ncols)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, picture) in enumerate(zip(axes.flat, pictures)):
        scaled = np.clip(maps[i] / peaks[i], 0.0, 1.0) if peaks[i] > 0 else np.zeros_like(maps[i])
        ax.imshow(picture)
        ax.imshow(scaled, cmap="jet", alpha=0.6 * scaled, vmin=0.0, vmax=1.0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    plt.show()


# ------------------------------------------------------------------ exercise checks


def _as_tensor(answer: Any) -> torch.Tensor | None:
    """The answer as a float tensor on the CPU, or None if it is not array-like."""
    import torch

    try:
        return torch.as_tensor(answer.detach().cpu() if hasattr(answer, "detach") else answer).float()
    except (TypeError, ValueError, RuntimeError):
        return None


def _same_map_problem(answer: Any, reference: torch.Tensor, name: str, shape_hint: str) -> str | None:
    """Why `answer` is not (close to) `reference`'s values, in its shape once leading 1s are dropped; None if it is."""
    if answer is None:
        return f"{name} is still None: compute it in the exercise cell"
    tensor = _as_tensor(answer)
    if tensor is None:
        return f"{name} should be a tensor, not {type(answer).__name__}"
    while tensor.ndim > reference.ndim and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tuple(tensor.shape) != tuple(reference.shape):
        return f"{name} has shape {tuple(tensor.shape)}, expected {tuple(reference.shape)}: {shape_hint}"
    if not tensor.isfinite().all():
        return f"{name} holds NaN or infinite values"
    return None


def check_convolution(answer: Any, image: torch.Tensor, kernel: torch.Tensor, exercise: int | str = 1) -> bool:
    """Check a textbook convolution (kernel flipped) of the (1, 1, H, W) image with the (1, 1, k, k) kernel, zero padded
    to keep the size; True when correct."""
    import torch.nn.functional as F

    padding = kernel.shape[-1] // 2
    image, kernel = image.detach().float().cpu(), kernel.detach().float().cpu()
    reference = F.conv2d(image, kernel.flip(-2, -1), padding=padding)[0, 0]
    problem = _same_map_problem(answer, reference, "my_conv", f"pad the image by {padding} pixels on every side")
    if problem is None:
        tensor = _as_tensor(answer).reshape(reference.shape)
        scale = reference.abs().max().clamp(min=1e-6)
        if not ((tensor - reference).abs().max() <= 1e-4 * scale):
            cross = F.conv2d(image, kernel, padding=padding)[0, 0]
            if (tensor - cross).abs().max() <= 1e-4 * scale:
                problem = ("that is the cross-correlation F.conv2d computes; the lecture's formula reads the image at "
                           "x - i, y - j: turn the kernel by 180 degrees")
            else:
                wrong = (tensor - reference).abs() > 1e-4 * scale
                row, column = (int(v) for v in wrong.nonzero()[0])
                problem = (f"{int(wrong.sum())} of {wrong.numel()} values differ, the first at row {row}, column "
                           f"{column}: check which slice of the padded image each kernel entry multiplies")
    return report_check(exercise, problem)


def check_top5(answer: Any, probs: torch.Tensor, categories: Sequence[str], exercise: int | str = 2) -> bool:
    """Check one list of the 5 most probable class names per row of `probs`, most probable first; True when correct."""
    import torch

    probs = probs.detach().float().cpu()
    values, indices = torch.topk(probs, k=5, dim=1)
    problem = None
    if answer is None:
        problem = "my_top5 is still None: make it a list with one list of 5 class names per image"
    elif not isinstance(answer, (list, tuple)) or len(answer) != len(probs):
        problem = f"my_top5 should be a list of {len(probs)} lists (one per image), got {type(answer).__name__}"
    else:
        where = {}
        for index, name in enumerate(categories):
            where.setdefault(name, []).append(index)
        for row, (names, best) in enumerate(zip(answer, values)):
            if not isinstance(names, (list, tuple)) or len(names) != 5 or not all(isinstance(n, str) for n in names):
                problem = f"image {row}: expected a list of 5 class names (strings)"
            elif unknown := [name for name in names if name not in where]:
                problem = f"image {row}: {unknown[0]!r} is not one of the model's categories: index `categories`"
            else:
                chosen = torch.stack([probs[row, where[name]].max() for name in names])
                if torch.allclose(chosen, best, rtol=0, atol=1e-7):
                    continue
                if torch.allclose(chosen.sort(descending=True).values, best, rtol=0, atol=1e-7):
                    problem = f"image {row}: the right classes, but list them from the most probable down"
                else:
                    problem = (f"image {row}: not the 5 most probable classes: sort each row of the probabilities, "
                               "largest first, and take the first 5")
            break
    return report_check(exercise, problem)


def check_gradcam(answer: Any, reference: torch.Tensor, exercise: int | str = 4) -> bool:
    """Check a Grad-CAM map computed by hand against the library's (h, w) map of the same image and class; True when
    correct."""
    reference = reference.detach().float().cpu()
    while reference.ndim > 2 and reference.shape[0] == 1:
        reference = reference[0]
    problem = _same_map_problem(answer, reference, "my_cam", "one value per position of the layer4 feature maps")
    if problem is None:
        tensor = _as_tensor(answer).reshape(reference.shape)
        tolerance = 0.05 * reference.abs().max().clamp(min=1e-6)  # room for half precision on a GPU
        if (tensor < 0).any():
            problem = "my_cam has negative values: Grad-CAM keeps only the positive part (ReLU)"
        elif not ((tensor - reference).abs().max() <= tolerance):
            ratio = tensor.sum() / reference.sum().clamp(min=1e-12)
            if reference.sum() > 0 and ((tensor - ratio * reference).abs().max() <= tolerance * max(1.0, float(ratio))):
                problem = (f"my_cam is {float(ratio):.3g} times the reference: average the gradients over the "
                           "positions (mean, not sum) to get each channel's weight")
            else:
                problem = ("my_cam differs from Captum's map: weight each channel of layer4's output by the mean of "
                           "its gradient, sum over the channels, then apply ReLU")
    return report_check(exercise, problem)
