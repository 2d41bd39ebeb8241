"""The live demo (cvkit.demo and notebooks/05_live_demo.ipynb): each tab's function, called directly with the stand-ins.

The page itself, in a real browser, is tested in test_demo_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import cvkit
import httpx
import numpy as np
import pytest
import torch
from cvkit import KitError
from cvkit import demo as live
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_live_demo.ipynb"
CLIP_ID = "openai/clip-vit-base-patch32"


pytestmark = [
    pytest.mark.usefixtures("pil_open_left_as_found"),  # the detect tab imports ultralytics
    pytest.mark.standins("resnet", "yolo", "siglip"),
]


@pytest.fixture(scope="module")
def models():
    """Each tab's model, loaded by the demo from this session's stand-ins, on the CPU in float32."""
    return {task: live.load_model(task, device="cpu", dtype=torch.float32) for task in live.TASKS}


@pytest.fixture(scope="module")
def bus() -> Path:
    return next(s.path for s in cvkit.sample_images(2) if s.name == "bus")


@pytest.fixture(scope="module")
def image(bus) -> Image.Image:
    return cvkit.load_image(bus)


def data_url(image: Image.Image) -> str:
    """The image as the page sends a webcam frame: a JPEG data: URL."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------- classify


def test_classify_gives_the_top5_of_the_softmax_over_the_weights_categories(models, image):
    model, weights = models["classify"]
    with torch.inference_mode():
        probs = model(weights.transforms()(image).unsqueeze(0)).softmax(dim=1)[0]
    expected, indices = torch.topk(probs, k=5)

    top5 = live.classify(image, models["classify"])

    assert list(top5) == [weights.meta["categories"][i] for i in indices.tolist()]
    assert np.allclose(list(top5.values()), expected.tolist(), atol=1e-6)


def test_classify_reads_an_upload_as_the_page_sends_it(models, bus, image):
    assert live.classify({"path": str(bus), "orig_name": bus.name}, models["classify"]) == \
        live.classify(image, models["classify"])


# --------------------------------------------------------------------- detect


def test_detect_draws_ultralytics_boxes_and_returns_them_in_rgb(models, image):
    result = models["detect"].predict(image, conf=0.25, iou=0.7, device="cpu", verbose=False)[0]

    annotated, _ = live.detect(image, models["detect"], conf=0.25, iou=0.7, device="cpu")

    assert len(result.boxes) > 0, "the stand-in gives boxes on the bus: the drawing is tested"
    assert np.array_equal(annotated, result.plot()[..., ::-1])


def test_detect_summary_counts_the_boxes_of_each_class(models, image):
    result = models["detect"].predict(image, conf=0.25, iou=0.7, device="cpu", verbose=False)[0]
    names = [result.names[int(c)] for c in result.boxes.cls.tolist()]

    _, summary = live.detect(image, models["detect"], conf=0.25, iou=0.7, device="cpu")

    counts = dict((name, int(n)) for n, name in re.findall(r"(\d+) ([a-z ]+?)(?:,| \|)", summary.split(":", 1)[1]))
    assert int(re.match(r"^(\d+) box(?:es)?: ", summary).group(1)) == len(names)
    assert counts == {name: names.count(name) for name in set(names)}
    assert re.search(r"\| \d+ ms per image \(inference \d+ ms\), so at most [\d.]+ images per second$", summary)


def test_detect_with_a_higher_conf_keeps_no_more_boxes(models, image):
    def boxes(conf):
        return int(live.detect(image, models["detect"], conf=conf, device="cpu")[1].split()[0])

    assert boxes(0.9) <= boxes(0.25)


def test_frame_rate_is_frames_per_second_over_the_arrival_times():
    assert live.frame_rate([10.0, 10.5, 11.0, 11.5]) == pytest.approx(2.0)


def test_frame_rate_needs_two_arrivals():
    assert live.frame_rate([]) is None and live.frame_rate([3.0]) is None


# ------------------------------------------------------------------ zero-shot


def test_zero_shot_scores_equal_the_models_own_forward_pass(models, image):
    """Lab 3's check: the hand-written scoring (normalise, matmul, e^t, b, sigmoid) against model(...)."""
    model, processor = models["zero-shot"]
    labels = ["cat", "dog", "bus"]
    prompts = [live.DEFAULT_TEMPLATE.format(label) for label in labels]
    inputs = processor(text=prompts, images=[image], padding="max_length", max_length=64, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).logits_per_image.sigmoid()[0]

    scores, _ = live.zero_shot(image, ", ".join(labels), models["zero-shot"])

    assert list(scores) == labels
    assert np.allclose(list(scores.values()), expected.tolist(), atol=1e-4)


