"""Shared helpers for every lab: device checks, images, the manifest, plotting and tables."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "KIT_ROOT", "DATA_DIR", "LABELS_DIR", "KitError", "Sample",
    "in_colab", "pick_device", "pick_dtype", "device_report", "use_short_errors",
    "load_image", "download_image", "sample_images", "read_labels", "read_class_sets",
    "show_grid", "plot_bars", "format_table",
]

KIT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = KIT_ROOT / "data"
LABELS_DIR = KIT_ROOT / "labels"
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


class KitError(Exception):
    """A problem the user can fix; notebooks show its message in one line."""


class Sample(NamedTuple):
    name: str
    path: Path
    expected: Any
    credit: str


# ---------------------------------------------------------------- environment


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def pick_device() -> "torch.device":
    """The device the labs run on: the first CUDA GPU if there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: "torch.device | str") -> "torch.dtype":
    """fp32 on CPU, bf16 on GPUs with native bf16 (compute capability 8.0+), fp16 on older GPUs such as the T4."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    # Decide from the compute capability: torch.cuda.is_bf16_supported() can say True on a T4 through emulation.
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def device_report() -> dict[str, Any]:
    """Print and return torch/CUDA versions, the GPU (name, memory, compute capability) and the dtype to use."""
    import torch

    device = pick_device()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "device": str(device),
        "dtype": str(pick_dtype(device)).replace("torch.", ""),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
        )
    for key, value in report.items():
        print(f"{key:>20}: {value}")
    if device.type == "cpu":
        if in_colab():
            print("No GPU. In Colab: Runtime > Change runtime type > T4 GPU, then run the notebook again.")
        else:
            print("No GPU found: the lab runs on the CPU (slower, same results).")
    return report


def use_short_errors() -> None:
    """Make IPython show a KitError as its one-line message instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def _show(shell, etype, value, tb, tb_offset=None):
        print(f"{etype.__name__}: {value}", file=sys.stderr)

    shell.set_custom_exc((KitError,), _show)


# --------------------------------------------------------------------- images


def _is_url(source: str | Path) -> bool:
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def _describe_bytes(head: bytes) -> str:
    text = head.lstrip()[:15].lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML/XML page, not an image"
    if not head:
        return "an empty file"
    return "not an image Pillow can read"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray((array / top * 255.0).clip(0, 255).astype("uint8"), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_image(source: str | Path) -> Image.Image:
    """Open a path or http(s) URL as an RGB PIL image with its EXIF orientation applied."""
    path = download_image(source) if _is_url(source) else Path(source)
    if not path.exists():
        raise KitError(f"no such file: {path}")
    if path.is_dir():
        raise KitError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except Image.DecompressionBombError as err:
        raise KitError(
            f"{path.name} is too large to open safely ({err}); Pillow refuses it as a possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        head = path.read_bytes()[:64]
        raise KitError(f"{path.name} is {_describe_bytes(head)}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise KitError(f"{path.name} is damaged or truncated ({err})") from None


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
    except UnidentifiedImageError:
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


# ------------------------------------------------------------- manifest, labels


def read_labels(name: str) -> list[str]:
    """Class names from labels/<name> (one per line, index order)."""
    path = LABELS_DIR / name
    if not path.is_file():
        raise KitError(f"no labels file {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_class_sets(name: str = "zero_shot_sets.json") -> dict[str, list[str]]:
    """The zero-shot class sets from labels/<name>: set name -> list of labels."""
    import json

    path = LABELS_DIR / name
    if not path.is_file():
        raise KitError(f"no class-set file {path}")
    sets = json.loads(path.read_text(encoding="utf-8"))
    for set_name, labels in sets.items():
        if not labels:
            raise KitError(f"class set '{set_name}' in {path.name} is empty")
    return sets


def _parse_expected(lab: int, cell: str) -> Any:
    items = [item.strip() for item in cell.split("|") if item.strip()]
    if lab == 1:
        return items
    if lab == 2:
        return {name: int(count) for name, count in (item.rsplit(":", 1) for item in items)}
    return dict(item.split("=", 1) for item in items)


def sample_images(lab: int, manifest: str | Path | None = None) -> list[Sample]:
    """The lab's images from data/manifest.csv, with their expected labels and credits."""
    if lab not in (1, 2, 3):
        raise KitError(f"there is no lab {lab}: choose 1, 2 or 3")
    path = Path(manifest) if manifest is not None else DATA_DIR / "manifest.csv"
    samples = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cell = (row.get(f"lab{lab}") or "").strip()
            if not cell:
                continue
            credit = f"{row['author']} ({row['licence']})" if row.get("author") else row["licence"]
            samples.append(
                Sample(Path(row["file"]).stem, path.parent / "images" / row["file"], _parse_expected(lab, cell), credit)
            )
    if not samples:
        raise KitError(f"{path} lists no images for lab {lab}")
    return samples


# ----------------------------------------------------------- plotting, tables


def show_grid(images: Sequence[Any], titles: Sequence[str] | None = None, ncols: int = 4, size: float = 3.2) -> None:
    """Show images (PIL, HxWx3 RGB arrays or HxW grayscale arrays) in a grid with optional titles."""
    import matplotlib.pyplot as plt

    if not images:
        raise KitError("show_grid got no images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, cmap="gray" if getattr(image, "ndim", 3) == 2 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    plt.show()


def plot_bars(
    scores_per_image: Sequence[Sequence[tuple[str, float]]],
    titles: Sequence[str],
    xlabel: str = "probability",
    ncols: int = 4,
) -> None:
    """One horizontal bar chart per image of (label, score) pairs, highest on top."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, len(scores_per_image)))
    nrows = -(-len(scores_per_image) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.4 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, scores, title in zip(axes.flat, scores_per_image, titles):
        ax.axis("on")
        labels = [label for label, _ in scores][::-1]
        values = [value for _, value in scores][::-1]
        ax.barh(labels, values, color="tab:blue")
        ax.set_xlim(0, 1)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    plt.show()


def format_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain-text table (floats to 3 decimals) that reads well in a notebook and in a terminal."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    body = [[cell(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(lines)
