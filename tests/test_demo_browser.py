"""The live demo's page in a real browser: headless Chromium driven by Playwright, with Chromium's fake camera.

One app (stand-in models, on a free port of 127.0.0.1) and one browser serve the whole module; each test opens its
own page. The browser is the system's Chromium (`make browser` installs Debian's package where it is missing), not
Playwright's download; without one the module is skipped in one line, or fails where CVKIT_REQUIRE_BROWSER=1 (CI).
Every wait is bounded. The same browser runs the JavaScript with which Lab 2 takes a photo in
Colab (cvkit.camera._TAKE_PHOTO_JS) in a plain page, Colab's frontend stubbed.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
from pathlib import Path

import cvkit
import pytest
import torch
from cvkit import demo as live
from cvkit.camera import _TAKE_PHOTO_JS
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")  # also make browser's list
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
DENY_CAMERA = ("navigator.mediaDevices.getUserMedia = () => "
               "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));")
WAIT_MS = 60_000  # the longest any step may take: the first use of a tab loads its model
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")


CHROMIUM = os.environ.get("CVKIT_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
if not CHROMIUM:
    why = "no Chromium for the browser tests: `sudo make browser` installs Debian's, or set CVKIT_CHROMIUM to one"
    if os.environ.get("CVKIT_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure, not a skip
        pytest.fail(why, pytrace=False)
    pytest.skip(why, allow_module_level=True)

pytestmark = [pytest.mark.usefixtures("pil_open_left_as_found"),  # the detect tab imports ultralytics
              pytest.mark.standins("resnet", "yolo", "siglip")]  # the page's three tabs


@pytest.fixture(scope="module")
def models() -> dict:
    """Filled by the app as each tab's model first loads (tests compare the page with these very models)."""
    return {}


@pytest.fixture(scope="module")
def url(models):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = live.build_demo(models=models, device="cpu", dtype=torch.float32)
    live.launch_demo(app, port=port, block=False, quiet=True)
    yield app.local_url
    app.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FAKE_CAMERA)
        yield chromium
        chromium.close()


@pytest.fixture
def outside():
    """URLs beyond this machine that the test's pages asked for (each one refused)."""
    return []


def new_page(browser, outside, deny_camera: bool = False):
    """A page in a fresh context whose requests beyond 127.0.0.1 are refused and listed in `outside`."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)

    def route(request_route):
        if request_route.request.url.startswith(LOCAL):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    if deny_camera:
        context.add_init_script(DENY_CAMERA)
    return context.new_page()


@pytest.fixture
def page(browser, outside):
    page = new_page(browser, outside)
    yield page
    page.context.close()


@pytest.fixture
def denied_page(browser, outside):
    page = new_page(browser, outside, deny_camera=True)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def bus() -> Path:
    return next(s.path for s in cvkit.sample_images(2) if s.name == "bus")


def bars(page, component: str) -> dict[str, float]:
    """The labels and values of the bars that a gr.Label with elem_id `component` shows."""
    meters = page.locator(f"#{component} [data-testid$='-confidence-set'] meter")
    meters.first.wait_for(state="attached")  # a bar of a probability near 0 has no width, so is not "visible"
    return {m.get_attribute("aria-label"): float(m.get_attribute("value")) for m in meters.all()}


def camera_playing(page, component: str) -> None:
    """Wait until the webcam box with elem_id `component` shows the camera's frames."""
    page.wait_for_function(f"() => document.querySelector('#{component} video')?.videoWidth > 0", timeout=WAIT_MS)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


# ------------------------------------------------------------------- the app


def test_the_page_loads_nothing_from_beyond_this_machine(page, url, outside):
    page.goto(url)  # the page keeps a connection open to its server: "network idle" never comes
    page.locator("#classify-status").get_by_text("ready").wait_for()  # scripts, styles and fonts are loaded by then
    assert outside == []


def test_an_uploaded_photo_shows_the_top5_of_the_classify_function(page, url, bus, models):
    page.goto(url)
    page.locator("#classify-image input[type=file]").set_input_files(bus)
    shown = bars(page, "classify-top5")

    expected = live.classify(bus, models["classify"])
    assert list(shown) == list(expected)
    assert all(abs(shown[name] - p) < 1e-6 for name, p in expected.items())


def test_a_webcam_snapshot_is_classified(page, url):
    page.goto(url)
    box = page.locator("#classify-image")
    box.get_by_role("button", name="Capture from camera").click()
    box.get_by_text("Click to Access Webcam").click()
    camera_playing(page, "classify-image")  # a click before the first frame takes no photo
    box.get_by_role("button", name="capture photo").click()
    assert len(bars(page, "classify-top5")) == 5


