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

__all__ = ["show_score_maps", "draw_boxes", "timed_runs", "check_box_iou", "check_count_threshold"]


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
    for one, many, given in (("label", "labels", labels), ("class", "classes", classes)):
        if given is not None and len(given) != len(boxes):
            raise KitError(f"draw_boxes needs one {one} per box, got {len(boxes)} boxes and {len(given)} {many}")
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


def _call(function: Any, name: str, *args: Any) -> tuple[Any, str | None]:
    """Call `function(*args)`; return (its result, None), or (None, what went wrong) in one line, naming any IoU
    function of torchvision or ultralytics it called (those compute the very reference a check compares with)."""
    import sys

    if not callable(function):
        return None, f"{name} should be a function, not {type(function).__name__}: define it with `def {name}(...)`"
    library = []

    def watch(frame: Any, event: str, arg: Any) -> None:
        module = frame.f_globals.get("__name__", "")
        if event == "call" and "iou" in frame.f_code.co_name.lower() and module.startswith(("torchvision", "ultralytics")):
            library.append(f"{module}.{frame.f_code.co_name}")

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        result = function(*args)
    except Exception as error:  # the student's code: any error is an answer to report
        message = str(error).strip().splitlines()
        return None, f"{name} raised {type(error).__name__}" + (f": {message[0]}" if message else "")
    finally:
        sys.setprofile(previous)
    if library:
        return None, f"{name} calls {library[0]}: this exercise is to compute the intersections and unions yourself"
    return result, None


def _iou_check_boxes() -> list[tuple[Any, Any]]:
    """The IoU check's own pairs of box sets (x1, y1, x2, y2): boxes worked out by hand, then random ones."""
    import torch

    hand_a = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 20.0, 30.0]])
    # shifted by half, apart, identical, touching at a corner, inside the third box of hand_a
    hand_b = torch.tensor([[2.0, 0.0, 6.0, 4.0], [2.0, 6.0, 6.0, 8.0], [0.0, 0.0, 4.0, 4.0], [20.0, 30.0, 25.0, 35.0],
                           [12.0, 12.0, 18.0, 18.0]])
    generator = torch.Generator().manual_seed(2)
    corners = torch.rand(2, 9, 2, generator=generator) * 300
    sizes = torch.rand(2, 9, 2, generator=generator) * 200 + 1
    random_a, random_b = torch.cat([corners, corners + sizes], dim=2)
    return [(hand_a, hand_b), (random_a[:6], random_b)]


def _iou_problem(answer: Any, boxes_a: Any, boxes_b: Any) -> str | None:
    """What is wrong with `answer` as the IoU matrix of boxes_a (N x 4) with boxes_b (M x 4), or None."""
    import torch
    from torchvision.ops import box_iou

    if answer is None:
        return "my_box_iou returned None: return the (N, M) tensor of IoUs"
    try:
        got = torch.as_tensor(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return f"my_box_iou should return a tensor (or an array) of numbers, not {type(answer).__name__}"
    a, b = boxes_a.double(), boxes_b.double()
    want = box_iou(a, b)
    if tuple(got.shape) != tuple(want.shape):
        return (f"for {len(a)} and {len(b)} boxes my_box_iou returned shape {tuple(got.shape)}, not {tuple(want.shape)}: "
                "one row per box of the first set, one column per box of the second")
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


def check_box_iou(my_box_iou: Any, exercise: int | str = 1) -> bool:
    """Print whether `my_box_iou(a, b)` returns the (N, M) IoU matrix of the check's own box sets (x1, y1, x2, y2),
    without calling torchvision's or ultralytics' IoU functions; True when it does."""
    for boxes_a, boxes_b in _iou_check_boxes():
        answer, problem = _call(my_box_iou, "my_box_iou", boxes_a.clone(), boxes_b.clone())
        problem = problem or _iou_problem(answer, boxes_a, boxes_b)
        if problem:
            return report_check(exercise, problem)
    return report_check(exercise, None)


def _scored_result(scores: dict[str, Sequence[float]]) -> Any:
    """An ultralytics Results on a blank 640 x 480 image, with boxes of the given COCO classes and confidences (best
    first, as predict returns them)."""
    import numpy as np
    import torch
    from ultralytics.engine.results import Results

    from .data import read_labels

    coco = read_labels("coco_classes.txt")
    rows = [(coco.index(name), score) for name, values in scores.items() for score in values]
    rows.sort(key=lambda row: -row[1])
    generator = torch.Generator().manual_seed(len(rows))
    corners = torch.rand(len(rows), 2, generator=generator) * torch.tensor([440.0, 280.0])
    boxes = torch.cat([corners, corners + 40 + torch.rand(len(rows), 2, generator=generator) * 150,
                       torch.tensor([[score, index] for index, score in rows]).reshape(-1, 2)], dim=1)
    return Results(np.zeros((480, 640, 3), np.uint8), path="check.jpg", names=dict(enumerate(coco)), boxes=boxes)


_THRESHOLD_CASES = (  # the count check's own detections, and the (class, n) it asks for
    ({"person": [0.93, 0.81, 0.64, 0.47, 0.32, 0.18, 0.09], "dog": [0.95, 0.7]}, [("person", 3), ("person", 5),
                                                                                  ("dog", 1), ("dog", 2), ("dog", 3)]),
    ({"car": [0.9, 0.55, 0.55, 0.2], "person": [0.6]}, [("car", 1), ("car", 2), ("horse", 1)]),
)


def _threshold_problem(my_threshold: Any, result: Any, name: str, n: int) -> str | None:
    """What is wrong with my_threshold(result, name, n) on one of the check's cases, or None."""
    import math

    import torch

    class_index = next(key for key, label in result.names.items() if label == name)  # each case's name is in names
    conf = result.boxes.conf[result.boxes.cls == class_index]
    scores = ", ".join(f"{float(s):.2f}" for s in conf)
    possible = len(conf) >= n and (len(conf) == n or conf[n - 1] > conf[n])
    where = f"with {len(conf)} {name} boxes scored [{scores}], my_threshold(result, {name!r}, {n})"
    answer, problem = _call(my_threshold, "my_threshold", result, name, n)
    if problem:
        return problem
    if answer is None:
        return None if not possible else f"{where} returned None, but a threshold keeps exactly {n}"
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
        return f"{where} returned {answer!r}: return a number (a float) or None"
    if not possible:
        why = f"there are only {len(conf)}" if len(conf) < n else "two boxes tie at the cut"
        return f"{where} returned {answer:g}, but no threshold keeps exactly {n} ({why}): return None"
    kept = int((conf > torch.tensor(answer, dtype=conf.dtype)).sum())  # as ultralytics keeps: strictly above
    if kept == n:
        return None
    direction = "raise" if kept > n else "lower"
    return f"{where} returned {answer:g}, which keeps {kept}, not {n}: {direction} it"


def check_count_threshold(my_threshold: Any, exercise: int | str = 2) -> bool:
    """Print whether `my_threshold(result, name, n)` returns, on the check's own results, a confidence threshold that
    keeps exactly n boxes of class `name` (None where no threshold does); True when it does."""
    for scores, asks in _THRESHOLD_CASES:
        result = _scored_result(scores)
        for name, n in asks:
            problem = _threshold_problem(my_threshold, result, name, n)
            if problem:
                return report_check(exercise, problem)
    return report_check(exercise, None)
