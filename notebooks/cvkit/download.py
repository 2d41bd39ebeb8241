"""Downloading an image from an http(s) URL once into the cache: time-limited, size-capped, checked, atomic."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import requests
import urllib3
from PIL import Image, UnidentifiedImageError

from .core import KitError, _describe_bytes, kit_cache_dir, pil_open

__all__ = ["download_image"]

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
