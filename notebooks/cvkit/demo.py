"""The live demo: the three labs' models in one Gradio page, for the lecture hall.

Three tabs: classify (Lab 1: top-5 of an uploaded, pasted or webcam image), detect (Lab 2: boxes on the webcam stream
or an upload, with `conf` and `iou` sliders), zero-shot (Lab 3: SigLIP 2's sigmoid scores for labels you type, or
CLIP's softmax over them). Each function runs the lab's own pipeline with the kit's helpers; each model loads once, on
first use of its tab, on the device and dtype the labs pick. `make demo` serves the page on this machine only
(127.0.0.1); the notebook `05_live_demo.ipynb` shows it inline in Colab and Kaggle. Run it as
`python -m cvkit.demo --help`.

gradio is imported only inside the functions that need it: it imports huggingface_hub, which reads its cache and
offline settings once, at import, and `main` must point them at the kit's cache first (cvkit.weights.use_kit_cache).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial, wraps
from typing import TYPE_CHECKING, Any

from PIL import Image

from .data import read_class_sets
from .env import pick_device, pick_dtype
from .errors import KitError
from .images import load_image, pil_open
from .weights import LAB_WEIGHTS, explain_load_errors, explain_oom, locate_weights, use_kit_cache, weights_name
from .zeroshot import image_features, text_features

if TYPE_CHECKING:
    import gradio as gr

__all__ = [
    "TASKS", "MAX_SIDE", "ZERO_SHOT_TEMPLATES", "DEFAULT_TEMPLATE",
    "read_image", "parse_labels", "load_model", "classify", "detect", "scores_are_softmax", "scores_caption",
    "image_vector", "score_labels", "zero_shot",
    "frame_rate", "loaded_model", "model_status", "shown_in_page", "build_demo", "launch_demo", "main",
]

TASKS = {"classify": LAB_WEIGHTS[1], "detect": LAB_WEIGHTS[2], "zero-shot": LAB_WEIGHTS[3]}  # tab -> lab's weights
MAX_SIDE = 4096  # longer images are shrunk to this (the models look at 224 to 640 pixels anyway)
MAX_FILE_SIZE = "50mb"  # uploads above this are refused by the page
ZERO_SHOT_TEMPLATES = {  # Lab 3's caption template for each of its class sets
    "seasons": "a photo taken in {}.",
    "subjects": "a photo of a {}.",
    "expressions": "a photo of a face looking {}.",
}
DEFAULT_TEMPLATE = "this is a photo of {}."  # the zero-shot pipeline's default, lower-cased (Lab 3, section 10)


# ---------------------------------------------------------------------- input


def read_image(value: Any) -> Image.Image:
    """An upright RGB PIL image from a path, PIL image, array or Gradio's file data; over MAX_SIDE pixels, shrunk.

    Raises a one-line KitError for what is not an image (from cvkit.load_image) or for no image at all.
    """
    if value is None:
        raise KitError("no image yet: upload one, paste one or take a webcam snapshot")
    if isinstance(value, dict):  # Gradio's file data: a file the page uploaded, or a data: URL
        url = value.get("url") or ""
        if value.get("path"):
            value = value["path"]
        elif url.startswith("data:image"):  # a webcam frame
            try:
                with pil_open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as frame:
                    frame.load()
                    value = frame.copy()
            except (OSError, ValueError) as err:
                raise KitError(f"the page sent a picture that does not decode ({err})") from err
        else:
            raise KitError("the page sent no image data (try the upload again)")
    image = load_image(value)
    if max(image.size) > MAX_SIDE:
        import gradio as gr

        size = image.size
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        gr.Warning(html.escape(f"the image is {size[0]} x {size[1]} pixels: shrunk to {image.width} x "
                               f"{image.height} for the demo (the models see at most 640 pixels anyway)"))
    return image


def parse_labels(text: str) -> list[str]:
    """The comma-separated labels of `text`, stripped, without empty or repeated ones; a KitError if none is left."""
    labels = list(dict.fromkeys(label.strip() for label in (text or "").split(",") if label.strip()))
    if not labels:
        raise KitError("no labels: type at least one, separated by commas (for example: cat, dog, horse)")
    return labels


# --------------------------------------------------------------------- models


def load_model(task: str, source: Any = None, device: Any = None, dtype: Any = None) -> Any:
    """Load the model of a tab the way its lab does: 'classify' -> (model, weights), 'detect' -> YOLO,
    'zero-shot' -> (model, processor). `source` defaults to the lab's weights; a missing model is a KitError line."""
    if task not in TASKS:
        raise KitError(f"no tab called {task!r}: choose one of {', '.join(TASKS)}")
    source = TASKS[task] if source is None else source
    device = pick_device() if device is None else device
    dtype = pick_dtype(device) if dtype is None else dtype
    if task == "classify":
        from torchvision import models

        weights = models.get_weight(weights_name(source)) if isinstance(source, str) else source
        architecture = next((name for name in models.list_models(module=models)
                             if models.get_model_weights(name) is type(weights)), None)
        if architecture is None:
            raise KitError(f"{weights_name(weights)} are not the weights of a torchvision classification model")
    locate_weights(source)  # one line on where the weights come from, or a KitError saying how to get them
    with explain_load_errors(source):
        if task == "classify":
            model = models.get_model(architecture, weights=weights).eval().to(device=device, dtype=dtype)
            return model, weights
        if task == "detect":
            from ultralytics import YOLO

            model = YOLO(source)
            if model.task != "detect":
                raise KitError(f"{source} is a {model.task} model: the detect tab needs a detection model")
            return model
        from transformers import AutoModel, AutoProcessor

        model = AutoModel.from_pretrained(source, dtype=dtype).to(device).eval()
        return model, AutoProcessor.from_pretrained(source)