def test_zero_shot_lower_cases_the_labels_as_siglip_2_was_trained(models, image):
    vector = live.image_vector(image, models["zero-shot"])
    upper, _ = live.score_labels(vector, "CAT, Dog", models["zero-shot"])
    lower, _ = live.score_labels(vector, "cat, dog", models["zero-shot"])
    assert list(upper.values()) == pytest.approx(list(lower.values()), abs=1e-6)


def test_zero_shot_table_lists_prompts_logits_and_probabilities_by_logit(models, image):
    scores, table = live.zero_shot(image, ["winter", "summer", "spring"], models["zero-shot"],
                                   template="a photo taken in {}.")
    assert list(table.columns) == ["label", "prompt", "logit", "probability"]
    assert table["logit"].is_monotonic_decreasing
    assert set(table["prompt"]) == {f"a photo taken in {label}." for label in scores}
    assert np.allclose(1 / (1 + np.exp(-table["logit"])), table["probability"], atol=6e-3)  # logits rounded to 0.01


@pytest.fixture(scope="module")
def clip_model():
    """CLIP (the stand-in), which `make weights` fetches and `--zero-shot openai/clip-vit-base-patch32` loads."""
    return live.load_model("zero-shot", CLIP_ID, "cpu", torch.float32)


def test_zero_shot_with_clip_scores_with_a_softmax_over_the_labels_as_clip_itself_does(clip_model, image):
    model, processor = clip_model
    labels = ["cat", "dog", "bus"]
    prompts = [live.DEFAULT_TEMPLATE.format(label) for label in labels]
    with torch.inference_mode():
        expected = model(**processor(text=prompts, images=[image], padding=True, return_tensors="pt"))
    scores, table = live.zero_shot(image, labels, clip_model)
    assert np.allclose(list(scores.values()), expected.logits_per_image.softmax(dim=1)[0].tolist(), atol=1e-4)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert set(table["prompt"]) == set(prompts)


def test_the_zero_shot_tab_says_how_the_models_scores_are_made():
    assert live.scores_caption(None) == "sigmoid probability of each label (they need not sum to 1)"


def test_the_zero_shot_tab_says_clips_scores_are_a_softmax(clip_model):
    assert live.scores_caption(clip_model) == "softmax over the labels (CLIP: the probabilities sum to 1)"


def test_the_zero_shot_tab_scores_an_uploaded_image_with_clip_titled_as_a_softmax(models, clip_model, bus):
    app = live.build_demo(models={**models, "zero-shot": clip_model}, sources={"zero-shot": CLIP_ID}, device="cpu",
                          dtype=torch.float32)
    live.launch_demo(app, port=free_port(), block=False, quiet=True)
    try:
        with bus.open("rb") as photo:
            path = httpx.post(f"{app.local_url}gradio_api/upload", files={"files": (bus.name, photo)},
                              timeout=30).json()[0]
        event = httpx.post(f"{app.local_url}gradio_api/call/on_image", timeout=30, json={"data": [
            {"path": path, "meta": {"_type": "gradio.FileData"}}, "cat, dog, bus", "a photo of a {}."]}).json()
        answer = httpx.get(f"{app.local_url}gradio_api/call/on_image/{event['event_id']}", timeout=120).text
    finally:
        app.close()
    assert "event: complete" in answer, answer[-2000:]
    bars = json.loads(answer.split("data: ")[-1])[1]  # an update of the Label: its title and its bars
    assert bars["label"] == "softmax over the labels (CLIP: the probabilities sum to 1)"
    assert sum(item["confidence"] for item in bars["value"]["confidences"]) == pytest.approx(1.0, abs=1e-4)


def test_siglips_scores_are_not_called_a_softmax(models):
    assert not live.scores_are_softmax(models["zero-shot"]) and "sigmoid" in live.scores_caption(models["zero-shot"])


def test_labels_are_split_at_commas_stripped_and_kept_once():
    assert live.parse_labels(" cat,dog , ,cat,  a red bus ") == ["cat", "dog", "a red bus"]


def test_an_empty_label_list_is_a_one_line_error(models):
    with pytest.raises(KitError, match=r"^no labels: type at least one, separated by commas"):
        live.score_labels(torch.ones(1, 32), " , ", models["zero-shot"])


