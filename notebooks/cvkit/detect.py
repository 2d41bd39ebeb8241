"""Helpers for Lab 2: object detection with ultralytics YOLO11.

Tables and a scorecard for `ultralytics.engine.results.Results`, a two-box IoU, a plot of detections against the
confidence threshold, and the camera: a live OpenCV loop for a local machine and a one-photo capture through the
browser for Colab. ultralytics and OpenCV are imported inside the functions, so `import cvkit` stays cheap.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .camera import has_display
from .core import KitError, in_colab

if TYPE_CHECKING:
    pass

__all__ = [
    "DETECTION_COLUMNS",
    "detections_table",
    "detection_counts",
    "show_detections",
    "detection_scorecard",
    "box_iou_xyxy",
    "plot_detections_vs_conf",
    "webcam_detect",
]

DETECTION_COLUMNS = ("class", "confidence", "x1", "y1", "x2", "y2")


# ------------------------------------------------------------------ tables


def detections_table(result: Any) -> list[dict[str, Any]]:
    """One dict per detected box of an ultralytics detection result, most confident first.

    Keys are DETECTION_COLUMNS: the class name, the confidence, and the box corners x1, y1 (top left) and x2, y2
    (bottom right) in pixels of the original image.
    """
    boxes = getattr(result, "boxes", None)
    if boxes is None:
        raise KitError("detections_table needs a detection result (ultralytics Results with .boxes)")
    xyxy = boxes.xyxy.float().cpu().tolist()
    confs = boxes.conf.float().cpu().tolist()
    classes = boxes.cls.int().cpu().tolist()
    rows = [
        {
            "class": result.names[c],
            "confidence": round(p, 3),
            "x1": round(x1, 1),
            "y1": round(y1, 1),
            "x2": round(x2, 1),
            "y2": round(y2, 1),
        }
        for (x1, y1, x2, y2), p, c in zip(xyxy, confs, classes)
    ]
    return sorted(rows, key=lambda row: -row["confidence"])


def detection_counts(result_or_rows: Any) -> dict[str, int]:
    """How many boxes of each class: from a Results object or from the rows of `detections_table`."""
    rows = result_or_rows if isinstance(result_or_rows, list) else detections_table(result_or_rows)
    return dict(Counter(row["class"] for row in rows).most_common())


def show_detections(result: Any, title: str = "", max_rows: int = 10) -> list[dict[str, Any]]:
    """Print one image's detections as a table (the `max_rows` most confident) with ultralytics' timings."""
    from .core import format_table

    rows = detections_table(result)
    height, width = result.orig_shape
    speed = result.speed or {}
    timing = ", ".join(f"{stage} {speed[stage]:.1f} ms" for stage in ("preprocess", "inference", "postprocess")
                       if speed.get(stage) is not None)
    print(f"{title + ': ' if title else ''}{width}x{height} px, {len(rows)} detections ({timing})")
    if rows:
        shown = rows[:max_rows]
        cells = [[row["class"], row["confidence"], *(round(row[k]) for k in ("x1", "y1", "x2", "y2"))] for row in shown]
        print(format_table(cells, DETECTION_COLUMNS))
        if len(rows) > len(shown):
            print(f"... and {len(rows) - len(shown)} more with lower confidence")
    return rows


# --------------------------------------------------------------- scorecard


def detection_scorecard(result_or_counts: Any, expected: Mapping[str, int]) -> list[tuple[str, int, int, str]]:
    """Rows of (class, expected at least, detected, verdict) for each class the manifest expects.

    The verdict is "found" (at least as many as expected), "too few" (some, not enough) or "missing" (none).
    `result_or_counts` is a Results object, rows from `detections_table`, or a mapping class name -> count.
    """
    counts = result_or_counts if isinstance(result_or_counts, Mapping) else detection_counts(result_or_counts)
    rows = []
    for name, minimum in expected.items():
        if not isinstance(minimum, int) or minimum < 1:
            raise KitError(f"expected count for '{name}' must be a positive integer, got {minimum!r}")
        found = int(counts.get(name, 0))
        verdict = "found" if found >= minimum else ("too few" if found else "missing")
        rows.append((name, minimum, found, verdict))
    return rows


# --------------------------------------------------------------------- IoU


def box_iou_xyxy(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes given as (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    if ax2 < ax1 or ay2 < ay1 or bx2 < bx1 or by2 < by1:
        raise KitError(f"boxes must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, got {tuple(a)} and {tuple(b)}")
    inter_w = max(0.0, min(ax2, bx2) - max(ax1, bx1))  # overlap along x (0 when the boxes are apart)
    inter_h = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = inter_w * inter_h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


# -------------------------------------------------------------------- plot


def plot_detections_vs_conf(thresholds: Sequence[float], counts: Sequence[int], title: str = "") -> None:
    """Number of detections against the confidence threshold, with ultralytics' default (0.25) marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(thresholds, counts, marker="o")
    ax.axvline(0.25, color="gray", linestyle="--", linewidth=1, label="default conf=0.25")
    ax.set_xlabel("confidence threshold (conf)")
    ax.set_ylabel("detections kept")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()