def _device_and_dtype(model: Any) -> tuple[Any, Any]:
    parameter = next(model.parameters())
    return parameter.device, parameter.dtype


# ------------------------------------------------------------------- the tabs


def classify(image: Any, classifier: tuple[Any, Any], k: int = 5) -> dict[str, float]:
    """Lab 1's pipeline: the weights' transforms, the network, softmax in float32, torch.topk -> {class: probability}."""
    import torch

    model, weights = classifier
    image = read_image(image)
    device, dtype = _device_and_dtype(model)
    batch = weights.transforms()(image).unsqueeze(0).to(device=device, dtype=dtype)
    with explain_oom(hint="use the CPU or a smaller model"), torch.inference_mode():
        logits = model(batch)
    probs, indices = torch.topk(logits.float().softmax(dim=1)[0].cpu(), k=k)
    return {weights.meta["categories"][i]: p for i, p in zip(indices.tolist(), probs.tolist())}


def detect(image: Any, detector: Any, conf: float = 0.25, iou: float = 0.7, device: Any = None) -> tuple[Any, str]:
    """Lab 2's pipeline: predict with `conf` and `iou`, boxes drawn by Results.plot() -> (RGB array, one-line summary)."""
    image = read_image(image)
    device = pick_device() if device is None else device
    quantize = 16 if str(device).startswith("cuda") else None  # float16 on any CUDA GPU, as in Lab 2
    with explain_oom(hint="use the CPU or a smaller model"):
        result = detector.predict(image, conf=conf, iou=iou, device=device, quantize=quantize, verbose=False)[0]
    counts = Counter(result.names[int(c)] for c in result.boxes.cls.tolist())
    found = ", ".join(f"{n} {name}" for name, n in counts.most_common()) or "nothing"
    total = sum(result.speed.values())
    boxes = f"{len(result.boxes)} box" + ("" if len(result.boxes) == 1 else "es")
    summary = (f"{boxes}: {found} | {total:.0f} ms per image (inference "
               f"{result.speed['inference']:.0f} ms), so at most {1000 / max(total, 1e-3):.1f} images per second")
    return result.plot()[..., ::-1], summary  # plot() draws in BGR: reversed, RGB for the page


def frame_rate(times: Sequence[float]) -> float | None:
    """Frames per second over the arrival times `times` (seconds, oldest first); None with fewer than two."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def scores_are_softmax(zero_shot_model: tuple[Any, Any]) -> bool:
    """True for a model without SigLIP's logit bias (CLIP): its labels compete in a softmax, which sums to 1."""
    return getattr(zero_shot_model[0], "logit_bias", None) is None


