"""cvkit.camera: where a camera and a display are, the browser camera in Colab, one photo from a local camera."""

from __future__ import annotations

import base64
import io
import sys
from types import ModuleType, SimpleNamespace

import cvkit
import numpy as np
import pytest
from cvkit import camera


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def linux(monkeypatch):
    """A Linux machine outside Colab, with no display variable set."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def video_devices(monkeypatch, present: set[str]) -> None:
    """Pretend that exactly the device files in `present` (e.g. {"/dev/video0"}) exist."""
    monkeypatch.setattr(camera, "Path", lambda path: SimpleNamespace(exists=lambda: str(path) in present))


def fake_colab(monkeypatch, answer):
    """Pretend to be in Colab, with eval_js answering `answer`; returns the (script, timeout_sec) it was asked for."""
    calls = []
    output = ModuleType("google.colab.output")
    output.eval_js = lambda script, ignore_result=False, timeout_sec=None: calls.append((script, timeout_sec)) or answer
    colab = ModuleType("google.colab")
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: None)
    return calls


def jpeg_data_url(rgb=(200, 30, 30), size=(64, 48)) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class FakeCapture:
    """Stands in for cv2.VideoCapture: `frames` BGR frames (None: a failed read), and whether it was released."""

    def __init__(self, frames):
        self.frames, self.released = list(frames), False

    def isOpened(self):
        return True

    def read(self):
        frame = self.frames.pop(0) if self.frames else None
        return frame is not None, frame

    def release(self):
        self.released = True


# ------------------------------------------------------------------ display


def test_has_display_on_linux_needs_an_x11_or_wayland_display(linux, monkeypatch):
    assert cvkit.has_display() is False
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert cvkit.has_display() is True


def test_has_display_is_false_in_colab_even_with_a_display_variable(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    monkeypatch.setenv("DISPLAY", ":0")
    assert cvkit.has_display() is False


def test_has_display_is_assumed_on_macos_and_windows(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert cvkit.has_display() is True


# ------------------------------------------------------------------ local camera


def test_local_camera_on_linux_is_there_only_with_its_video_device(linux, monkeypatch):
    video_devices(monkeypatch, {"/dev/video0"})
    assert cvkit.local_camera_available(0) is True
    assert cvkit.local_camera_available(1) is False


def test_local_camera_is_never_there_in_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    assert cvkit.local_camera_available(0) is False


def test_camera_photo_without_a_camera_says_so_in_one_line_and_opens_nothing(linux, monkeypatch, capsys):
    import cv2

    video_devices(monkeypatch, set())
    monkeypatch.setattr(cv2, "VideoCapture", lambda *args: pytest.fail("opened a camera that is not there"))
    assert cvkit.camera_photo(0) is None
    assert "no camera 0" in one_line(capsys.readouterr().out)


def test_camera_photo_returns_the_last_warm_up_frame_in_rgb_and_releases_the_camera(linux, monkeypatch):
    import cv2

    frames = [np.zeros((48, 64, 3), np.uint8) for _ in range(4)]
    frames[-1][..., 2] = 255  # the last frame is red in OpenCV's BGR order
    capture = FakeCapture(frames)
    video_devices(monkeypatch, {"/dev/video0"})
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: capture)
    photo = cvkit.camera_photo(0, warmup_frames=4)
    assert photo.mode == "RGB" and photo.size == (64, 48)
    assert photo.getpixel((10, 10)) == (255, 0, 0)
    assert capture.released


def test_camera_photo_from_a_camera_that_gives_no_picture_says_why_and_releases_it(linux, monkeypatch, capsys):
    import cv2

    capture = FakeCapture([None, None])
    video_devices(monkeypatch, {"/dev/video0"})
    monkeypatch.setattr(cv2, "VideoCapture", lambda index: capture)
    assert cvkit.camera_photo(0, warmup_frames=2) is None
    assert "gave no picture" in one_line(capsys.readouterr().out)
    assert capture.released


def test_camera_photo_in_colab_takes_the_browser_photo(monkeypatch):
    fake_colab(monkeypatch, jpeg_data_url())
    photo = cvkit.camera_photo()
    assert photo.mode == "RGB" and photo.size == (64, 48)


# ------------------------------------------------------------------ browser camera (Colab)


def test_colab_camera_frame_outside_colab_says_so_and_returns_none(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert cvkit.colab_camera_frame() is None
    line = one_line(capsys.readouterr().out)
    assert "only in Google Colab" in line and "camera_photo" in line


def test_colab_camera_frame_decodes_the_browser_photo_to_rgb(monkeypatch):
    calls = fake_colab(monkeypatch, jpeg_data_url())
    photo = cvkit.colab_camera_frame(timeout_s=5)
    assert photo.mode == "RGB" and photo.size == (64, 48)
    assert photo.getpixel((32, 24))[0] > 150 > photo.getpixel((32, 24))[2]
    assert [script for script, _ in calls] == ["takePhoto(0.9, 5000)"]


def test_colab_camera_frame_waits_for_the_browser_only_a_bounded_time(monkeypatch):
    calls = fake_colab(monkeypatch, jpeg_data_url())
    cvkit.colab_camera_frame(timeout_s=5)
    [(_, timeout_sec)] = calls
    assert timeout_sec is not None and 5 < timeout_sec <= 5 + 10  # the page's own deadline first, then a margin


def test_colab_camera_frame_with_no_answer_from_the_browser_in_time_says_so_in_one_line(monkeypatch, capsys):
    fake_colab(monkeypatch, None)  # what Colab's eval_js returns when timeout_sec passes without an answer
    assert cvkit.colab_camera_frame(timeout_s=5) is None
    assert "the browser gave no answer within 15 s" in one_line(capsys.readouterr().out)


def test_colab_camera_frame_without_permission_says_why_and_returns_none(monkeypatch, capsys):
    fake_colab(monkeypatch, "error:NotAllowedError (Permission denied)")
    assert cvkit.colab_camera_frame() is None
    assert "NotAllowedError" in one_line(capsys.readouterr().out)


def test_colab_camera_frame_when_the_browser_goes_away_says_so_in_one_line(monkeypatch, capsys):
    calls = fake_colab(monkeypatch, None)

    def gone(script, ignore_result=False, timeout_sec=None):
        calls.append((script, timeout_sec))
        raise RuntimeError("the frontend went away")

    monkeypatch.setattr(sys.modules["google.colab.output"], "eval_js", gone)
    assert cvkit.colab_camera_frame() is None
    assert "RuntimeError" in one_line(capsys.readouterr().out)
