"""Lab 2 helpers (cvkit/detect.py) and the YOLO11n stand-in (tests/standins/yolo.py)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cvkit
import numpy as np
import pytest
import torch
from cvkit import detect
from standins import yolo as yolo_standin

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_object_detection.ipynb"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", autouse=True)
def pil_open_left_as_found():
    """Importing ultralytics replaces PIL.Image.open for the whole process (the replacement tries to pip-install
    pi-heif whenever Pillow cannot identify a file); put back what was there, so later test modules see plain Pillow."""
    from PIL import Image

    found = Image.open
    yield
    Image.open = found


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The stand-in installed into a fresh folder: (environment, weights path)."""
    import ultralytics  # noqa: F401  (imported first, so that this process keeps the session's ultralytics settings)

    root = tmp_path_factory.mktemp("yolo-standin")
    env = yolo_standin.install(root)
    settings = json.loads((Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics" / "settings.json").read_text())
    return env, Path(settings["weights_dir"]) / "yolo11n.pt"


@pytest.fixture(scope="module")
def model(standin):
    from ultralytics import YOLO

    return YOLO(str(standin[1]))


@pytest.fixture(scope="module")
def street():
    sample = max(cvkit.sample_images(2), key=lambda s: (len(s.expected), sum(s.expected.values())))
    return cvkit.load_image(sample.path)


def hand_made_result(rows, shape=(100, 200)):
    """An ultralytics Results from (x1, y1, x2, y2, conf, class) rows on a black image of `shape` (h, w)."""
    from ultralytics.engine.results import Results

    data = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
    names = {0: "person", 1: "bicycle", 2: "car"}
    return Results(orig_img=np.zeros((*shape, 3), np.uint8), path="hand.jpg", names=names, boxes=data)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ stand-in


def test_standin_writes_weights_where_settings_point_with_marker_and_fonts(standin):
    env, weights = standin
    assert env == {"YOLO_CONFIG_DIR": env["YOLO_CONFIG_DIR"], "YOLO_OFFLINE": "1"}
    user_dir = Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics"
    settings = json.loads((user_dir / "settings.json").read_text())
    assert weights.is_file() and (weights.parent / "STANDIN").is_file()
    assert settings["sync"] is False and Path(settings["runs_dir"]).parent == weights.parent.parent
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):
        assert (user_dir / font).read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType file


def test_standin_has_the_80_coco_names(model):
    assert [model.names[i] for i in range(len(model.names))] == cvkit.read_labels("coco_classes.txt")


def test_standin_detects_boxes_on_a_photo_at_default_thresholds(model, street):
    result = model.predict(street, conf=0.25, iou=0.7, verbose=False)[0]
    classes = {result.names[int(c)] for c in result.boxes.cls}
    assert 1 <= len(result.boxes) <= 120
    assert classes <= set(yolo_standin.ACTIVE_CLASSES) and len(classes) >= 2
    assert float(result.boxes.conf.min()) >= 0.25 and float(result.boxes.conf.max()) > 0.5


def test_standin_loads_by_name_offline_without_network_or_a_copy_in_cwd(standin, tmp_path):
    env, weights = standin
    code = "from ultralytics import YOLO; m = YOLO('yolo11n.pt'); print(m.ckpt_path)"
    log = tmp_path / "net.log"
    run_env = {**os.environ, **env, "CVKIT_NET_LOG": str(log), "PYTHONPATH": str(ROOT / "tests" / "nonet")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]) == weights
    assert not (tmp_path / "yolo11n.pt").exists()
    assert not log.exists() or not log.read_text().strip(), log.read_text()


# ------------------------------------------------------------------ table


def test_detections_table_lists_boxes_most_confident_first_with_pixel_corners():
    result = hand_made_result([[10, 20, 50, 60, 0.5, 2], [0, 0, 100, 80, 0.9, 0]])
    rows = cvkit.detections_table(result)
    assert [tuple(row) for row in rows] == [cvkit.DETECTION_COLUMNS] * 2
    assert rows[0] == {"class": "person", "confidence": 0.9, "x1": 0.0, "y1": 0.0, "x2": 100.0, "y2": 80.0}
    assert rows[1] == {"class": "car", "confidence": 0.5, "x1": 10.0, "y1": 20.0, "x2": 50.0, "y2": 60.0}


def test_detections_table_of_a_result_without_boxes_is_empty():
    assert cvkit.detections_table(hand_made_result([])) == []


def test_detections_table_matches_the_boxes_of_a_real_prediction(model, street):
    result = model.predict(street, conf=0.25, verbose=False)[0]
    rows = cvkit.detections_table(result)
    assert len(rows) == len(result.boxes) > 0
    order = result.boxes.conf.argsort(descending=True)
    expected = result.boxes.xyxy[order]
    got = torch.tensor([[row[k] for k in ("x1", "y1", "x2", "y2")] for row in rows])
    assert torch.allclose(got, expected, atol=0.051)
    assert all(row["class"] == result.names[int(c)] for row, c in zip(rows, result.boxes.cls[order]))