def scores_caption(zero_shot_model: tuple[Any, Any] | None) -> str:
    """What the zero-shot tab's bars show for this model (None: before one is loaded, SigLIP 2's)."""
    if zero_shot_model is not None and scores_are_softmax(zero_shot_model):
        return "softmax over the labels (CLIP: the probabilities sum to 1)"
    return "sigmoid probability of each label (they need not sum to 1)"


def image_vector(image: Any, zero_shot_model: tuple[Any, Any]) -> Any:
    """The image tower's vector of the image (1, dim), float32 on the CPU: computed once per image, as in Lab 3."""
    model, processor = zero_shot_model
    device, dtype = _device_and_dtype(model)
    with explain_oom(hint="use the smaller google/siglip2-base-patch16-224"):
        return image_features(model, processor, [read_image(image)], device, dtype)


def score_labels(vector: Any, labels: str | Sequence[str], zero_shot_model: tuple[Any, Any],
                 template: str = DEFAULT_TEMPLATE) -> tuple[dict[str, float], Any]:
    """Lab 3's scoring of one image vector against the labels (a list, or comma-separated text) put in `template`:
    normalise, one matrix product, times e^t, plus b, sigmoid -> ({label: probability}, table with the logits).
    A CLIP model has no b: its probabilities are a softmax over the labels, as in Lab 3's section on CLIP."""
    import pandas as pd
    import torch

    if vector is None:
        raise KitError("no image yet: upload one, paste one or take a webcam snapshot")
    labels = parse_labels(labels) if isinstance(labels, str) else parse_labels(",".join(labels))
    try:
        if (template or "").count("{}") != 1:
            raise ValueError
        prompts = [template.format(label) for label in labels]
    except (ValueError, KeyError, IndexError) as err:
        raise KitError(f"the template must hold {{}} exactly once, where the label goes; got {template!r}") from err
    model, processor = zero_shot_model
    texts = text_features(model, processor, prompts, _device_and_dtype(model)[0])  # SigLIP: lower-cased, padded to 64
    image = vector / vector.norm(dim=-1, keepdim=True)
    texts = texts / texts.norm(dim=-1, keepdim=True)
    scale = model.logit_scale.detach().float().cpu().exp()
    if scores_are_softmax(zero_shot_model):
        logits = (scale * image @ texts.T)[0]
        probs = logits.softmax(dim=0)
    else:
        logits = (scale * image @ texts.T + model.logit_bias.detach().float().cpu())[0]
        probs = torch.sigmoid(logits)
        prompts = [p.lower() for p in prompts]
    table = pd.DataFrame({"label": labels, "prompt": prompts, "logit": logits.tolist(),
                          "probability": probs.tolist()}).sort_values("logit", ascending=False)
    return dict(zip(labels, probs.tolist())), table.round({"logit": 2, "probability": 4})


def zero_shot(image: Any, labels: str | Sequence[str], zero_shot_model: tuple[Any, Any],
              template: str = DEFAULT_TEMPLATE) -> tuple[dict[str, float], Any]:
    """image_vector, then score_labels: SigLIP's sigmoid probability of each label for one image (CLIP: softmax)."""
    return score_labels(image_vector(image, zero_shot_model), labels, zero_shot_model, template)


# -------------------------------------------------------------------- the app

_LOADING = threading.Lock()  # one model load at a time, so that two page events never load the same model twice