# ------------------------------------------------------------------ camera


def webcam_detect(
    model: Any,
    camera: int | str = 0,
    max_frames: int = 300,
    conf: float = 0.25,
    iou: float = 0.7,
    device: Any = None,
    imgsz: int = 640,
    window: str = "YOLO11 - press q to stop",
) -> dict[str, Any] | None:
    """Run `model` on live camera frames with boxes and an FPS counter, until `q`, a closed window or `max_frames`.

    Returns {"frames", "fps", "last_frame" (annotated, RGB)}; or prints one line and returns None when there is no
    camera (Colab, a server, a camera that cannot be opened). Without a display (no DISPLAY/WAYLAND_DISPLAY on Linux)
    it never opens a window, since `cv2.imshow` would abort the process: it runs the frames and returns the last.
    Each frame's result is dropped as soon as it is drawn (stream=True), so memory stays flat however long it runs.
    """
    if in_colab():
        print("webcam_detect: Colab's machine has no camera; use cvkit.colab_camera_frame() for your browser's camera.")
        return None
    if isinstance(camera, int) and sys.platform.startswith("linux") and not Path(f"/dev/video{camera}").exists():
        print(f"webcam_detect: no camera {camera} here (/dev/video{camera} does not exist); skipping the live demo.")
        return None

    import cv2

    show = has_display()
    window_open = False
    frames, fps, last = 0, 0.0, None
    capture = cv2.VideoCapture(camera)
    try:
        if not capture.isOpened():
            print(f"webcam_detect: camera {camera!r} cannot be opened (in use, no permission, or absent); skipping.")
            return None
        if not show:
            print("webcam_detect: no display, so no window: running the frames and returning the last one.")
        tick = time.perf_counter()
        while frames < max_frames:
            ok, frame = capture.read()  # BGR, which is what ultralytics expects from a numpy array
            if not ok:
                if frames == 0:
                    print(f"webcam_detect: camera {camera!r} opened but gave no picture; skipping.")
                    return None
                break
            for result in model.predict(frame, stream=True, conf=conf, iou=iou, device=device, imgsz=imgsz, verbose=False):
                annotated = result.plot()  # BGR, boxes and labels drawn
            frames += 1
            now = time.perf_counter()
            current = 1.0 / max(now - tick, 1e-6)
            tick = now
            fps = current if frames == 1 else 0.9 * fps + 0.1 * current  # smoothed
            cv2.putText(annotated, f"{fps:.1f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 0), 2)
            last = annotated
            if show:
                try:
                    cv2.imshow(window, annotated)
                    window_open = True
                except cv2.error:  # an OpenCV built without GUI support (opencv-python-headless)
                    print("webcam_detect: this OpenCV build cannot open windows; going on without one.")
                    show = False
                    continue
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
                if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:  # closed with the mouse
                    break
    finally:
        capture.release()
        if window_open:
            cv2.destroyAllWindows()
            cv2.waitKey(1)  # lets the window actually close on some platforms
    return {"frames": frames, "fps": round(fps, 1), "last_frame": None if last is None else last[..., ::-1].copy()}