def test_detections_table_refuses_something_that_is_not_a_detection_result():
    with pytest.raises(cvkit.KitError):
        cvkit.detections_table(SimpleNamespace(probs=[0.1]))


def test_show_detections_prints_size_count_timings_and_caps_rows(capsys):
    result = hand_made_result([[0, 0, 10, 10, 0.3 + i / 100, 0] for i in range(5)])
    result.speed = {"preprocess": 1.0, "inference": 20.0, "postprocess": 2.0}
    rows = cvkit.show_detections(result, "demo", max_rows=2)
    out = capsys.readouterr().out
    assert len(rows) == 5
    assert out.splitlines()[0] == ("demo: 200x100 px, 5 detections "
                                   "(preprocess 1.0 ms, inference 20.0 ms, postprocess 2.0 ms)")
    assert "... and 3 more" in out and out.count("person") == 2


# ------------------------------------------------------------------ scorecard


def test_scorecard_marks_a_class_with_enough_boxes_found():
    assert cvkit.detection_scorecard({"person": 3, "car": 1}, {"person": 2, "car": 1}) == [
        ("person", 2, 3, "found"),
        ("car", 1, 1, "found"),
    ]


def test_scorecard_marks_an_absent_class_missing():
    assert cvkit.detection_scorecard({"car": 4}, {"dog": 1}) == [("dog", 1, 0, "missing")]


def test_scorecard_marks_a_class_with_fewer_boxes_than_expected_too_few():
    assert cvkit.detection_scorecard({"horse": 2}, {"horse": 4}) == [("horse", 4, 2, "too few")]


def test_scorecard_counts_the_boxes_of_a_results_object_and_ignores_other_classes():
    result = hand_made_result([[0, 0, 5, 5, 0.9, 0], [5, 5, 9, 9, 0.8, 0], [1, 1, 2, 2, 0.7, 1]])
    assert cvkit.detection_scorecard(result, {"person": 3}) == [("person", 3, 2, "too few")]


def test_scorecard_refuses_a_non_positive_expected_count():
    with pytest.raises(cvkit.KitError):
        cvkit.detection_scorecard({}, {"person": 0})


# ------------------------------------------------------------------ IoU

IOU_PAIRS = {
    "identical": ((10, 10, 50, 50), (10, 10, 50, 50)),
    "disjoint": ((0, 0, 10, 10), (20, 20, 30, 30)),
    "touching edge": ((0, 0, 10, 10), (10, 0, 20, 10)),
    "half shifted": ((0, 0, 40, 40), (20, 0, 60, 40)),
    "nested": ((0, 0, 40, 40), (10, 10, 30, 30)),
    "corner overlap": ((0, 0, 10, 10), (5, 5, 15, 15)),
    "fractional": ((1.5, 2.25, 7.75, 9.0), (3.1, 0.4, 12.6, 5.5)),
    "thin and wide": ((0, 4, 100, 6), (40, 0, 60, 100)),
}


@pytest.mark.parametrize("a, b", IOU_PAIRS.values(), ids=IOU_PAIRS.keys())
def test_box_iou_xyxy_equals_torchvision_box_iou(a, b):
    from torchvision.ops import box_iou

    expected = box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)).item()
    assert cvkit.box_iou_xyxy(a, b) == pytest.approx(expected, abs=1e-9)
    assert cvkit.box_iou_xyxy(b, a) == pytest.approx(expected, abs=1e-9)


def test_box_iou_xyxy_known_values():
    assert cvkit.box_iou_xyxy(*IOU_PAIRS["identical"]) == 1.0
    assert cvkit.box_iou_xyxy(*IOU_PAIRS["disjoint"]) == 0.0
    assert cvkit.box_iou_xyxy(*IOU_PAIRS["half shifted"]) == pytest.approx(1 / 3)


def test_box_iou_xyxy_refuses_a_box_with_corners_swapped():
    with pytest.raises(cvkit.KitError):
        cvkit.box_iou_xyxy((10, 10, 0, 0), (0, 0, 5, 5))


# ------------------------------------------------------------------ camera


@pytest.fixture
def headless(monkeypatch):
    """No Colab, no display, and any attempt to open an OpenCV window fails the test."""
    import cv2

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("cv2 GUI call without a display")

    for name in ("imshow", "namedWindow", "waitKey", "destroyAllWindows"):
        monkeypatch.setattr(cv2, name, forbidden)


