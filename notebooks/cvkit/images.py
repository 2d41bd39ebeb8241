"""Images: opening any file Pillow can read as upright RGB, and downloading an image once into the kit's cache."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import urllib3
from PIL import Image, ImageOps, UnidentifiedImageError

from .env import kit_cache_dir
from .errors import KitError

__all__ = ["pil_open", "load_image", "download_image"]

def _is_url(source: Any) -> bool:
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def _describe_bytes(head: bytes) -> str:
    text = head.lstrip()[:15].lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML/XML page, not an image"
    if not head:
        return "an empty file"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc"):
        return "a HEIC/HEIF photo, which needs the pillow-heif package (pip install pillow-heif)"
    return "not an image Pillow can read"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray((array / top * 255.0).clip(0, 255).astype("uint8"))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def pil_open(path: str | Path) -> Image.Image:
    """PIL.Image.open as Pillow defines it, with HEIC/HEIF support from pillow-heif when it is installed.

    ultralytics replaces PIL.Image.open with a wrapper that pip-installs a package whenever Pillow cannot identify a
    file; the kit opens files with Pillow's own function so that a wrong file gives an error, not an install.
    """
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()  # idempotent: registers the HEIF plugin with Pillow
    except ImportError:
        pass
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(path)


def _from_array(array: Any) -> Image.Image:
    import numpy as np

    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise KitError(
            f"load_image takes an array of uint8 pixels shaped (H, W), (H, W, 3) RGB or (H, W, 4) RGBA; "
            f"got {array.dtype} with shape {tuple(array.shape)}"
        )
    return _to_rgb(Image.fromarray(np.ascontiguousarray(array)))


def load_image(source: Any) -> Image.Image:
    """An RGB PIL image, upright (EXIF orientation applied), from a path, an http(s) URL, a PIL image or an array.

    A NumPy array must hold RGB (or gray) uint8 pixels: reverse an OpenCV BGR frame first (`frame[..., ::-1]`).
    """
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if type(source).__module__ == "numpy" and hasattr(source, "dtype"):
        return _from_array(source)
    if not isinstance(source, (str, Path)):
        raise KitError(f"load_image takes a file path, a URL, a PIL image or a NumPy array, not {type(source).__name__}")
    if _is_url(source):
        path = download_image(source)
    else:
        path = Path(source).expanduser()
    if not path.exists():
        raise KitError(f"no such file: {path}")
    if path.is_dir():
        raise KitError(f"{path} is a folder, not an image file")
    try:
        with pil_open(path) as image:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except Image.DecompressionBombError as err:
        raise KitError(
            f"{path.name} is too large to open safely ({err}); Pillow refuses it as a possible decompression bomb"
        ) from err
    except UnidentifiedImageError as err:
        head = path.read_bytes()[:64]
        raise KitError(f"{path.name} is {_describe_bytes(head)}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise KitError(f"{path.name} is damaged or truncated ({err})") from err


# ------------------------------------------------------------------ downloads

MAX_BYTES = 50 * 2**20
MAX_REDIRECTS = 5
COPY_HINT = "copy the image's own address (right-click the image, then 'Copy image address')"


def _show(url: str, limit: int = 120) -> str:
    """url on one printable line, shortened in the middle when long (for error messages)."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(url))
    return text if len(text) <= limit else f"{text[:limit - 25]}...{text[-22:]}"