CAMERA_MESSAGE = """<script>
// Gradio's webcam box shows nothing when the browser gives it no camera: say why, in the page.
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason || {};
  const why = {
    NotAllowedError: "the browser was not allowed to use the camera. Allow it for this page (the camera icon in "
      + "the address bar), then click the webcam box again; or upload a photo instead",
    NotFoundError: "the browser found no camera. Connect one, or upload a photo instead",
    NotReadableError: "the camera is in use by another program. Close that program, then click the webcam box again",
    OverconstrainedError: "the camera cannot deliver a picture this page asks for. Try another camera",
  }[reason.name] || (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)
    && /getUserMedia|mediaDevices/.test(String(reason.message))
    ? "this browser offers no camera to this page (a page on http:// from another machine gets none). Open the "
      + "demo on the machine that serves it, or through its share link" : null);
  if (!why) return;
  event.preventDefault();
  let box = document.getElementById("camera-message");
  if (!box) {
    box = document.createElement("div");
    box.id = "camera-message";
    box.setAttribute("role", "alert");
    box.title = "click to close";
    box.style.cssText = "position:fixed;bottom:16px;left:50%;transform:translateX(-50%);z-index:1000;max-width:90%;"
      + "padding:10px 16px;border-radius:8px;background:#fff3cd;color:#664d03;border:1px solid #ffda6a;"
      + "font:15px sans-serif;cursor:pointer";
    box.onclick = () => box.remove();
    document.body.prepend(box);
  }
  box.textContent = "Camera: " + why + ".";
});
</script>"""


def loaded_model(models: dict[str, Any], task: str, source: Any = None, device: Any = None, dtype: Any = None) -> Any:
    """`models[task]`, loaded with load_model on first use: once, also when several page events ask at once."""
    with _LOADING:
        if task not in models:
            models[task] = load_model(task, source, device, dtype)
        return models[task]


def model_status(models: dict[str, Any], task: str, source: Any = None, device: Any = None, dtype: Any = None) -> str:
    """One line of Markdown for a tab: its model (loaded if need be) with device and dtype, or why it is missing."""
    source = TASKS.get(task) if source is None else source
    try:
        model = loaded_model(models, task, source, device, dtype)
    except KitError as err:
        return f"**No model for this tab**: {html.escape(str(err))}"
    if task == "detect":  # ultralytics moves the model at its first prediction: say where it will run
        device = pick_device() if device is None else device
        where = f"{device}, {'float16' if str(device).startswith('cuda') else 'float32'}"
    else:
        parameter = next(model[0].parameters())
        where = f"{parameter.device}, {str(parameter.dtype).replace('torch.', '')}"
    return f"`{html.escape(weights_name(source))}` ready ({where})"