def test_has_display_needs_display_variable_on_linux(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert detect.has_display() is False
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert detect.has_display() is True


def test_has_display_is_false_in_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    monkeypatch.setenv("DISPLAY", ":0")
    assert detect.has_display() is False


def test_webcam_detect_with_no_such_camera_says_so_in_one_line_and_returns_none(headless, capsys):
    start = time.perf_counter()
    assert cvkit.webcam_detect(model=None, camera=97, max_frames=5) is None
    assert time.perf_counter() - start < 5
    assert "camera 97" in one_line(capsys.readouterr().out)


def test_webcam_detect_with_a_camera_that_cannot_open_returns_none(headless, tmp_path, capsys):
    start = time.perf_counter()
    assert cvkit.webcam_detect(model=None, camera=str(tmp_path / "no-such-camera.avi"), max_frames=5) is None
    assert time.perf_counter() - start < 5
    assert "cannot be opened" in one_line(capsys.readouterr().out)


def test_webcam_detect_in_colab_points_to_the_browser_camera(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    assert cvkit.webcam_detect(model=None) is None
    assert "colab_camera_frame" in one_line(capsys.readouterr().out)


def test_webcam_detect_without_display_runs_frames_headless_and_stops_at_the_limit(headless, model, tmp_path,
                                                                                    capsys):
    import cv2

    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(8):
        frame = np.full((120, 160, 3), 30 * i, np.uint8)
        frame[:, :, 2] = 255  # red in OpenCV's BGR order
        writer.write(frame)
    writer.release()

    run = cvkit.webcam_detect(model, camera=str(video), max_frames=3, conf=0.25)
    assert run["frames"] == 3 and run["fps"] > 0
    last = run["last_frame"]
    assert last.shape == (120, 160, 3) and last.dtype == np.uint8
    assert last[60, 80, 0] > 200 and last[60, 80, 2] < 120  # returned in RGB: red is channel 0
    assert "no display" in one_line(capsys.readouterr().out)


class FakeCamera:
    """Stands in for cv2.VideoCapture: gives grey BGR frames and records whether it was released."""

    def __init__(self, source):
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        return True, np.full((120, 160, 3), 90, np.uint8)

    def release(self):
        self.released = True


@pytest.fixture
def desktop(monkeypatch):
    """A Linux desktop with a display, a fake camera, and OpenCV window calls recorded (q pressed on frame 2)."""
    import cv2

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    gui = SimpleNamespace(shown=0, destroyed=0, cameras=[])

    def capture(source):
        gui.cameras.append(FakeCamera(source))
        return gui.cameras[-1]

    def imshow(window, image):
        gui.shown += 1

    monkeypatch.setattr(cv2, "VideoCapture", capture)
    monkeypatch.setattr(cv2, "imshow", imshow)
    monkeypatch.setattr(cv2, "waitKey", lambda delay: ord("q") if gui.shown >= 2 else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda window, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: setattr(gui, "destroyed", gui.destroyed + 1))
    return gui


def test_webcam_detect_with_a_display_shows_frames_until_q_then_closes_window_and_camera(desktop, model):
    run = cvkit.webcam_detect(model, camera="fake", max_frames=50)
    assert run["frames"] == 2 and desktop.shown == 2
    assert desktop.destroyed == 1 and desktop.cameras[0].released


def test_webcam_detect_releases_the_camera_and_window_when_the_model_fails(desktop):
    class Broken:
        def predict(self, *args, **kwargs):
            if desktop.shown:
                raise RuntimeError("model failed")
            return iter([SimpleNamespace(plot=lambda: np.zeros((120, 160, 3), np.uint8))])

    with pytest.raises(RuntimeError):
        cvkit.webcam_detect(Broken(), camera="fake", max_frames=50)
    assert desktop.shown == 1 and desktop.destroyed == 1 and desktop.cameras[0].released


def test_colab_camera_frame_outside_colab_says_so_and_returns_none(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert cvkit.colab_camera_frame() is None
    assert "only in Google Colab" in one_line(capsys.readouterr().out)


def fake_colab(monkeypatch, answer):
    """Pretend to be in Colab, with eval_js answering `answer`; returns the scripts it was asked to run."""
    calls = []
    output = ModuleType("google.colab.output")
    output.eval_js = lambda script, *args, **kwargs: calls.append(script) or answer
    colab = ModuleType("google.colab")
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: None)
    return calls


def test_colab_camera_frame_decodes_the_browser_photo_to_rgb(monkeypatch):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="JPEG")
    calls = fake_colab(monkeypatch, "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
    photo = cvkit.colab_camera_frame(timeout_s=5)
    assert photo.mode == "RGB" and photo.size == (64, 48)
    assert photo.getpixel((32, 24))[0] > 150 > photo.getpixel((32, 24))[2]
    assert calls == ["takePhoto(0.9, 5000)"]


def test_colab_camera_frame_without_permission_says_why_and_returns_none(monkeypatch, capsys):
    fake_colab(monkeypatch, "error:NotAllowedError (Permission denied)")
    assert cvkit.colab_camera_frame() is None
    assert "NotAllowedError" in one_line(capsys.readouterr().out)


# ------------------------------------------------------------------ notebook


def test_notebook_installs_the_ultralytics_version_of_requirements():
    pin = re.search(r"^ultralytics==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    setup = "".join(json.loads(NOTEBOOK.read_text())["cells"][1]["source"])
    assert f'"ultralytics=={pin}"' in setup
