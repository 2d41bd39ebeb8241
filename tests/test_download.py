"""cvkit.download_image against bad and hostile servers: a local HTTP server on 127.0.0.1, no outside traffic."""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cvkit
import pytest
from PIL import Image


def _png(size: int = 16, noise: bool = False) -> bytes:
    image = Image.new("RGB", (size, size), (200, 40, 40))
    if noise:
        image = Image.frombytes("RGB", (size, size), random.Random(0).randbytes(size * size * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()
BIG_PNG = _png(96, noise=True)  # about 27 KB: well over the 4 KB cap the tests pass
HTML = b"<!doctype html><html><head><title>Sign in</title></head><body>Please sign in</body></html>"


# ------------------------------------------------------------------ the local server


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose answers the tests set per path; it counts every request."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[str] = []
        self.release = threading.Event()  # set at teardown: stalling handlers give up
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                owner.requests.append(self.path)
                route = owner.routes.get(self.path) or owner.routes.get("*")
                if route is None:
                    self.send_error(404)
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def count(self, path: str) -> int:
        return self.requests.count(path)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(body: bytes = PNG, status: int = 200, content_type: str = "image/png", length: int | None = None,
         headers: dict | None = None, omit_length: bool = False):
    """A route answering `status` with `body`; Content-Length is honest unless `length` or `omit_length` says."""

    def route(h):
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if omit_length:
            h.send_header("Connection", "close")
            h.close_connection = True
        else:
            h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)
        if length is not None and length > len(body):
            h.close_connection = True  # promise more than we send, then hang up

    return route


def redirect(location: str, status: int = 302):
    def route(h):
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


def stall_before_headers(server: LocalServer):
    def route(h):
        server.release.wait(30)  # accepted and read the request; answers nothing

    return route


def stall_after_headers(server: LocalServer):
    def route(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(len(PNG)))
        h.end_headers()
        h.wfile.write(PNG[:20])
        server.release.wait(30)

    return route


def trickle(server: LocalServer, where: str):
    """One byte every 0.1 s forever, in the body or in the headers: no single socket wait ever times out."""

    def route(h):
        if where == "body":
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n")
        else:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Slow: ")
        while not server.release.wait(0.1):
            h.wfile.write(b"a")
        h.close_connection = True

    return route


def stream(chunked: bool, total: int = 16 * 2**20):
    """A body far larger than the cap, without Content-Length: close-delimited, or chunked."""

    def route(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close")
        h.end_headers()
        h.close_connection = True
        block, sent = BIG_PNG[:8192].ljust(8192, b"\0"), 0
        while sent < total:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            sent += len(block)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    return route


@pytest.fixture
def server():
    local = LocalServer()
    local.routes["/good.png"] = send(PNG)
    yield local
    local.close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Talk to 127.0.0.1 directly even where the environment names a proxy."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


# ------------------------------------------------------------------ helpers


def cache_is_empty(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


def fails_cleanly(server: LocalServer, url: str, cache: Path, match: str, **kwargs) -> str:
    """download_image(url) raises a short one-line KitError naming url and matching `match`; the cache holds
    nothing afterwards, and a good download into the same cache still works. Returns the message."""
    with pytest.raises(cvkit.KitError) as info:
        cvkit.download_image(url, cache_dir=cache, **kwargs)
    message = str(info.value)
    assert re.search(match, message), message
    assert "\n" not in message and "Traceback" not in message and len(message) <= 300, message
    assert url[:90] in message, message
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    assert cache_is_empty(cache), sorted(p.name for p in cache.iterdir())
    good = cvkit.download_image(server.url("/good.png"), cache_dir=cache)
    assert good.read_bytes() == PNG and [p.name for p in cache.iterdir()] == [good.name]
    good.unlink()
    return message


# ------------------------------------------------------------------ a good download


def test_good_image_downloads_into_the_cache_as_a_valid_image(server, cache):
    path = cvkit.download_image(server.url("/good.png"), cache_dir=cache)
    assert path.parent == cache and path.read_bytes() == PNG and path.suffix == ".png"
    with Image.open(path) as image:
        assert image.size == (16, 16)
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left beside it


def test_second_download_of_the_same_url_makes_no_request(server, cache):
    first = cvkit.download_image(server.url("/good.png"), cache_dir=cache)
    second = cvkit.download_image(server.url("/good.png"), cache_dir=cache)
    assert first == second and server.count("/good.png") == 1


# ------------------------------------------------------------------ HTTP errors


@pytest.mark.parametrize("status, reason", [(404, "Not Found"), (500, "Internal Server Error")])
def test_http_error_status_is_a_kit_error_naming_the_status(server, cache, status, reason):
    server.routes["/missing.png"] = send(b"nope", status=status, content_type="text/plain")
    message = fails_cleanly(server, server.url("/missing.png"), cache, f"HTTP {status}")
    assert reason in message


# ------------------------------------------------------------------ stalls and trickles


def test_server_that_answers_nothing_times_out_within_about_the_timeout(server, cache):
    server.routes["/stall.png"] = stall_before_headers(server)
    start = time.monotonic()
    with pytest.raises(cvkit.KitError, match="timed out"):
        cvkit.download_image(server.url("/stall.png"), cache_dir=cache, timeout=1)
    assert time.monotonic() - start < 3.0
    fails_cleanly(server, server.url("/stall.png"), cache, r"timed out.*sent nothing for 0\.3 s", timeout=0.3)


def test_server_that_stops_after_the_headers_times_out_within_about_the_timeout(server, cache):
    server.routes["/half.png"] = stall_after_headers(server)
    start = time.monotonic()
    with pytest.raises(cvkit.KitError, match="timed out"):
        cvkit.download_image(server.url("/half.png"), cache_dir=cache, timeout=1)
    assert time.monotonic() - start < 3.0
    assert cache_is_empty(cache)


def test_listener_that_never_accepts_times_out(server, cache):
    listener = socket.create_server(("127.0.0.1", 0), backlog=4)  # the kernel completes the connect; no one reads
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/never.png"
        start = time.monotonic()
        fails_cleanly(server, url, cache, "timed out", timeout=1)
        assert time.monotonic() - start < 3.0
    finally:
        listener.close()


@pytest.mark.parametrize("where", ["body", "headers"])
def test_slow_trickle_is_stopped_by_the_overall_deadline(server, cache, where):
    server.routes["/slow.png"] = trickle(server, where)
    start = time.monotonic()
    fails_cleanly(server, server.url("/slow.png"), cache, r"timed out.*1\.5 s in all", timeout=1, deadline=1.5)
    assert time.monotonic() - start < 3.5
    # the abandoned download's socket was shut, so its worker thread ends too (nothing keeps trickling in)
    for _ in range(40):
        if not any(t.name == "cvkit-download" for t in threading.enumerate()):
            break
        time.sleep(0.05)
    assert not any(t.name == "cvkit-download" for t in threading.enumerate())


# ------------------------------------------------------------------ redirects


def test_redirect_to_an_image_is_followed(server, cache):
    server.routes["/moved.png"] = redirect("/good.png", 301)
    path = cvkit.download_image(server.url("/moved.png"), cache_dir=cache)
    assert path.read_bytes() == PNG and server.count("/good.png") == 1


def test_redirect_loop_is_a_kit_error(server, cache):
    server.routes["/a.png"] = redirect("/b.png")
    server.routes["/b.png"] = redirect("/a.png")
    fails_cleanly(server, server.url("/a.png"), cache, "redirect")
    assert len(server.requests) < 20


def test_endless_redirect_chain_is_a_kit_error(server, cache):
    counter = iter(range(1000))
    server.routes["*"] = lambda h: redirect(f"/hop{next(counter)}.png")(h)
    fails_cleanly(server, server.url("/hop.png"), cache, "redirects more than")
    assert len(server.requests) <= 10


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "data:image/png;base64,AAAA",
                                      "javascript:alert(1)"])
def test_redirect_to_a_non_http_scheme_is_refused(server, cache, location, monkeypatch):
    server.routes["/jump.png"] = redirect(location)
    monkeypatch.setattr(urllib.request.FileHandler, "file_open", lambda *a: pytest.fail("file: was opened"))
    monkeypatch.setattr(urllib.request.FTPHandler, "ftp_open", lambda *a: pytest.fail("ftp: was opened"))
    monkeypatch.setattr(urllib.request.DataHandler, "data_open", lambda *a: pytest.fail("data: was opened"))
    fails_cleanly(server, server.url("/jump.png"), cache, "refused.*only http and https")


# ------------------------------------------------------------------ not an image


def test_html_page_instead_of_an_image_says_it_is_an_html_page(server, cache):
    server.routes["/login.png"] = send(HTML, content_type="text/html; charset=utf-8")
    fails_cleanly(server, server.url("/login.png"), cache, "an HTML page")


def test_html_page_served_as_an_image_type_is_still_recognised(server, cache):
    server.routes["/fake.png"] = send(HTML, content_type="application/octet-stream")
    fails_cleanly(server, server.url("/fake.png"), cache, "HTML")


def test_empty_body_is_a_kit_error(server, cache):
    server.routes["/empty.png"] = send(b"")
    fails_cleanly(server, server.url("/empty.png"), cache, "empty")


# ------------------------------------------------------------------ size cap


def test_body_over_the_size_cap_is_refused(server, cache):
    server.routes["/big.png"] = send(BIG_PNG)
    fails_cleanly(server, server.url("/big.png"), cache, "refused.*over the 4 KB limit", max_bytes=4096)
    assert server.count("/big.png") == 1


def test_body_over_the_size_cap_without_content_length_is_refused(server, cache):
    server.routes["/endless.png"] = stream(chunked=False)
    start = time.monotonic()
    fails_cleanly(server, server.url("/endless.png"), cache, "refused.*more than the 4 KB limit", max_bytes=4096)
    assert time.monotonic() - start < 5  # stopped at the cap, not after the 16 MB the server offers


def test_chunked_body_over_the_size_cap_is_refused(server, cache):
    server.routes["/chunked.png"] = stream(chunked=True)
    fails_cleanly(server, server.url("/chunked.png"), cache, "refused.*more than the 4 KB limit", max_bytes=4096)


def test_content_length_that_understates_the_body_is_a_kit_error(server, cache):
    server.routes["/liar.png"] = send(BIG_PNG, length=100)  # says 100 bytes (under the cap), sends far more
    fails_cleanly(server, server.url("/liar.png"), cache, "damaged or truncated|not an image", max_bytes=4096)


# ------------------------------------------------------------------ truncation


def test_truncated_body_is_a_kit_error(server, cache):
    server.routes["/cut.png"] = send(BIG_PNG[: len(BIG_PNG) // 2], length=len(BIG_PNG))
    fails_cleanly(server, server.url("/cut.png"), cache, f"broke off after {len(BIG_PNG) // 2} of {len(BIG_PNG)} bytes")


def test_truncated_image_without_content_length_is_a_kit_error(server, cache):
    server.routes["/cut.png"] = send(BIG_PNG[: len(BIG_PNG) // 2], omit_length=True)
    fails_cleanly(server, server.url("/cut.png"), cache, "damaged or truncated")


# ------------------------------------------------------------------ checksums


def test_checksum_mismatch_is_a_kit_error(server, cache):
    wrong = hashlib.sha256(b"something else").hexdigest()
    fails_cleanly(server, server.url("/good.png"), cache, "checksum mismatch", sha256=wrong)


def test_matching_checksum_downloads(server, cache):
    path = cvkit.download_image(server.url("/good.png"), cache_dir=cache, sha256=hashlib.sha256(PNG).hexdigest().upper())
    assert path.read_bytes() == PNG


def test_cached_file_whose_checksum_no_longer_matches_is_downloaded_again(server, cache):
    url = server.url("/good.png")
    path = cvkit.download_image(url, cache_dir=cache)
    path.write_bytes(b"tampered")
    again = cvkit.download_image(url, cache_dir=cache, sha256=hashlib.sha256(PNG).hexdigest())
    assert again == path and path.read_bytes() == PNG and server.count("/good.png") == 2


def test_stale_cached_file_is_removed_when_the_new_download_fails(server, cache):
    url = server.url("/good.png")
    cvkit.download_image(url, cache_dir=cache).write_bytes(b"tampered")
    wrong = hashlib.sha256(b"something else").hexdigest()
    fails_cleanly(server, url, cache, "checksum mismatch", sha256=wrong)


def test_malformed_checksum_is_refused_without_a_request(server, cache):
    with pytest.raises(cvkit.KitError, match="64 hexadecimal digits"):
        cvkit.download_image(server.url("/good.png"), cache_dir=cache, sha256="abc")
    assert server.requests == [] and not cache.exists()


# ------------------------------------------------------------------ schemes


@pytest.mark.parametrize("url", ["file:///{image}", "ftp://127.0.0.1/image.png", "data:image/png;base64,{b64}",
                                 "javascript:alert(1)", "/just/a/path.png", "http:///no-host.png"])
def test_non_http_url_is_refused_without_any_io(tmp_path, cache, url, monkeypatch):
    import base64

    image = tmp_path / "image.png"
    image.write_bytes(PNG)
    url = url.format(image=str(image).lstrip("/"), b64=base64.b64encode(PNG).decode())

    def no_io(*args, **kwargs):
        raise AssertionError("download_image did I/O for a refused URL")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_io)
    monkeypatch.setattr(urllib.request, "urlopen", no_io)
    monkeypatch.setattr(socket.socket, "connect", no_io)
    monkeypatch.setattr(socket, "getaddrinfo", no_io)
    with pytest.raises(cvkit.KitError, match="refused") as info:
        cvkit.download_image(url, cache_dir=cache)
    assert "\n" not in str(info.value) and url[:40] in str(info.value)
    assert not cache.exists()


# ------------------------------------------------------------------ hostile names


HOSTILE_PATHS = [
    "/../../etc/passwd.jpg",
    "/%2e%2e%2f%2e%2e%2fescaped.jpg",
    "/..%2f..%2f..%2fescaped.png",
    "/a/" + "x" * 4000 + ".jpg",
    "/" + "../" * 30 + "escaped.png",
    "/dir/.%00hidden.png",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=["dotdot", "encoded-dotdot", "mixed", "long", "deep", "nul"])
def test_hostile_file_name_in_the_url_stays_inside_the_cache(server, tmp_path, cache, path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    server.routes["*"] = send(PNG)
    saved = cvkit.download_image(server.url(path), cache_dir=cache)
    assert server.requests  # the server really answered it
    assert saved.resolve().parent == cache.resolve() and saved.exists()
    assert re.fullmatch(r"[0-9a-f]{20}\.(jpg|png|img)", saved.name)
    assert [p.name for p in cache.iterdir()] == [saved.name]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["cache", f"cache/{saved.name}", "cwd"]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


@pytest.mark.parametrize("disposition", [
    'attachment; filename="../../escaped.jpg"',
    "attachment; filename*=UTF-8''..%2F..%2Fescaped.jpg",
    'attachment; filename="/tmp/escaped.jpg"',
    'inline; filename="' + "y" * 3000 + '.png"',
])
def test_hostile_file_name_in_content_disposition_stays_inside_the_cache(server, tmp_path, cache, disposition,
                                                                          monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    server.routes["/photo.jpg"] = send(PNG, headers={"Content-Disposition": disposition})
    saved = cvkit.download_image(server.url("/photo.jpg"), cache_dir=cache)
    assert saved.parent == cache and "escaped" not in saved.name and "yyy" not in saved.name
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["cache", f"cache/{saved.name}", "cwd"]
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert not Path("/tmp/escaped.jpg").exists()


# ------------------------------------------------------------------ every failure, across the board


FAILURES = {
    "404": (send(b"x", status=404, content_type="text/plain"), {}),
    "500": (send(b"x", status=500, content_type="text/plain"), {}),
    "html": (send(HTML, content_type="text/html"), {}),
    "not-an-image": (send(b"GIF89a but not really" * 10, content_type="image/gif"), {}),
    "too-big": (send(BIG_PNG), {"max_bytes": 4096}),
    "too-big-no-length": (stream(chunked=False, total=2**20), {"max_bytes": 4096}),
    "truncated": (send(BIG_PNG[:500], length=len(BIG_PNG)), {}),
    "checksum": (send(PNG), {"sha256": "0" * 64}),
    "redirect-to-file": (redirect("file:///etc/hosts"), {}),
    "connection-refused": (None, {}),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_every_failure_leaves_no_file_in_the_cache_and_a_later_download_works(server, cache, case):
    route, kwargs = FAILURES[case]
    if route is None:
        closed = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/gone.png"
        closed.close()
    else:
        server.routes["/bad.png"] = route
        url = server.url("/bad.png")
    cache.mkdir()
    (cache / "keep.png").write_bytes(PNG)  # someone else's file is left alone
    with pytest.raises(cvkit.KitError):
        cvkit.download_image(url, cache_dir=cache, **kwargs)
    assert [p.name for p in cache.iterdir()] == ["keep.png"]
    (cache / "keep.png").unlink()
    fails_cleanly(server, url, cache, ".", **kwargs)


@pytest.mark.parametrize("case", list(FAILURES))
def test_failure_message_is_one_short_line_naming_the_url(server, cache, case):
    route, kwargs = FAILURES[case]
    server.routes["/bad.png"] = route or send(b"", status=503, content_type="text/plain")
    url = server.url("/bad.png")
    with pytest.raises(cvkit.KitError) as info:
        cvkit.download_image(url, cache_dir=cache, **kwargs)
    message = str(info.value)
    assert url in message and "\n" not in message and len(message) <= 200, message
    assert "Traceback" not in message and "Error(" not in message and "<" not in message, message


def test_very_long_url_is_shortened_in_the_message(server, cache):
    path = "/" + "z" * 3000 + ".png"
    server.routes[path] = send(b"x", status=404, content_type="text/plain")
    message = fails_cleanly(server, server.url(path), cache, "HTTP 404")
    assert len(message) < 250 and "..." in message