def test_a_template_without_one_place_for_the_label_is_an_error(models):
    with pytest.raises(KitError, match=r"the template must hold \{\} exactly once"):
        live.score_labels(torch.ones(1, 32), "cat", models["zero-shot"], template="a photo")


def test_a_template_with_other_braces_is_the_same_one_line_error(models):
    with pytest.raises(KitError, match=r"the template must hold \{\} exactly once"):
        live.score_labels(torch.ones(1, 32), "cat", models["zero-shot"], template="a {kind} photo of {}")


def test_scoring_before_any_image_says_to_give_one(models):
    with pytest.raises(KitError, match=r"^no image yet: upload one"):
        live.score_labels(None, "cat", models["zero-shot"])


def test_the_presets_are_the_labs_class_sets_each_with_a_template_that_has_a_place_for_the_label():
    assert set(live.ZERO_SHOT_TEMPLATES) == set(cvkit.read_class_sets())
    assert all(template.count("{}") == 1 for template in live.ZERO_SHOT_TEMPLATES.values())


# ---------------------------------------------------------------- bad input


def test_a_non_image_upload_is_a_one_line_error_naming_the_file(tmp_path):
    page = tmp_path / "photo.jpg"
    page.write_text("<!doctype html><html><body>Not found</body></html>")
    with pytest.raises(KitError, match=r"^photo.jpg is an HTML/XML page, not an image$"):
        live.read_image({"path": str(page), "orig_name": page.name})


def test_a_webcam_frame_sent_as_a_data_url_is_decoded(image):
    frame = live.read_image({"path": None, "url": data_url(image)})
    assert frame.mode == "RGB" and frame.size == image.size


def test_a_data_url_that_holds_no_picture_is_a_one_line_error():
    with pytest.raises(KitError, match=r"^the page sent a picture that does not decode"):
        live.read_image({"path": None, "url": "data:image/jpeg;base64," + base64.b64encode(b"<html>").decode()})


def test_no_image_at_all_says_how_to_give_one():
    with pytest.raises(KitError, match=r"^no image yet: upload one, paste one or take a webcam snapshot$"):
        live.read_image(None)


def test_an_image_over_the_size_limit_is_shrunk_with_a_warning(monkeypatch):
    monkeypatch.setattr(live, "MAX_SIDE", 100)
    with pytest.warns(UserWarning, match=r"the image is 400 x 250 pixels: shrunk to 100 x 63"):
        shrunk = live.read_image(Image.new("RGB", (400, 250)))
    assert shrunk.size == (100, 63)


