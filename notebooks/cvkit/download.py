"""Downloading images: only http(s), size-capped, time-limited, verified, written atomically into the cache."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from .core import KIT_ROOT, KitError, _describe_bytes

__all__ = ["download_image"]

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


def _cache_dir() -> Path:
    return Path(os.environ.get("CVKIT_CACHE") or KIT_ROOT / ".cache").expanduser() / "images"


_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


def _cache_name(url: str) -> str:
    """Name of url's file in the cache: a hash of the whole URL plus a known image suffix (else .img).

    Nothing from the URL path or the server (Content-Disposition) becomes a file name, so no download can land
    outside the cache folder, whatever `..`, `%2f` or length the URL holds.
    """
    suffix = Path(urllib.parse.urlsplit(url).path).suffix.lower()
    if suffix not in _IMAGE_SUFFIXES:
        suffix = ".img"
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:20] + suffix


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_image_bytes(data: bytes, url: str) -> None:
    """Refuse bytes that are not one complete image Pillow can decode (HTML pages, cut-off files, bombs)."""
    shown = _show_url(url)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:  # verify() skips the pixel data: decode it to catch truncation
            image.load()
    except Image.DecompressionBombError:
        raise KitError(f"download refused: {shown} is too large to open safely (Pillow's decompression-bomb guard)") from None
    except (UnidentifiedImageError, ImportError):  # ImportError: ultralytics' Image.open wrapper, offline
        raise KitError(f"download failed: {shown} returned {_describe_bytes(data[:64])}") from None
    except Exception:
        raise KitError(f"download failed: {shown} returned a damaged or truncated image") from None


class _DownloadProblem(Exception):
    """Why a download stopped: `verb` ("failed", "refused", "timed out") and a short detail; the URL is added later."""

    def __init__(self, verb: str, detail: str):
        super().__init__(verb, detail)
        self.verb, self.detail = verb, detail


def _show_url(url: str, limit: int = 120) -> str:
    """url on one printable line, shortened in the middle when very long (for error messages)."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(url))
    return text if len(text) <= limit else f"{text[:limit - 25]}...{text[-22:]}"


def _one_line(value: Any, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _size_text(n: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    """Follow at most `limit` redirects, and only to http(s) URLs (urllib alone would follow ftp: too)."""

    limit = 5
    max_repeats = max_redirections = 100  # our own count below stops loops first, with a clearer message

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, location.strip())).scheme.lower()
            if scheme not in ("http", "https"):
                fp.close()
                raise _DownloadProblem("refused", f"redirects to a {_one_line(scheme, 20)}: URL (only http and https are allowed)")
        if getattr(req, "_cvkit_hops", 0) >= self.limit:
            fp.close()
            raise _DownloadProblem("failed", f"redirects more than {self.limit} times (a redirect loop?)")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new._cvkit_hops = getattr(req, "_cvkit_hops", 0) + 1
        return new