def shown_in_page(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its KitError shown in the page as an error message (gr.Error), the app serving on."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KitError as err:
            import gradio as gr

            raise gr.Error(html.escape(str(err)), print_exception=False) from err

    return wrapper


def build_demo(models: dict[str, Any] | None = None, sources: dict[str, Any] | None = None,
               device: Any = None, dtype: Any = None, stream_every: float = 0.2) -> gr.Blocks:
    """The Gradio app with its three tabs. `models` (tab -> loaded model) is filled as each tab's model first loads;
    pass models loaded with load_model to reuse them. `sources` overrides the weights of any tab."""
    import gradio as gr
    import pandas as pd

    models = {} if models is None else models
    sources = {**TASKS, **(sources or {})}
    device = pick_device() if device is None else device
    dtype = pick_dtype(device) if dtype is None else dtype
    class_sets = read_class_sets()
    empty_table = pd.DataFrame(columns=["label", "prompt", "logit", "probability"])

    def model(task: str) -> Any:
        return loaded_model(models, task, sources[task], device, dtype)

    def status(task: str) -> str:
        return model_status(models, task, sources[task], device, dtype)

    def on_classify(payload: Any) -> Any:
        return None if payload is None else classify(payload, model("classify"))

    def on_detect(payload: Any, conf: float, iou: float) -> tuple[Any, str]:
        if payload is None:
            return None, ""
        return detect(payload, model("detect"), conf, iou, device)

    def on_frame(payload: Any, conf: float, iou: float, times: list[float] | None) -> tuple[Any, str, list[float]]:
        times = [*(times or [])[-9:], time.monotonic()]  # the arrival times of the last ten frames
        if payload is None:
            return None, "", times
        try:
            annotated, summary = detect(payload, model("detect"), conf, iou, device)
        except KitError as err:  # said in the text box: an error message for every frame would flood the page
            return None, str(err), times
        rate = frame_rate(times)
        shown = "measuring" if rate is None else f"{rate:.1f} frames per second"
        return annotated, f"stream: {shown} | {summary}", times

    def bars_and_table(vector: Any, labels: str, template: str) -> tuple[Any, Any]:  # bars titled by how they are made
        scores, table = score_labels(vector, labels, model("zero-shot"), template)
        return gr.Label(scores, label=scores_caption(model("zero-shot"))), table

    def on_image(payload: Any, labels: str, template: str) -> tuple[Any, Any, Any]:
        if payload is None:
            return None, None, empty_table
        vector = image_vector(payload, model("zero-shot"))
        return vector, *bars_and_table(vector, labels, template)

    def on_score(vector: Any, labels: str, template: str) -> tuple[Any, Any]:
        return bars_and_table(vector, labels, template)

    def on_preset(name: str) -> tuple[str, str]:
        return ", ".join(class_sets[name]), ZERO_SHOT_TEMPLATES.get(name, DEFAULT_TEMPLATE)

    def loads_on_first_use(task: str) -> str:
        return f"`{html.escape(weights_name(sources[task]))}` loads when this tab is first used"

    with gr.Blocks(title="cvkit live demo", analytics_enabled=False) as demo:
        gr.Markdown("# Live demo: classify, detect, zero-shot\nThe models of the three labs, each with its lab's "
                    "preprocessing. A model loads the first time its tab is opened.")
        with gr.Tab("Classify", id="classify") as tab_classify:
            classify_status = gr.Markdown(loads_on_first_use("classify"), elem_id="classify-status")
            with gr.Row():
                classify_in = gr.Image(label="image: upload, paste or webcam snapshot", type="filepath", height=420,
                                       sources=["upload", "clipboard", "webcam"], elem_id="classify-image")
                classify_out = gr.Label(label="top-5 classes (softmax probability)", num_top_classes=5,
                                        elem_id="classify-top5")
            classify_in.change(shown_in_page(on_classify), classify_in, classify_out, preprocess=False)
        with gr.Tab("Detect", id="detect") as tab_detect:
            detect_status = gr.Markdown(loads_on_first_use("detect"), elem_id="detect-status")
            with gr.Row():
                conf = gr.Slider(0.05, 0.95, value=0.25, step=0.05, label="conf: drop boxes below this confidence")
                iou = gr.Slider(0.1, 0.95, value=0.7, step=0.05, label="iou: NMS drops a box overlapping a more "
                                "confident one of its class by more than this")
            with gr.Tab("Webcam (live)"):
                with gr.Row():
                    camera = gr.Image(label="webcam", sources=["webcam"], streaming=True, type="filepath",
                                      height=420, elem_id="detect-camera")
                    camera_out = gr.Image(label="boxes", type="numpy", height=420, elem_id="detect-camera-boxes")
                camera_text = gr.Textbox(label="frames per second and boxes", interactive=False,
                                         elem_id="detect-camera-text")
                arrivals = gr.State([])
                camera.stream(on_frame, [camera, conf, iou, arrivals],
                              [camera_out, camera_text, arrivals], stream_every=stream_every,
                              show_progress="hidden", preprocess=False, concurrency_id="detect")
            with gr.Tab("Upload"):
                with gr.Row():
                    detect_in = gr.Image(label="image: upload or paste", type="filepath", height=420,
                                         sources=["upload", "clipboard"], elem_id="detect-image")
                    detect_out = gr.Image(label="boxes", type="numpy", height=420, elem_id="detect-boxes")
                detect_text = gr.Textbox(label="boxes and speed", interactive=False, elem_id="detect-text")
                for trigger in (detect_in.change, conf.release, iou.release):
                    trigger(shown_in_page(on_detect), [detect_in, conf, iou], [detect_out, detect_text],
                            preprocess=False, concurrency_id="detect")  # one YOLO, one prediction at a time
        with gr.Tab("Zero-shot", id="zero-shot") as tab_zero_shot:
            zero_shot_status = gr.Markdown(loads_on_first_use("zero-shot"), elem_id="zero-shot-status")
            with gr.Row():
                with gr.Column():
                    zero_shot_in = gr.Image(label="image: upload, paste or webcam snapshot", type="filepath",
                                            height=420, sources=["upload", "clipboard", "webcam"],
                                            elem_id="zero-shot-image")
                    labels = gr.Textbox(label="labels, separated by commas (Enter scores them)",
                                        value=", ".join(class_sets["subjects"]), elem_id="zero-shot-labels")
                    template = gr.Textbox(label="caption template: {} is where each label goes",
                                          value=ZERO_SHOT_TEMPLATES["subjects"], elem_id="zero-shot-template")
                    with gr.Row():
                        presets = [gr.Button(name, size="sm") for name in class_sets]
                    score = gr.Button("Score", variant="primary")
                with gr.Column():
                    zero_shot_out = gr.Label(label=scores_caption(None), elem_id="zero-shot-scores")
                    zero_shot_table = gr.Dataframe(value=empty_table, label="logits: compare labels by these",
                                                   interactive=False, elem_id="zero-shot-table")
            vector = gr.State(None)
            scored = [shown_in_page(on_score), [vector, labels, template], [zero_shot_out, zero_shot_table]]
            zero_shot_in.change(shown_in_page(on_image), [zero_shot_in, labels, template],
                                [vector, zero_shot_out, zero_shot_table], preprocess=False, concurrency_id="zero-shot")
            labels.submit(*scored, concurrency_id="zero-shot")
            template.submit(*scored, concurrency_id="zero-shot")
            score.click(*scored, concurrency_id="zero-shot")
            for button in presets:
                button.click(partial(on_preset, button.value), None, [labels, template]).then(
                    *scored, concurrency_id="zero-shot")
        for tab, task, shown in ((tab_classify, "classify", classify_status), (tab_detect, "detect", detect_status),
                                 (tab_zero_shot, "zero-shot", zero_shot_status)):
            tab.select(partial(status, task), None, shown, api_name=f"status_{task.replace('-', '_')}")
        demo.load(partial(status, "classify"), None, classify_status)  # the first tab is open from the start
    return demo


def serve_on_plain_asyncio() -> None:
    """Give uvicorn (gradio's web server) Python's own asyncio.run back where nest_asyncio replaced it.

    Older Jupyter clients apply nest_asyncio, whose asyncio.run takes no `loop_factory`; uvicorn passes one on Python
    3.12 and later, so the server thread would die and gradio would report that it found no free port.
    """
    import asyncio.runners

    import uvicorn.server

    if sys.version_info >= (3, 12) and uvicorn.server.asyncio_run is not asyncio.runners.run:
        uvicorn.server.asyncio_run = asyncio.runners.run


def launch_demo(demo: gr.Blocks, share: bool = False, port: int | None = None, host: str = "127.0.0.1",
                block: bool = True, **kwargs: Any) -> Any:
    """Serve the app on `host` (this machine only by default) and `port` (the first free one from 7860); inline in a
    notebook. A public gradio.live link only with share=True. Returns what gr.Blocks.launch returns."""
    serve_on_plain_asyncio()
    return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                       max_file_size=MAX_FILE_SIZE, show_error=True, head=CAMERA_MESSAGE, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """`make demo`: serve the app until Ctrl+C."""
    parser = argparse.ArgumentParser(description="Serve the kit's live demo (the three labs' models in one page).")
    parser.add_argument("--port", type=int, default=None, help="default: the first free port from 7860")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only); 0.0.0.0: "
                        "every network this machine is on")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link (needs network)")
    parser.add_argument("--classifier", default=TASKS["classify"], help="torchvision weights, e.g. "
                        "ResNet50_Weights.IMAGENET1K_V2")
    parser.add_argument("--detector", default=TASKS["detect"], help="ultralytics weights, e.g. yolo11s.pt")
    parser.add_argument("--zero-shot", default=TASKS["zero-shot"], help="Hugging Face id, e.g. "
                        "google/siglip2-base-patch16-224 (smaller, for a CPU)")
    args = parser.parse_args(argv)
    use_kit_cache()  # before anything imports huggingface_hub (build_demo imports gradio, which imports it)
    demo = build_demo(sources={"classify": args.classifier, "detect": args.detector, "zero-shot": args.zero_shot})
    launch_demo(demo, share=args.share, port=args.port, host=args.host, inbrowser=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
