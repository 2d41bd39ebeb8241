"""Helpers for Lab 2 (object detection with ultralytics YOLO): the plot of the detector's grids, boxes drawn with
torchvision, timing, and the checks of the lab's exercises.

The lesson itself (predicting, reading `Results`, the tables, NMS, IoU, Faster R-CNN beside YOLO, the camera loop) is in
the notebook's cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .checks import report_check
from .errors import KitError

__all__ = ["show_score_maps", "draw_boxes", "timed_runs", "check_iou_matrix", "check_people_threshold"]


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


def draw_boxes(image: Any, boxes: Any, labels: Sequence[str] | None = None, classes: Sequence[int] | None = None) -> Any:
    """Draw (x1, y1, x2, y2) boxes (and labels) on an RGB image with torchvision's draw_bounding_boxes, in ultralytics'
    colour of each class index as `Results.plot()` uses (red without classes); return an RGB uint8 array (H, W, 3)."""
    from pathlib import Path

    import matplotlib
    import numpy as np
    import torch
    from torchvision.utils import draw_bounding_boxes
    from ultralytics.utils.plotting import colors

    pixels = torch.from_numpy(np.array(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8))
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise KitError(f"draw_boxes needs an RGB image (H x W x 3), got shape {tuple(pixels.shape)}")
    boxes = torch.as_tensor(boxes, dtype=torch.float).detach().cpu().reshape(-1, 4)
    if (labels is not None and len(labels) != len(boxes)) or (classes is not None and len(classes) != len(boxes)):
        raise KitError(f"draw_boxes needs one label (and class) per box, got {len(boxes)} boxes and {len(labels)} labels")
    if not len(boxes):
        return pixels.numpy()
    height, width = pixels.shape[:2]
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"  # shipped with matplotlib
    palette = [colors(int(c)) for c in classes] if classes is not None else [(255, 0, 0)] * len(boxes)
    text = ["black" if 0.299 * r + 0.587 * g + 0.114 * b > 160 else "white" for r, g, b in palette]  # readable on it
    drawn = draw_bounding_boxes(
        pixels.permute(2, 0, 1), boxes, list(labels) if labels is not None else None, colors=palette,
        width=max(round((width + height) / 2 * 0.003), 2),  # ultralytics' line width for this image size
        font=str(font), font_size=max(round((width + height) / 2 * 0.022), 12),
        fill_labels=True, label_colors=text,
    )
    return drawn.permute(1, 2, 0).numpy()


def timed_runs(run: Callable[[Any], Any], inputs: Sequence[Any], device: Any = "cpu",
               warmup: int = 1) -> tuple[list[Any], list[float]]:
    """Call `run(x)` on each input after `warmup` untimed calls on the first; return the outputs and the seconds each
    call took (on CUDA, synchronised before and after each call, so that the GPU's work is inside the time)."""
    import time

    import torch

    if not len(inputs):
        raise KitError("timed_runs got no inputs")
    cuda = torch.device(device).type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):  # the first calls set things up (memory, kernels, caches): not what we want to time
        run(inputs[0])
    outputs, seconds = [], []
    for x in inputs:
        sync()
        start = time.perf_counter()
        outputs.append(run(x))
        sync()
        seconds.append(time.perf_counter() - start)
    return outputs, seconds


# ------------------------------------------------------------------ the exercises' checks


def _iou_problem(answer: Any, boxes_a: Any, boxes_b: Any) -> str | None:
    import torch
    from torchvision.ops import box_iou

    if answer is None:
        return "my_ious is still None: compute the IoU of every pair of boxes as one (N, M) tensor"
    try:
        got = torch.as_tensor(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"my_ious should be a tensor (or an array) of numbers, not {type(answer).__name__}"
    a = torch.as_tensor(boxes_a, dtype=torch.float64).detach().cpu().reshape(-1, 4)
    b = torch.as_tensor(boxes_b, dtype=torch.float64).detach().cpu().reshape(-1, 4)
    want = box_iou(a, b)
    if tuple(got.shape) != tuple(want.shape):
        return (f"my_ious has shape {tuple(got.shape)}, it should be {tuple(want.shape)}: one row per box of the first "
                "set, one column per box of the second (broadcast a[:, None] against b[None, :])")
    if torch.isnan(got).any():
        return "some IoUs are NaN: is a union 0 somewhere, or did a step go wrong?"
    if torch.allclose(got, want, atol=1e-4):
        return None
    if (got < -1e-6).any():
        return "some IoUs are negative: boxes that do not overlap have an intersection of 0 (clamp at 0)"
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    corners = torch.minimum(a[:, None, 2:], b[None, :, 2:]) - torch.maximum(a[:, None, :2], b[None, :, :2])
    intersection = corners.clamp(min=0).prod(2)
    if torch.allclose(got, intersection / (area_a[:, None] + area_b[None, :]), atol=1e-4):
        return "you divided by the sum of the two areas: the union counts the intersection only once"
    if (got > 1 + 1e-6).any():
        return "some IoUs are above 1: divide the intersection by the union (area a + area b - intersection)"
    wrong = int((got - want).abs().gt(1e-4).sum())
    return (f"{wrong} of {want.numel()} IoUs are off by more than 1e-4: the intersection runs from the larger of the "
            "two top-left corners to the smaller of the two bottom-right corners")


def check_iou_matrix(answer: Any, boxes_a: Any, boxes_b: Any, exercise: int | str = 1) -> None:
    """Print whether `answer` is the (N, M) matrix of IoUs of boxes_a (N x 4) with boxes_b (M x 4), all (x1, y1, x2, y2)."""
    report_check(exercise, _iou_problem(answer, boxes_a, boxes_b))


def _people_problem(threshold: Any, result: Any, expected: int, lowest: float) -> str | None:
    import math

    person = [index for index, name in result.names.items() if name == "person"]
    if not person:
        return "this model has no class 'person': use a model trained on COCO"
    if threshold is None:
        return "my_conf is still None: set it to the confidence threshold you chose (a number between 0 and 1)"
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        return f"my_conf should be a number between 0 and 1, not {threshold!r}"
    scores = sorted((float(c) for c, k in zip(result.boxes.conf, result.boxes.cls) if int(k) == person[0]),
                    reverse=True)
    possible = len(scores) >= expected and (len(scores) == expected or scores[expected - 1] > scores[expected])
    if not possible:
        return (f"with this model no threshold of at least {lowest:g} gives exactly {expected} people (its count jumps "
                "past it): nothing to find here, try a larger model (WEIGHTS)")
    if not lowest <= threshold < 1:
        return f"choose a threshold from {lowest:g} (the lowest the lab ran at) up to 1"
    conf = result.boxes.conf[result.boxes.cls == person[0]].detach().cpu()
    counted = int((conf > threshold).sum())  # as ultralytics compares: in the scores' own precision, strictly above
    if counted == expected:
        return None
    direction = "raise" if counted > expected else "lower"
    return f"at conf={threshold:g} the model keeps {counted} people, not {expected}: {direction} the threshold"


def check_people_threshold(threshold: Any, result: Any, expected: int, lowest: float, exercise: int | str = 2) -> None:
    """Print whether keeping the boxes of `result` (one image, run at conf=`lowest`) above `threshold` leaves exactly
    `expected` people."""
    report_check(exercise, _people_problem(threshold, result, expected, lowest))