def _download_opener(connections: list) -> urllib.request.OpenerDirector:
    """An http(s)-only opener (no file:, ftp:, data: handlers) that records every connection it makes."""

    def tracked(http_class):
        def connect(*args, **kwargs):
            connection = http_class(*args, **kwargs)
            connections.append(connection)
            return connection

        return connect

    class _HTTP(urllib.request.HTTPHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(tracked(http_class), req, **kwargs)

    class _HTTPS(urllib.request.HTTPSHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(tracked(http_class), req, **kwargs)

    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTP(), _HTTPS(),
                    urllib.request.HTTPDefaultErrorHandler(), _RedirectGuard(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _read_body(url: str, opener: urllib.request.OpenerDirector, timeout: float, max_bytes: int, stop) -> bytes:
    """GET url and return its body; every socket wait is limited to `timeout`, the size to `max_bytes`."""
    request = urllib.request.Request(url, headers={
        "User-Agent": "cv-lab-kit/1.0", "Accept": "image/*, */*;q=0.1", "Accept-Encoding": "identity"})
    with opener.open(request, timeout=timeout) as response:
        kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind in ("text/html", "application/xhtml+xml"):
            raise _DownloadProblem("failed", "returned an HTML page, not an image")
        declared = None
        if not getattr(response, "chunked", False):
            try:
                declared = int(response.headers.get("Content-Length", ""))
            except ValueError:
                declared = None
            if declared is not None and declared < 0:
                declared = None
        if declared is not None and declared > max_bytes:
            raise _DownloadProblem("refused", f"is {_size_text(declared)}, over the {_size_text(max_bytes)} limit")
        chunks, total = [], 0
        while not stop.is_set():
            block = response.read1(1 << 16)  # at most one socket read, so the deadline is checked often
            if not block:
                break
            total += len(block)
            if total > max_bytes:
                raise _DownloadProblem("refused", f"sent more than the {_size_text(max_bytes)} limit")
            chunks.append(block)
        if declared is not None and total < declared:
            raise _DownloadProblem("failed", f"broke off after {total} of {declared} bytes")
    return b"".join(chunks)


def _fetch(url: str, timeout: float, deadline: float, max_bytes: int) -> bytes:
    """_read_body in a worker thread, abandoned (its sockets shut) once `deadline` seconds have passed.

    The socket timeout only bounds each wait; a server that trickles a byte now and then (headers included)
    would never trip it, so the whole download, name lookup included, also gets an overall deadline.
    """
    import socket
    import threading

    connections: list = []
    outcome: dict = {}
    stop = threading.Event()
    opener = _download_opener(connections)

    def work():
        try:
            outcome["data"] = _read_body(url, opener, timeout, max_bytes, stop)
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    worker = threading.Thread(target=work, name="cvkit-download", daemon=True)
    worker.start()
    timed_out = True
    try:
        worker.join(deadline)
        timed_out = worker.is_alive()  # decided before the sockets are shut: the worker may then end at once
    finally:
        if worker.is_alive():  # deadline passed (or Ctrl-C): unblock the worker so it ends now
            stop.set()
            for connection in list(connections):
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    try:
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass
    if timed_out:
        raise _DownloadProblem("timed out", f"took longer than {deadline:g} s in all")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _download_problem(err: BaseException, timeout: float) -> _DownloadProblem:
    """Translate what urllib/http.client/socket raised into a short, one-line reason."""
    import http.client

    if isinstance(err, _DownloadProblem):
        return err
    if isinstance(err, urllib.error.HTTPError):
        err.close()
        reason = _one_line(err.reason, 40)
        if 300 <= err.code < 400:
            return _DownloadProblem("failed", f"answered HTTP {err.code} {reason} with a redirect that cannot be followed")
        return _DownloadProblem("failed", f"answered HTTP {err.code} {reason}".rstrip())
    if isinstance(err, urllib.error.URLError):
        if not isinstance(err.reason, BaseException):
            return _DownloadProblem("failed", f"cannot be reached ({_one_line(err.reason)})")
        err = err.reason  # the socket error underneath: a timeout, a refused connection, an unknown host
    if isinstance(err, TimeoutError):
        return _DownloadProblem("timed out", f"sent nothing for {timeout:g} s")
    if isinstance(err, (http.client.InvalidURL, ValueError, UnicodeError)):
        return _DownloadProblem("refused", "is not a valid URL")
    if isinstance(err, http.client.HTTPException):
        return _DownloadProblem("failed", f"broke off ({type(err).__name__})")
    if isinstance(err, OSError):
        return _DownloadProblem("failed", f"cannot be reached ({_one_line(err.strerror or err)}); check the network or the URL")
    return _DownloadProblem("failed", f"stopped with {type(err).__name__}")


def download_image(
    url: str,
    cache_dir: str | Path | None = None,
    sha256: str | None = None,
    timeout: float = 15.0,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    deadline: float | None = None,
) -> Path:
    """Download an image once into the cache and return its path.

    Only http(s) URLs (redirects too, at most 5). `timeout`: longest wait for the server to send anything;
    `deadline`: longest the whole download may take (default max(60, 4 * timeout)); `max_bytes`: size cap;
    `sha256`: expected checksum (a cached copy that no longer matches is downloaded again). The body must be
    one complete image. The file is written atomically under a hashed name, so after any failure the cache
    holds no partial or wrong file, and every failure is a one-line KitError naming the URL.
    """
    shown = _show_url(url)
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        host = parts.hostname if parts is not None else None
    except ValueError:
        raise KitError(f"download refused: not a valid URL: {shown}") from None
    scheme = parts.scheme.lower() if parts is not None else ""
    if scheme not in ("http", "https"):
        raise KitError(f"download refused: only http(s) URLs can be downloaded, not {_one_line(scheme, 20) or 'a bare path'}: {shown}")
    if not host:
        raise KitError(f"download refused: the URL names no host: {shown}")
    expected = None
    if sha256 is not None:
        expected = str(sha256).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", expected):
            raise KitError(f"sha256 must be 64 hexadecimal digits, got {_one_line(sha256, 70)!r} (for {shown})")
    if not (timeout > 0 and max_bytes > 0 and (deadline is None or deadline > 0)):
        raise KitError(f"timeout, deadline and max_bytes must be positive (for {shown})")
    deadline = max(60.0, 4.0 * timeout) if deadline is None else deadline

    folder = (Path(cache_dir) if cache_dir is not None else _cache_dir()).expanduser()
    target = folder / _cache_name(url)
    if target.is_file() and not target.is_symlink():
        try:
            if (target.stat().st_size > 0) if expected is None else (_sha256(target) == expected):
                return target
        except OSError:
            pass
    if target.is_symlink() or target.is_file():  # stale (checksum changed), empty or unreadable: never keep it
        try:
            target.unlink()
        except OSError as err:
            raise KitError(f"cannot replace the cached copy of {shown} ({_one_line(err.strerror or err)})") from None

    try:
        data = _fetch(url, timeout, deadline, max_bytes)
    except Exception as err:
        problem = _download_problem(err, timeout)
        raise KitError(f"download {problem.verb}: {shown} {problem.detail}") from None
    _check_image_bytes(data, url)
    if expected is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise KitError(f"checksum mismatch: {shown} has sha256 {actual[:12]}..., expected {expected[:12]}...")

    handle = tmp_name = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=folder, prefix=".part-", suffix=target.suffix)
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(data)
        os.replace(tmp_name, target)
    except BaseException as err:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise KitError(f"cannot save {shown} in the cache folder {folder} ({_one_line(err.strerror or err)})") from None
        raise
    return target
