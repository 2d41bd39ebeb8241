"""cvkit.images.download_image against a local HTTP server on 127.0.0.1: one test per behaviour, no outside traffic."""

from __future__ import annotations

import io
import os
import random
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cvkit
import pytest
from cvkit.images import download_image
from PIL import Image


def _png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), random.Random(0).randbytes(size * size * 3)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png(96)  # noise, about 28 KB: over the 4 KB cap some tests pass
HTML = b"<!doctype html><html><head><title>Photo page</title></head><body><img src='photo.jpg'></body></html>"


class Server:
    """A threaded HTTP server on 127.0.0.1 answering each path (or '*') as the test says; it records the paths asked."""

    def __init__(self):
        self.routes: dict = {}
        self.paths: list[str] = []
        self.release = threading.Event()  # set at teardown: stalling and trickling routes give up
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                owner.paths.append(self.path)
                (owner.routes.get(self.path) or owner.routes["*"])(self)

            def log_message(self, *args):
                pass

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hangs up is no error here
                    super().handle_error(request, client_address)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def send(body: bytes = PNG, status: int = 200, content_type: str = "image/png", length: int | None = None):
    """A route answering `status` with `body` and a Content-Length of `length` (default: the true length)."""

    def route(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return route


def redirect(location: str):
    def route(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """requests honours proxy variables: point them at a closed loopback port and exempt 127.0.0.1 with NO_PROXY,
    so no test is ever carried by a proxy (a test that were would fail, not leave the machine)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The images folder download_image writes to, under a fresh CVKIT_CACHE."""
    monkeypatch.setenv("CVKIT_CACHE", str(tmp_path / "kit-cache"))
    return tmp_path / "kit-cache" / "images"


@pytest.fixture
def server():
    local = Server()
    local.routes["/photo.png"] = send(PNG)
    yield local
    local.close()


def fails(url: str, cache: Path, match: str, **kwargs) -> str:
    """download_image(url) raises a one-line KitError naming url and matching `match`; the cache holds no file."""
    with pytest.raises(cvkit.KitError) as info:
        download_image(url, **kwargs)
    message = str(info.value)
    assert re.search(match, message), message
    assert "\n" not in message and url[:60] in message, message
    assert not cache.exists() or list(cache.iterdir()) == [], list(cache.iterdir())
    return message


# ------------------------------------------------------------------ a good download and the cache


def test_image_is_saved_in_the_images_folder_of_CVKIT_CACHE(server, cache):
    path = download_image(server.url("/photo.png"))
    assert path.parent == cache and path.read_bytes() == PNG
    assert list(cache.iterdir()) == [path]  # no temporary file left beside it


def test_cache_file_is_named_by_a_hash_of_the_url_not_its_path(server, cache):
    server.routes["*"] = send(PNG)
    path = download_image(server.url("/..%2f..%2fescaped.png?name=../../x.jpg"))
    assert path.parent == cache and re.fullmatch(r"[0-9a-f]{32}\.png", path.name)


def test_second_call_reuses_the_cached_file_without_a_request(server, cache):
    first = download_image(server.url("/photo.png"))
    assert download_image(server.url("/photo.png")) == first and server.paths == ["/photo.png"]


def test_load_image_opens_a_url_through_the_cache(server, cache):
    image = cvkit.load_image(server.url("/photo.png"))
    assert image.mode == "RGB" and image.size == (96, 96) and len(list(cache.iterdir())) == 1


def test_failed_write_leaves_no_partial_file(server, cache, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    fails(server.url("/photo.png"), cache, r"cannot save .* \(No space left on device\)")


# ------------------------------------------------------------------ URLs and redirects


def test_redirect_is_followed(server, cache):
    server.routes["/moved.png"] = redirect("/photo.png")
    assert download_image(server.url("/moved.png")).read_bytes() == PNG


def test_endless_redirects_stop_after_the_limit(server, cache):
    server.routes["*"] = lambda handler: redirect(f"/hop{len(server.paths)}.png")(handler)
    fails(server.url("/hop.png"), cache, "redirects more than 5 times")
    assert len(server.paths) == 6


def test_redirect_to_a_non_http_url_is_refused(server, cache):
    server.routes["/jump.png"] = redirect("file:///etc/passwd")
    fails(server.url("/jump.png"), cache, "refused: .* redirects to a URL that is not http")


def test_non_http_url_is_refused(cache):
    fails("ftp://127.0.0.1/photo.png", cache, "refused: .* is not http")


def test_url_without_a_host_is_refused(cache):
    fails("http:///photo.png", cache, "refused: .* is not a valid URL")


def test_unreachable_server_is_named_with_the_reason(cache):
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/photo.png"
    closed.close()
    fails(url, cache, "cannot be reached .*Connection refused")


def test_long_url_is_shortened_in_the_message(server, cache):
    server.routes["*"] = send(b"gone", status=404, content_type="text/plain")
    message = fails(server.url("/" + "z" * 3000 + ".png"), cache, "HTTP 404")
    assert len(message) < 250 and "..." in message


# ------------------------------------------------------------------ what the server answers


def test_http_error_names_the_status(server, cache):
    server.routes["/missing.png"] = send(b"nope", status=404, content_type="text/plain")
    fails(server.url("/missing.png"), cache, "answered HTTP 404 Not Found")


def test_html_page_is_refused_with_a_hint_to_copy_the_image_address(server, cache):
    server.routes["/page"] = send(HTML, content_type="text/html; charset=utf-8")
    fails(server.url("/page"), cache, "returned an HTML page, not an image: copy the image's own address")


def test_body_that_is_not_an_image_is_refused(server, cache):
    server.routes["/fake.png"] = send(b"just some text, not pixels", content_type="image/png")
    fails(server.url("/fake.png"), cache, "is not an image Pillow can read")


def test_truncated_image_is_refused(server, cache):
    server.routes["/cut.png"] = send(PNG[: len(PNG) // 2])
    fails(server.url("/cut.png"), cache, "not a complete image Pillow can decode .*truncated")


def test_connection_closed_before_the_promised_length_is_refused(server, cache):
    server.routes["/short.png"] = send(PNG[:1000], length=len(PNG))
    fails(server.url("/short.png"), cache, "broke off before the whole file arrived")


def test_declared_length_over_the_cap_is_refused(server, cache):
    fails(server.url("/photo.png"), cache, r"refused: .* is \d+(\.\d+)? KB, over the 4 KB limit", max_bytes=4096)


def test_streamed_body_over_the_cap_is_refused(server, cache):
    def endless_chunks(handler):  # chunked, so no Content-Length to check up front
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(128):  # 1 MB of zeros, then the end: a downloader without the cap fails on "not an image"
            handler.wfile.write(b"2000\r\n" + bytes(0x2000) + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    server.routes["/endless.png"] = endless_chunks
    fails(server.url("/endless.png"), cache, "refused: .* sent more than the 4 KB limit", max_bytes=4096)


# ------------------------------------------------------------------ time limits


def test_silent_server_times_out(server, cache):
    server.routes["/stall.png"] = lambda handler: server.release.wait(5)
    fails(server.url("/stall.png"), cache, r"timed out: .* sent nothing for 0\.2 s", timeout=0.2)


def test_trickling_server_is_stopped_by_the_deadline(server, cache):
    def trickle(handler):  # a byte every 0.05 s for 3 s, then it hangs up: no single wait reaches the timeout
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(60):
            if server.release.wait(0.05):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
        handler.close_connection = True

    server.routes["/slow.png"] = trickle
    fails(server.url("/slow.png"), cache, r"timed out: .* took longer than 0\.3 s in all", timeout=5, deadline=0.3)
