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


def _same_map_problem(answer: Any, reference: torch.Tensor, call: str, shape_hint: str) -> str | None:
    """Why what `call` returned is not a map of `reference`'s shape (leading 1s dropped) with finite values; None if
    it is."""
    if answer is None:
        return f"{call} returned None: end the function with `return`"
    tensor = _as_tensor(answer)
    if tensor is None:
        return f"{call} should return a tensor, not a {type(answer).__name__}"
    while tensor.ndim > reference.ndim and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tuple(tensor.shape) != tuple(reference.shape):
        return f"{call} returned shape {tuple(tensor.shape)}, expected {tuple(reference.shape)}: {shape_hint}"
    if not tensor.isfinite().all():
        return f"{call} returned NaN or infinite values"
    return None


def _call(function: Any, definition: str, call: str, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """(what the student's `function(*args, **kwargs)` returns, None), or (None, why it gave no answer), where
    `definition` is how the exercise names the function and `call` how this call reads."""
    import torch

    name = definition.split("(")[0]
    if function is None:
        return None, f"{name} is still None: define the function {definition} in the exercise cell"
    if not callable(function):
        return None, (f"{name} should be a function {definition}, not a {type(function).__name__}: the check calls it "
                      "on inputs of its own")
    try:
        with torch.enable_grad():
            return function(*args, **kwargs), None
    except Exception as error:  # the student's code: any error is an answer to report, not a crash
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return None, f"{call} raised {type(error).__name__}" + (f": {message}" if message else "")


def check_convolution(my_conv: Any, exercise: int | str = 1) -> bool:
    """Check `my_conv(image, kernel)`, the lecture's convolution of an (H, W) image with a 3 x 3 kernel, zero padded to
    the image's size, on an image and kernel of the check's own; True when correct.

    Both index conventions are accepted: the kernel's centre at (0, 0) (the output centred on each pixel, as
    `F.conv2d(..., padding=1)` places it) and the formula read literally with indices from 0 (the same values, one
    pixel further down and right).
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(1998)
    image, kernel = torch.rand(7, 10, generator=generator), torch.randn(3, 3, generator=generator)
    signature = "my_conv(image, kernel)"
    answer, problem = _call(my_conv, signature, signature, image.clone(), kernel.clone())
    if problem is None:
        # full[x, y] = sum over i, j from 0 of image[x - i, y - j] * kernel[i, j], zero outside the image
        full = F.conv2d(image[None, None], kernel.flip(0, 1)[None, None], padding=2)[0, 0]
        centred, literal = full[1:-1, 1:-1], full[:-2, :-2]
        problem = _same_map_problem(answer, centred, signature, f"zero padding keeps the size of the check's "
                                    f"{image.shape[0]} x {image.shape[1]} image: pad it by 1 pixel on every side")
    if problem is None:
        tensor = _as_tensor(answer).reshape(centred.shape)
        tolerance = 1e-4 * float(full.abs().max())
        if min(float((tensor - centred).abs().max()), float((tensor - literal).abs().max())) > tolerance:
            cross = F.conv2d(image[None, None], kernel[None, None], padding=1)[0, 0]
            if (tensor - cross).abs().max() <= tolerance:
                problem = ("that is the cross-correlation F.conv2d computes; the lecture's formula reads the image at "
                           "x - i, y - j: turn the kernel by 180 degrees")
            else:
                wrong = (tensor - centred).abs() > tolerance
                row, column = (int(v) for v in wrong.nonzero()[0])
                problem = (f"on the check's {image.shape[0]} x {image.shape[1]} image, {int(wrong.sum())} of "
                           f"{wrong.numel()} values differ, the first at row {row}, column {column}: check which "
                           "pixel each kernel entry multiplies")
    return report_check(exercise, problem)


def check_top5(my_top5: Any, exercise: int | str = 2) -> bool:
    """Check `my_top5(probs, categories, k=5)`, each row's k most probable class names, most probable first, on
    probabilities and class names of the check's own, for k = 5 and k = 3; True when correct."""
    import torch

    generator = torch.Generator().manual_seed(2015)
    probs = torch.randn(3, 12, generator=generator).mul(2).softmax(dim=1)
    categories = [f"class {i}" for i in range(probs.shape[1])]
    problem = None
    for k in (5, 3):
        signature = "my_top5(probs, categories)" if k == 5 else "my_top5(probs, categories, k=3)"
        answer, problem = _call(my_top5, "my_top5(probs, categories, k=5)", signature, probs.clone(), list(categories),
                                **({} if k == 5 else {"k": k}))
        if problem is None:
            problem = _names_problem(answer, probs, categories, k, signature)
        if problem is not None:
            break
    return report_check(exercise, problem)


def _names_problem(answer: Any, probs: torch.Tensor, categories: Sequence[str], k: int, signature: str) -> str | None:
    """Why `answer` is not one list of the `k` most probable `categories` per row of `probs`, most probable first."""
    import torch

    if not isinstance(answer, (list, tuple)) or len(answer) != len(probs):
        return (f"{signature} should return a list of {len(probs)} lists, one per row of probs, "
                f"not {type(answer).__name__}" + (f" of length {len(answer)}" if hasattr(answer, "__len__") else ""))
    position = {name: index for index, name in enumerate(categories)}
    best = torch.topk(probs, k=k, dim=1).values
    for row, names in enumerate(answer):
        if not isinstance(names, (list, tuple)) or len(names) != k:
            return f"{signature}, row {row}: expected a list of {k} class names"
        if not all(isinstance(name, str) for name in names):
            return f"{signature}, row {row}: expected class names (strings): look each index up in categories"
        if unknown := [name for name in names if name not in position]:
            return f"{signature}, row {row}: {unknown[0]!r} is not one of the categories given to my_top5"
        chosen = probs[row, [position[name] for name in names]]
        if torch.equal(chosen, best[row]):
            continue
        if torch.equal(chosen.sort(descending=True).values, best[row]):
            return f"{signature}, row {row}: the right classes, but list them from the most probable down"
        return (f"{signature}, row {row}: not the {k} most probable classes: sort the row's probabilities, largest "
                f"first, and keep the first {k}")
    return None


def check_gradcam(my_gradcam: Any, model: torch.nn.Module, layer: torch.nn.Module, exercise: int | str = 4) -> bool:
    """Check `my_gradcam(model, layer, x, target)`, the Grad-CAM map at `layer` of a (1, 3, H, W) input for one class,
    against Captum's on an input and classes of the check's own; True when correct.

    The classes are chosen so that the maps before ReLU have positive values (to compare) and negative ones (so that
    a missing ReLU shows): one class where one map has both.
    """
    import torch
    from captum.attr import LayerGradCam

    parameter = next(model.parameters())
    generator = torch.Generator().manual_seed(2017)
    x = torch.randn(1, 3, 160, 160, generator=generator).to(device=parameter.device, dtype=parameter.dtype)
    gradcam = LayerGradCam(model, layer)
    with torch.no_grad():
        logits = model(x)[0]
    order = torch.randperm(len(logits), generator=generator)[:21].tolist()
    candidates = [c for c in order if c != int(logits.argmax())][:20]  # classes at random, not the top-1
    chosen: dict[str, tuple[int, torch.Tensor]] = {}
    with torch.enable_grad():
        for target in candidates:
            signed = gradcam.attribute(x, target=target)[0, 0].detach().float().cpu()
            for sign, present in (("positive", (signed > 0).any()), ("negative", (signed < 0).any())):
                if present and sign not in chosen:
                    chosen[sign] = (target, signed)
            if len(chosen) == 2:
                break
    signature = "my_gradcam(model, layer, x, target)"
    problem = None
    cases = dict(chosen.values()) or {target: signed}  # every map all zero: the last class tried
    for case, before_relu in cases.items():
        answer, problem = _call(my_gradcam, signature, signature, model, layer, x.clone(), case)
        if problem is None:
            problem = _cam_problem(answer, before_relu, signature, tuple(x.shape[-2:]))
        if problem is not None:
            break
    return report_check(exercise, problem)


def _cam_problem(answer: Any, before_relu: torch.Tensor, signature: str, size: tuple[int, int]) -> str | None:
    """Why `answer` is not (close to) the Grad-CAM map whose values before ReLU are `before_relu`, for an input of
    `size`; None if it is."""
    reference = before_relu.relu()
    problem = _same_map_problem(answer, reference, signature, "one value per position of layer's output, which is "
                                f"{reference.shape[0]} x {reference.shape[1]} for the check's {size[0]} x {size[1]} "
                                "input")
    if problem is not None:
        return problem
    tensor = _as_tensor(answer).reshape(reference.shape)
    tolerance = 0.05 * before_relu.abs().max().clamp(min=1e-6)  # room for half precision on a GPU
    if (tensor < 0).any():
        return "the map has negative values: Grad-CAM keeps only the positive part (ReLU)"
    if (tensor - reference).abs().max() <= tolerance:
        return None
    ratio = float(tensor.sum() / reference.sum().clamp(min=1e-12))
    if reference.sum() > 0 and ratio > 1.5 and (tensor - ratio * reference).abs().max() <= tolerance * ratio:
        return (f"the map is {ratio:.3g} times Captum's: average the gradients over the positions (mean, not sum) to "
                "get each channel's weight")
    return ("the map differs from Captum's: take the gradient of class `target`'s logit, weight each channel of the "
            "layer's output by the mean of its gradient over the positions, sum over the channels, then apply ReLU")