def test_an_image_under_the_size_limit_is_left_as_it_is(monkeypatch):
    monkeypatch.setattr(live, "MAX_SIDE", 400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert live.read_image(Image.new("RGB", (400, 250))).size == (400, 250)


def test_an_image_too_large_to_open_safely_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 300 x 300 is more than twice this: refused
    with pytest.raises(KitError, match=r"^huge.png is too large to open safely"):
        live.read_image({"path": str(path), "orig_name": path.name})


def test_a_kit_error_is_shown_in_the_page_as_its_own_line():
    import gradio as gr

    def fails(name):
        raise KitError(f"{name} is an HTML/XML page, not an image")

    with pytest.raises(gr.Error) as info:
        live.shown_in_page(fails)("<b>x</b>.jpg")
    assert info.value.message == "&lt;b&gt;x&lt;/b&gt;.jpg is an HTML/XML page, not an image"


def test_other_errors_pass_through_the_page_wrapper_unchanged():
    def fails():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        live.shown_in_page(fails)()


# ------------------------------------------------------------------- models


def test_a_missing_model_says_which_and_how_to_get_it():
    # The smaller SigLIP 2 is not among this session's stand-ins, and HF_HUB_OFFLINE is set: no network is asked.
    with pytest.raises(KitError, match=r"^google/siglip2-base-patch16-224 is not cached and cannot be downloaded "
                                       r"from huggingface.co: .* Run `make weights`"):
        live.load_model("zero-shot", "google/siglip2-base-patch16-224")


def test_the_tab_status_shows_the_missing_models_line():
    status = live.model_status({}, "zero-shot", "google/siglip2-base-patch16-224", "cpu", torch.float32)
    assert status.startswith("**No model for this tab**: google/siglip2-base-patch16-224 is not cached")


def test_the_tab_status_names_the_model_device_and_dtype_once_loaded(models):
    assert live.model_status(models, "detect") == "`yolo11n.pt` ready (cpu, float32)"


def test_weights_of_another_kind_of_model_are_a_one_line_error_on_the_classify_tab():
    with pytest.raises(KitError, match=r"^FasterRCNN_ResNet50_FPN_Weights.COCO_V1 are not the weights of a "
                                       r"torchvision classification model$"):
        live.load_model("classify", "FasterRCNN_ResNet50_FPN_Weights.COCO_V1")


def test_an_unknown_tab_is_a_one_line_error():
    with pytest.raises(KitError, match=r"^no tab called 'segment': choose one of classify, detect, zero-shot$"):
        live.load_model("segment")


def test_each_model_loads_once_even_when_page_events_ask_at_the_same_time(monkeypatch):
    calls = []

    def slow_load(task, *args):
        calls.append(task)
        time.sleep(0.2)
        return object()

    monkeypatch.setattr(live, "load_model", slow_load)
    loaded: dict = {}
    got = []
    threads = [threading.Thread(target=lambda: got.append(live.loaded_model(loaded, "detect"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert calls == ["detect"] and len(got) == 4 and all(model is got[0] for model in got)


def test_the_classifier_is_built_from_the_weights_it_is_given():
    model, weights = live.load_model("classify", "ResNet18_Weights.IMAGENET1K_V1", "cpu", torch.float32)
    assert type(model).__name__ == "ResNet" and weights.name == "IMAGENET1K_V1"
    assert sum(p.numel() for p in model.parameters()) == weights.meta["num_params"]


# ------------------------------------------------------------------- serving


@pytest.fixture
def served(models):
    """The app, served in this process on a free port of 127.0.0.1; closed afterwards."""
    app = live.build_demo(models=dict(models), device="cpu", dtype=torch.float32)
    live.launch_demo(app, port=free_port(), block=False, quiet=True)
    yield app
    app.close()


def test_the_app_serves_on_loopback_without_a_share_link_or_analytics(served):
    assert served.local_url.startswith("http://127.0.0.1:") and served.share_url is None
    assert served.analytics_enabled is False
    assert httpx.get(served.local_url, timeout=30).status_code == 200


def test_an_upload_over_the_size_limit_is_refused(monkeypatch, models):
    monkeypatch.setattr(live, "MAX_FILE_SIZE", "1kb")
    app = live.build_demo(models=dict(models), device="cpu", dtype=torch.float32)
    live.launch_demo(app, port=free_port(), block=False, quiet=True)
    try:
        answer = httpx.post(f"{app.local_url}gradio_api/upload", files={"files": ("big.jpg", b"x" * 4096)}, timeout=30)
    finally:
        app.close()
    assert answer.status_code == 413


def test_make_demo_serves_the_page_on_loopback_on_the_port_of_demo_args():
    port = free_port()
    server = subprocess.Popen(["make", "-s", "demo", f"DEMO_ARGS=--port {port}"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        stop, answer = time.monotonic() + 120, None
        while answer is None and server.poll() is None and time.monotonic() < stop:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0]
    assert answer is not None and answer.status_code == 200, output[-2000:]
    assert f"Running on local URL:  http://127.0.0.1:{port}" in output
    assert "public URL" not in output


def test_make_browser_without_a_chromium_or_root_says_what_to_do_in_one_line():
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    # The Makefile comes on standard input: the user "nobody" may not be allowed into the checkout's folder.
    result = subprocess.run([*as_user, "make", "-s", "-f", "-", "browser", "BROWSERS=no-such-browser"], cwd="/",
                            input=(ROOT / "Makefile").read_text(), capture_output=True, text=True, timeout=60,
                            env={"PATH": os.environ["PATH"]})
    assert result.returncode != 0
    assert result.stderr.splitlines()[0].startswith("The browser tests need Chromium: install it (Debian: ")


# ------------------------------------------------------------------ notebook
# (test_notebooks.py checks it as it checks every numbered notebook: no outputs, badges, its setup cell.)


def test_the_server_gets_pythons_own_asyncio_run_where_nest_asyncio_replaced_it(monkeypatch):
    import asyncio.runners

    import uvicorn.server

    def nested_run(main, *, debug=False):  # nest_asyncio's asyncio.run: no loop_factory, which uvicorn passes
        raise AssertionError("uvicorn would call this and fail")

    monkeypatch.setattr(uvicorn.server, "asyncio_run", nested_run)
    live.serve_on_plain_asyncio()
    if sys.version_info >= (3, 12):
        assert uvicorn.server.asyncio_run is asyncio.runners.run
    else:  # before 3.12 uvicorn uses a shim of its own, which nest_asyncio does not replace
        assert uvicorn.server.asyncio_run is nested_run
