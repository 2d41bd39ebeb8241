"""The camera: one photo from the browser's camera in Colab, or from the local camera with OpenCV.

Colab's machine has no camera of its own, so there the photo is taken by the browser (JavaScript) and sent back.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .env import in_colab

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["has_display", "local_camera_available", "colab_camera_frame", "camera_photo"]


def has_display() -> bool:
    """True where OpenCV can open a window: not in Colab, and on Linux only with an X11 or Wayland display."""
    if in_colab():
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def local_camera_available(camera: int = 0) -> bool:
    """False where camera `camera` certainly does not exist (Colab; Linux without /dev/video<camera>)."""
    if in_colab():
        return False
    return not sys.platform.startswith("linux") or Path(f"/dev/video{camera}").exists()


_TAKE_PHOTO_JS = """
async function takePhoto(quality, timeoutMs) {
  // One deadline for the whole capture: the permission prompt, the camera starting and the click on Capture.
  const deadline = Date.now() + timeoutMs;
  const seconds = Math.round(timeoutMs / 1000);
  const atDeadline = (value) => new Promise((resolve) => setTimeout(() => resolve(value), deadline - Date.now()));
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return 'error:this browser gives no access to a camera';
  }
  const request = navigator.mediaDevices.getUserMedia({video: true});
  let stream;
  try {
    stream = await Promise.race([request, atDeadline(null)]);
  } catch (err) {
    return 'error:' + err.name + ' (' + err.message + ')';
  }
  if (!stream) {  // a camera allowed after the deadline is switched off at once
    request.then((late) => late.getTracks().forEach((track) => track.stop()), () => {});
    return 'error:no camera within ' + seconds + ' s (the browser did not get permission to use it)';
  }
  const div = document.createElement('div');
  const button = document.createElement('button');
  button.textContent = 'Capture';
  const pressed = new Promise((resolve) => { button.onclick = () => resolve(true); });  // before the button shows
  const video = document.createElement('video');
  video.style.display = 'block';
  div.appendChild(button);
  div.appendChild(video);
  document.body.appendChild(div);
  video.srcObject = stream;
  const playing = await Promise.race([video.play().then(() => true), atDeadline(false)]);
  google.colab.output.setIframeHeight(document.documentElement.scrollHeight, true);
  const clicked = playing && await Promise.race([pressed, atDeadline(false)]);
  let result = 'error:no photo taken within ' + seconds + ' s';
  if (clicked) {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    result = canvas.toDataURL('image/jpeg', quality);
  }
  stream.getTracks().forEach((track) => track.stop());
  div.remove();
  return result;
}
"""
_REPLY_GRACE_S = 10.0  # how much longer than the page's own deadline Python waits for its answer


def colab_camera_frame(quality: float = 0.9, timeout_s: float = 60.0) -> Image.Image | None:
    """In Colab, show the browser camera's picture with a Capture button and return the photo as an RGB PIL image.

    Gives up after `timeout_s` (the permission prompt included): outside Colab, without camera permission, or with
    no click in time, it prints one line and returns None.
    """
    if not in_colab():
        print("colab_camera_frame: only in Google Colab (it asks the browser for its camera); "
              "elsewhere use cvkit.camera_photo() or OpenCV's cv2.VideoCapture.")
        return None
    from IPython.display import Javascript, display
    from PIL import Image

    wait_s = timeout_s + _REPLY_GRACE_S
    try:
        from google.colab.output import eval_js

        display(Javascript(_TAKE_PHOTO_JS))
        # eval_js returns None once timeout_sec has passed without an answer (the page went away, say)
        data = eval_js(f"takePhoto({float(quality)}, {int(timeout_s * 1000)})", timeout_sec=wait_s)
    except Exception as err:  # the frontend went away, the kernel was interrupted, ...
        print(f"colab_camera_frame: no photo ({type(err).__name__}: {err}).")
        return None
    if data is None:
        print(f"colab_camera_frame: no photo: the browser gave no answer within {wait_s:.0f} s.")
        return None
    if not isinstance(data, str) or not data.startswith("data:image"):
        reason = data[len("error:"):] if isinstance(data, str) and data.startswith("error:") else repr(data)[:80]
        print(f"colab_camera_frame: no photo: {reason}.")
        return None
    encoded = data.partition(",")[2]
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        return image.convert("RGB")


def camera_photo(camera: int = 0, warmup_frames: int = 5) -> Image.Image | None:
    """One RGB photo: from the browser's camera in Colab, else from local camera `camera` with OpenCV.

    Prints one line and returns None where there is no camera (a server, no permission, no photo taken).
    """
    if in_colab():
        return colab_camera_frame()
    if not local_camera_available(camera):
        print(f"camera_photo: no camera {camera} on this machine; use a photo file instead.")
        return None
    import cv2
    from PIL import Image

    capture = cv2.VideoCapture(camera)
    try:
        frame = None
        for _ in range(max(1, warmup_frames)):  # the first frames of many cameras are dark or blurred
            ok, grabbed = capture.read()
            if ok:
                frame = grabbed
    finally:
        capture.release()
    if frame is None:
        print(f"camera_photo: camera {camera} gave no picture (in use by another program, or no permission).")
        return None
    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