def _one_line(value: object, limit: int = 80) -> str:
    """value's text on one line of at most `limit` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size(n: int) -> str:
    """n bytes as a short size, e.g. '4 KB' or '50 MB'."""
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 2**10:.3g} KB"


def _innermost(err: BaseException) -> BaseException:
    """The error at the bottom of err's chain (requests and urllib3 wrap the socket's own error)."""
    while (inner := err.__cause__ or err.__context__) is not None:
        err = inner
    return err


def _problem(err: Exception, url: str, shown: str, timeout: float) -> str:
    """A one-line message naming the URL for what requests, urllib3 or the socket raised."""
    if isinstance(err, (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema)):
        where = "redirects to a URL that is not" if url.lower().startswith(("http://", "https://")) else "is not"
        return f"download refused: {shown} {where} http(s); only http and https URLs can be downloaded"
    if isinstance(err, requests.TooManyRedirects):
        return f"download failed: {shown} redirects more than {MAX_REDIRECTS} times (a redirect loop?)"
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return f"download timed out: {shown} sent nothing for {timeout:g} s"
    if isinstance(err, requests.ConnectionError):
        inner = _innermost(err)
        return f"download failed: {shown} cannot be reached ({_one_line(getattr(inner, 'strerror', None) or inner)})"
    if isinstance(err, ValueError):  # requests.InvalidURL and other malformed URLs
        return f"download refused: {shown} is not a valid URL"
    return f"download failed: {shown} broke off before the whole file arrived ({type(_innermost(err)).__name__})"


def _read_body(response: requests.Response, shown: str, start: float, deadline: float, max_bytes: int) -> bytes:
    """The answer's body; a KitError for an HTTP error, an HTML page, a body over max_bytes or past the deadline."""
    if not response.ok:
        raise KitError(f"download failed: {shown} answered HTTP {response.status_code} {_one_line(response.reason, 40)}")
    if response.headers.get("Content-Type", "").split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        raise KitError(f"download failed: {shown} returned an HTML page, not an image: {COPY_HINT}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise KitError(f"download refused: {shown} is {_size(int(declared))}, over the {_size(max_bytes)} limit")
    body = bytearray()
    while chunk := response.raw.read1(1 << 16, decode_content=True):  # one socket read: the deadline is checked often
        body += chunk
        if len(body) > max_bytes:
            raise KitError(f"download refused: {shown} sent more than the {_size(max_bytes)} limit")
        if time.monotonic() - start > deadline:
            raise KitError(f"download timed out: {shown} took longer than {deadline:g} s in all")
    return bytes(body)


def _image_suffix(data: bytes, shown: str) -> str:
    """'.png', '.jpeg', ... when data is one complete image Pillow decodes; otherwise a one-line KitError."""
    try:
        with pil_open(io.BytesIO(data)) as image:
            image.load()  # decodes the pixels: a truncated file fails here
            return "." + (image.format or "img").lower()
    except UnidentifiedImageError as err:
        what = _describe_bytes(data[:64])
        hint = f": {COPY_HINT}" if "HTML" in what else ""
        raise KitError(f"download failed: {shown} is {what}{hint}") from err
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise KitError(f"download failed: {shown} is not a complete image Pillow can decode ({_one_line(err)})") from err


def download_image(url: str, timeout: float = 15.0, deadline: float = 60.0, max_bytes: int = MAX_BYTES) -> Path:
    """Download the image at an http(s) url once into $CVKIT_CACHE/images and return its path.

    `timeout`: longest wait for the server to connect or send anything; `deadline`: longest the whole download
    may take (checked while the body streams in); `max_bytes`: size cap. At most 5 redirects, http(s) only.
    The file is named by a hash of the URL and written atomically, so the cache never holds a partial file,
    and every failure is a one-line KitError naming the URL.
    """
    shown = _show(url)
    folder = kit_cache_dir() / "images"
    key = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    if (cached := next(folder.glob(f"{key}.*"), None)) is not None:
        return cached
    start = time.monotonic()
    try:
        with requests.Session() as session:
            session.max_redirects = MAX_REDIRECTS
            session.headers["User-Agent"] = "cvkit-course-kit/1.0 (python-requests)"
            with session.get(url, stream=True, timeout=timeout) as response:
                data = _read_body(response, shown, start, deadline, max_bytes)
    except (OSError, ValueError, urllib3.exceptions.HTTPError) as err:  # requests' errors are OSErrors
        raise KitError(_problem(err, url, shown, timeout)) from err
    target = folder / (key + _image_suffix(data, shown))
    part = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, part = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(part, target)
    except OSError as err:
        raise KitError(f"cannot save {shown} in the cache folder {folder} ({_one_line(err.strerror or err)})") from err
    finally:
        if part is not None:
            Path(part).unlink(missing_ok=True)
    return target