def test_a_file_that_is_not_an_image_gets_its_message_in_the_page_and_the_page_serves_on(page, url, bus, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("<!doctype html><html><body>Forbidden</body></html>")
    page.goto(url)
    upload = page.locator("#classify-image input[type=file]")
    upload.set_input_files(fake)
    page.get_by_test_id("toast-text").get_by_text("holiday.jpg is an HTML/XML page, not an image").wait_for()

    page.locator("#classify-image button[aria-label='Remove Image']").click()
    upload.set_input_files(bus)
    assert len(bars(page, "classify-top5")) == 5


def test_typed_labels_show_their_sigmoid_scores(page, url, bus, models):
    page.goto(url)
    open_tab(page, "Zero-shot")
    page.locator("#zero-shot-image input[type=file]").set_input_files(bus)
    bars(page, "zero-shot-scores")  # the preset labels, scored once the image is encoded
    labels = page.locator("#zero-shot-labels textarea")
    labels.fill("bus, cat, street")
    labels.press("Enter")
    page.locator("#zero-shot-scores [data-testid='street-confidence-set']").wait_for()
    shown = bars(page, "zero-shot-scores")

    expected, _ = live.zero_shot(bus, "bus, cat, street", models["zero-shot"],
                                 template=live.ZERO_SHOT_TEMPLATES["subjects"])
    assert set(shown) == set(expected)
    assert all(abs(shown[label] - p) < 1e-5 for label, p in expected.items())


def test_a_preset_loads_the_labs_class_set(page, url, bus):
    page.goto(url)
    open_tab(page, "Zero-shot")
    page.locator("#zero-shot-image input[type=file]").set_input_files(bus)
    bars(page, "zero-shot-scores")
    page.get_by_role("button", name="seasons").click()
    page.locator("#zero-shot-scores [data-testid='winter-confidence-set']").wait_for()

    assert set(bars(page, "zero-shot-scores")) == set(cvkit.read_class_sets()["seasons"])
    assert page.locator("#zero-shot-template textarea").input_value() == live.ZERO_SHOT_TEMPLATES["seasons"]


def test_an_empty_label_list_gets_its_message_in_the_page(page, url, bus):
    page.goto(url)
    open_tab(page, "Zero-shot")
    page.locator("#zero-shot-image input[type=file]").set_input_files(bus)
    bars(page, "zero-shot-scores")
    labels = page.locator("#zero-shot-labels textarea")
    labels.fill(" , ")
    labels.press("Enter")
    page.get_by_test_id("toast-text").get_by_text("no labels: type at least one").wait_for()


def test_the_webcam_stream_comes_back_with_boxes_and_frames_per_second(page, url):
    page.goto(url)
    open_tab(page, "Detect")
    page.get_by_text("Click to Access Webcam").click()
    camera_playing(page, "detect-camera")
    page.get_by_role("button", name="capture photo").click()  # "Record": starts the stream
    text = page.locator("#detect-camera-text textarea")
    page.wait_for_function("e => /frames per second/.test(e.value)", arg=text.element_handle(), timeout=WAIT_MS)
    # The stream replaces the image's source with each frame, which would cancel a pending img.decode(): poll instead
    # until the image shown at that moment is fully loaded, and read its size then.
    size = page.wait_for_function(
        "() => { const img = document.querySelector('#detect-camera-boxes img');"
        " return img?.complete && img.naturalWidth > 0 && [img.naturalWidth, img.naturalHeight]; }",
        timeout=WAIT_MS).json_value()
    camera = page.locator("#detect-camera video").evaluate("v => [v.videoWidth, v.videoHeight]")

    assert size == camera and size[0] > 0, "the annotated frame has the camera's size"
    assert text.input_value().startswith("stream: ") and " ms per image (inference " in text.input_value()


def test_a_blocked_camera_says_so_in_the_page(denied_page, url):
    denied_page.goto(url)
    open_tab(denied_page, "Detect")
    denied_page.get_by_text("Click to Access Webcam").click()
    message = denied_page.locator("#camera-message")
    message.wait_for()
    assert message.inner_text().startswith("Camera: the browser was not allowed to use the camera.")


# ------------------------------------------------- Lab 2's capture in Colab


COLAB_PAGE = f"""<!doctype html><html><body><script>
window.iframeHeights = [];
window.google = {{colab: {{output: {{setIframeHeight: (height) => window.iframeHeights.push(height)}}}}}};
{_TAKE_PHOTO_JS}
</script></body></html>"""


def colab_page(page):
    """A plain page on 127.0.0.1 (a secure origin, as Colab's is) holding the capture script and a stub of Colab."""
    page.route("http://127.0.0.1:9/colab", lambda route: route.fulfill(body=COLAB_PAGE, content_type="text/html"))
    page.goto("http://127.0.0.1:9/colab")
    return page


def test_colab_capture_script_returns_the_cameras_photo_as_a_jpeg(page):
    colab_page(page)
    page.evaluate("() => { window.photo = takePhoto(0.8, 30000); }")
    # The button works once the script has resized the output frame (then it waits for the click): not before.
    page.wait_for_function("() => window.iframeHeights.length > 0", timeout=WAIT_MS)
    page.get_by_role("button", name="Capture").click()
    data = page.evaluate("() => window.photo")

    assert data.startswith("data:image/jpeg;base64,")
    photo = Image.open(io.BytesIO(base64.b64decode(data.partition(",")[2])))
    assert photo.format == "JPEG" and photo.size[0] > 0
    assert page.locator("video").count() == 0, "the preview is removed after the photo"


def test_colab_capture_script_reports_a_blocked_camera(denied_page):
    colab_page(denied_page)
    assert denied_page.evaluate("() => takePhoto(0.8, 30000)") == "error:NotAllowedError (Permission denied)"
