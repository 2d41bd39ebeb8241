"""What each lab costs on this machine, and proof that the kit adds nothing on top of the libraries.

Sections, on the CPU or the first CUDA GPU (in the dtype `cvkit.pick_dtype` gives):
- lab1, lab2, lab3: the lab's kit pipeline and the bare library calls, run alternately on the same images after one
  untimed call each that checks both give the same results (Lab 2: the same boxes, and some); overhead = median of
  the per-pair ratios kit / bare, target <= 1.05.
  Lab 3 also times feature reuse against one pipeline call per image per class set (target >= 3x, 8 images x 3 sets);
- fullsize: the real architectures: build, latency per image at batch 1 and 8, peak memory, each in its own process;
- notebooks: each notebook's first cells, up to its environment check, in a fresh interpreter;
Models have random weights (costs do not depend on them), except YOLO11n's (a detector with random weights finds no
boxes to compare): yolo11n.pt as ultralytics finds it (the kit cache of `make weights`; else it downloads it), or
--yolo PATH. SigLIP 2's processor (its tokenizer and image settings) comes from the Hugging Face cache the same way,
or --siglip-processor PATH. Times come from torch.utils.benchmark (median and interquartile range); a target is met
only when the whole 95 % interval of the median meets it. Writes build/bench.json; --update-readme also writes the
table into README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as _dt
import functools
import json
import math
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
DEFAULT_OUT = ROOT / "build" / "bench.json"
MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"
SCHEMA = 2
TEMPLATE = "this is a photo of {label}."  # lower case, as SigLIP 2 was trained (tokenize_prompts lower-cases too)
SIGLIP_ID = "google/siglip2-so400m-patch14-384"
CONFIDENCE = 0.95
OVERHEAD_TARGET = ("<=", 1.05)
# Tower sizes and vocabulary of google/siglip2-so400m-patch14-384 (SigLIP so400m towers, SigLIP 2's 256k Gemma
# vocabulary; 384 px, 64 text positions), and of a small model with the same inputs (Lab 3's ratio, --quick).
SIGLIP = {
    "so400m": (dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16), 256000),
    "small": (dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4), 512),
}


@dataclasses.dataclass
class Settings:
    quick: bool = False
    min_run_time: float = 5.0       # seconds of timed calls per figure, after one warm-up call
    big_min_run_time: float = 30.0  # the same for the full-size SigLIP
    pairs: int = 21                 # kit/bare pairs per ratio (21: the 95 % interval runs from the 6th to the 16th)
    images: int | None = None       # images per lab (None: all the lab's images)
    siglip: str = "so400m"          # the full-size SigLIP, a key of SIGLIP
    reuse_images: int = 8           # Lab 3 reuse comparison: images x the 3 class sets
    reuse_pairs: int = 1            # one pair takes about 8 minutes at so400m on 2 CPU cores
    yolo: str = "yolo11n.pt"        # Lab 2's weights, as YOLO() takes them
    siglip_processor: str = SIGLIP_ID  # where AutoProcessor finds SigLIP 2's processor


QUICK = Settings(quick=True, min_run_time=0.3, big_min_run_time=0.3, pairs=6, images=2, siglip="small", reuse_images=2)


# ---------------------------------------------------------------- statistics


def measure(fn: Callable[[], Any], min_run_time: float) -> Any:
    """fn timed by torch.utils.benchmark: a warm-up call, then calls for at least `min_run_time` seconds."""
    import torch
    from torch.utils import benchmark

    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time)


def measurement(values: Sequence[float], what: str = "") -> Any:
    """Values timed or derived here (interleaved pairs, their ratios) as a torch.utils.benchmark Measurement."""
    from torch.utils import benchmark

    return benchmark.Measurement(1, [float(v) for v in values], benchmark.TaskSpec(what, "pass"))


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Distribution-free interval for the median: the k-th smallest and k-th largest value, for the largest k whose
    coverage 1 - 2 P(Binomial(n, 1/2) < k) is at least `confidence`; None when even the min and max cover less."""
    xs, n = sorted(values), len(values)
    k, below = 0, 0.0  # below = P(Binomial(n, 1/2) < k)
    while k < n // 2 and 1 - 2 * (below + math.comb(n, k) / 2**n) >= confidence:
        below += math.comb(n, k) / 2**n
        k += 1
    return (xs[k - 1], xs[n - k]) if k else None


def summary(m: Any, scale: float = 1.0) -> dict[str, Any]:
    """Median, interquartile range, runs and 95 % interval of the median of a Measurement (times x scale)."""
    samples = [t * scale for t in m.times]
    return {"median": m.median * scale, "iqr": m.iqr * scale, "runs": len(samples),
            "interval": median_interval(samples), "samples": samples}


def paired_ratio(kit: Sequence[float], bare: Sequence[float]) -> dict[str, Any]:
    """Summary of the per-pair ratios kit[i] / bare[i] (pairs timed side by side), not the ratio of medians."""
    if len(kit) != len(bare) or not kit:
        raise ValueError(f"need as many kit as bare timings (and some): {len(kit)} vs {len(bare)}")
    return summary(measurement([k / b for k, b in zip(kit, bare, strict=True)], "kit / bare"))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of fn takes (torch.utils.benchmark's timer synchronises the accelerator), and its result."""
    from torch.utils import benchmark

    start = benchmark.timer()
    result = fn()
    return benchmark.timer() - start, result


def paired_times(kit: Callable[[], Any], bare: Callable[[], Any], pairs: int) -> tuple[list[float], list[float]]:
    """Seconds of kit and bare timed side by side `pairs` times; who goes first alternates."""
    times: dict[Callable, list[float]] = {kit: [], bare: []}
    for i in range(pairs):
        for fn in (kit, bare) if i % 2 == 0 else (bare, kit):
            times[fn].append(timed(fn)[0])
    return times[kit], times[bare]


def meets(value: float, op: str, target: float) -> bool:
    return {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]


def verdict(interval: tuple[float, float] | None, op: str, target: float) -> str:
    """'met' when the whole interval meets the target, 'missed' when none of it does, else 'inconclusive'."""
    hits = [meets(x, op, target) for x in interval or ()]
    if hits and all(hits):
        return "met"
    return "missed" if hits and not any(hits) else "inconclusive"


# ---------------------------------------------------------------------- rows


def row(section: str, name: str, unit: str, stats: dict[str, Any] | float | None = None,
        target: tuple[str, float] | None = None, note: str = "", **extra: Any) -> dict[str, Any]:
    """One line of the report: a measure with its unit and statistics, an optional target and its verdict, a note."""
    if not isinstance(stats, dict):  # one measured number, or none
        values = [] if stats is None else [float(stats)]
        stats = {"median": values[0] if values else None, "iqr": None, "runs": len(values), "interval": None,
                 "samples": values}
    verdict_ = verdict(stats["interval"], *target) if target else None
    return {"section": section, "name": name, "unit": unit, **stats, "note": note, "verdict": verdict_,
            "target": {"op": target[0], "value": target[1]} if target else None, **extra}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s" if value < 1000 else f"{value:.0f} s"
    if unit == "x":
        return f"{value:.3f}x" if value < 2 else f"{value:.2f}x"
    return f"{value:,.0f} MB" if unit == "MB" else f"{value:.3g} {unit}".strip()


def format_target(r: dict[str, Any]) -> str:
    """'<= 1.050x: met (95 % interval 0.981x to 1.030x)', or inconclusive, or **missed**; '' without a target."""
    if not r.get("target"):
        return ""
    unit, interval = r["unit"], r.get("interval")
    spread = (f"95 % interval {format_value(interval[0], unit)} to {format_value(interval[1], unit)}" if interval
              else f"too few runs ({r['runs']}) for a 95 % interval")
    shown = "**missed**" if r["verdict"] == "missed" else r["verdict"]
    return f"{r['target']['op']} {format_value(r['target']['value'], unit)}: {shown} ({spread})"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table: section, measure, median, IQR, runs, target (met, missed or inconclusive)."""
    lines = ["| section | measure | median | IQR | runs | target |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        name = r["name"] + (f" ({r['note']})" if r.get("note") else "")
        iqr = format_value(r["iqr"], r["unit"]) if r["runs"] > 1 else "-"
        lines.append(f"| {r['section']} | {name.replace('|', '/')} | {format_value(r['median'], r['unit'])} | "
                     f"{iqr} | {r['runs']} | {format_target(r)} |")
    return "\n".join(lines)


def describe_machine(m: dict[str, Any]) -> str:
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('gpu') or 'no GPU'}; torch {m.get('torch', '?')}, "
            f"Python {m.get('python', '?')}; device {m.get('device', '?')}, {m.get('dtype', '?')}")


def render_markdown(report: dict[str, Any]) -> str:
    """The README region: when, where and how the numbers were measured, then the table."""
    m, s = report["machine"], report["settings"]
    command = "`.venv/bin/python scripts/bench.py --quick`" if s.get("quick") else "`make bench`"
    loads = [x for x in (m.get("load_average"), report.get("load_average_end")) if x]
    load_text = ("; load average " + " -> ".join(f"{x[0]:.1f}" for x in loads)) if loads else ""
    if loads and max(x[0] for x in loads) > 0.5 * (m.get("cores") or 1):
        load_text += " (other processes shared the CPU: absolute times are inflated, the interleaved ratios less so)"
    return (
        f"- **When**: {m.get('date', '?')}, by {command} in {report.get('seconds', 0):.0f} s.\n"
        f"- **Machine**: {describe_machine(m)}{load_text}.\n"
        f"- **How**: torch.utils.benchmark times each figure: one warm-up call, then calls for at least "
        f"{s.get('min_run_time')} s ({s.get('big_min_run_time')} s for SigLIP {s.get('siglip')}); the table gives "
        f"their median and interquartile range. A kit / bare ratio is the median of {s.get('pairs')} per-pair ratios, "
        "kit and bare run alternately on the same images after one untimed call each that checks both give the same "
        "results. A target is met when the whole 95 % interval of the median (distribution-free, from order "
        "statistics) meets it, missed when none of it does, inconclusive otherwise. Models have random weights (costs "
        f"do not depend on the weights), except YOLO11n's ({s.get('yolo')}), which must find boxes to compare."
        "\n\n" + format_table(report["rows"])
    )


def replace_region(text: str, body: str) -> str:
    """text with everything between the bench markers replaced by body; the rest untouched."""
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < 0 or end < start or text.count(MARK_START) != 1 or text.count(MARK_END) != 1:
        raise ValueError(f"README must hold {MARK_START} once, followed by {MARK_END} once")
    return text[: start + len(MARK_START)] + "\n" + body.strip() + "\n" + text[end:]


def update_readme(report: dict[str, Any], path: Path | None = None) -> None:
    path = path or README
    path.write_text(replace_region(path.read_text(encoding="utf-8"), render_markdown(report)), encoding="utf-8")


# ------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    import cvkit
    import torch

    device = cvkit.pick_device()
    cpuinfo = Path("/proc/cpuinfo")
    cpu = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M) if cpuinfo.exists() else []
    return {
        "cpu": cpu[0].strip() if cpu else platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "dtype": str(cvkit.pick_dtype(device)).replace("torch.", ""),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _memory_rows(what: str, device: Any, baseline_mb: float) -> list[dict]:
    """Peak resident memory of this process (and peak GPU memory on CUDA)."""
    import resource

    import torch

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    rows = [row("fullsize", f"{what}: peak RSS (process, after imports {baseline_mb:,.0f} MB)", "MB", peak)]
    if device.type == "cuda":
        rows.append(row("fullsize", f"{what}: peak GPU memory allocated", "MB", torch.cuda.max_memory_allocated() / 2**20))
    return rows


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def in_child(fn: Callable[..., list[dict]], *args: Any) -> list[dict]:
    """fn(*args) in a fresh interpreter (spawned), so that its peak memory is its own."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# ---------------------------------------------------------------- the models


def _device_dtype() -> tuple[Any, Any]:
    import cvkit

    device = cvkit.pick_device()
    return device, cvkit.pick_dtype(device)


def _paths(lab: int, limit: int | None) -> list[Path]:
    import cvkit

    return [s.path for s in cvkit.sample_images(lab)][:limit]


def siglip_processor(source: str) -> Any:
    """SigLIP 2's processor (384 px, mean = std = 0.5; Gemma's tokenizer): only these files, never the model."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(source)


def build_siglip(size: str, device: Any, dtype: Any) -> Any:
    """A SiglipModel with random weights and SIGLIP[size]'s towers, 384 px and 64 text positions, on device in dtype."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    tower, vocab_size = SIGLIP[size]
    torch.manual_seed(0)
    config = SiglipConfig(vision_config=dict(tower, image_size=384, patch_size=14),
                          text_config=dict(tower, vocab_size=vocab_size, max_position_embeddings=64, pad_token_id=0,
                                           eos_token_id=1, bos_token_id=2))
    return SiglipModel(config).eval().to(device=device, dtype=dtype)


# ------------------------------------------------------- sections: kit vs bare


def kit_vs_bare(section: str, kit_what: str, bare_what: str, kit: Callable[[], Any], bare: Callable[[], Any],
                same: Callable[[Any, Any], str], pairs: int, note: str = "") -> list[dict]:
    """Rows for kit and bare, timed alternately `pairs` times after one untimed call each; `same` checks the two
    calls' results (it raises when they differ) and says how they agree."""
    agreement = same(kit(), bare())
    _log(f"{section}: kit and bare agree ({agreement}); {pairs} timed pairs")
    kt, bt = paired_times(kit, bare, pairs)
    return [
        row(section, f"kit: {kit_what}", "s", summary(measurement(kt, "kit")), note=note),
        row(section, f"bare: {bare_what}", "s", summary(measurement(bt, "bare"))),
        row(section, "kit / bare", "x", paired_ratio(kt, bt), OVERHEAD_TARGET, agreement),
    ]


def same_boxes(kit: Sequence[Any], bare: Sequence[Any], atol: float = 1e-3) -> str:
    """'same N boxes on n/n images' for two lists of ultralytics Results; raises when any image's boxes (xyxy,
    confidence, class) differ, or when there is no box at all (a ratio of two empty detections measures nothing)."""
    import torch

    if len(kit) != len(bare) or any(
            a.orig_shape != b.orig_shape or a.boxes.data.shape != b.boxes.data.shape
            or not torch.allclose(a.boxes.data.float().cpu(), b.boxes.data.float().cpu(), atol=atol)
            for a, b in zip(kit, bare, strict=False)):
        raise RuntimeError("lab2: the kit and the bare library found different boxes")
    total = sum(len(r.boxes) for r in kit)
    if total == 0:
        raise RuntimeError("lab2: no boxes on any image: the kit / bare ratio would compare empty detections")
    return f"same {total} boxes on {len(kit)}/{len(kit)} images"


def bench_lab1(settings: Settings) -> list[dict]:
    import cvkit
    import torch
    from PIL import Image
    from torchvision.models import ResNet18_Weights, resnet18

    device, dtype = _device_dtype()
    paths = _paths(1, settings.images)
    weights = ResNet18_Weights.IMAGENET1K_V1
    preprocess, categories = weights.transforms(), weights.meta["categories"]
    torch.manual_seed(0)
    model = resnet18().eval().to(device=device, dtype=dtype)  # the architecture; weights do not change the cost

    def probs(images):
        batch = torch.stack([preprocess(im) for im in images]).to(device=device, dtype=dtype)
        with torch.inference_mode():
            return model(batch).float().softmax(dim=1).cpu()

    def kit():
        return [[categories[i] for i in top]
                for top in torch.topk(probs([cvkit.load_image(p) for p in paths]), 5, dim=1).indices.tolist()]

    def bare():
        images = []
        for p in paths:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        return [[categories[i] for i in top] for top in torch.topk(probs(images), 5, dim=1).indices.tolist()]

    def same(k, b):
        if k != b:
            raise RuntimeError("lab1: the kit and the bare library give different top-5")
        return f"same top-5 on {len(k)}/{len(k)} images"

    n = len(paths)
    return kit_vs_bare("lab1", f"load_image + transforms + forward + torch.topk, {n} images",
                       f"PIL open/convert + transforms + forward + torch.topk, {n} images", kit, bare, same,
                       settings.pairs)


def bench_lab2(settings: Settings) -> list[dict]:
    import cvkit
    import torch

    device, dtype = _device_dtype()
    paths = _paths(2, settings.images)
    from ultralytics import YOLO

    model = YOLO(settings.yolo)
    options = dict(conf=0.25, iou=0.7, device=device, quantize=16 if dtype != torch.float32 else None, verbose=False)

    def kit():
        return [model.predict(cvkit.load_image(p), **options)[0] for p in paths]

    def bare():
        return [model.predict(str(p), **options)[0] for p in paths]

    n = len(paths)
    return kit_vs_bare("lab2", f"predict on load_image images, {n} images", f"predict on the file paths, {n} images",
                       kit, bare, same_boxes, settings.pairs, note=Path(settings.yolo).name)


def _prompts(labels: list[str]) -> list[str]:
    return [TEMPLATE.replace("{label}", label.lower()) for label in labels]


def _siglip_probs(model, img, txt):
    """Lab 3's scoring as its notebook writes it: normalise, one matrix product, times e^t, plus b, sigmoid."""
    scale, bias = model.logit_scale.detach().float().cpu().exp(), model.logit_bias.detach().float().cpu()
    img, txt = img / img.norm(dim=-1, keepdim=True), txt / txt.norm(dim=-1, keepdim=True)
    return (scale * img @ txt.T + bias).sigmoid()


def bench_lab3(settings: Settings) -> list[dict]:
    import cvkit
    import torch

    device, dtype = _device_dtype()
    images = [cvkit.load_image(p) for p in _paths(3, settings.images)]
    labels = cvkit.read_class_sets()["subjects"]
    model, processor = build_siglip("small", device, dtype), siglip_processor(settings.siglip_processor)

    def kit():
        img = cvkit.image_features(model, processor, images, device, dtype, batch_size=8)
        return _siglip_probs(model, img, cvkit.text_features(model, processor, _prompts(labels), device))

    def bare():
        inputs = processor(text=_prompts(labels), images=images, padding="max_length",
                           max_length=64, return_tensors="pt").to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        with torch.inference_mode():
            return model(**inputs).logits_per_image.float().sigmoid().cpu()

    def same(k, b):
        if k.shape != b.shape or not torch.allclose(k, b, atol=1e-4 if dtype == torch.float32 else 5e-2):
            raise RuntimeError("lab3: the kit and the bare library give different probabilities")
        return f"same probabilities for {len(images)} images x {len(labels)} labels"

    what = f"{len(images)} images x {len(labels)} labels"
    rows = kit_vs_bare("lab3", f"image_features + text_features + the notebook's scoring, {what}",
                       f"model(**processor(...)) + sigmoid, {what}", kit, bare, same, settings.pairs,
                       note="small SigLIP, 384 px")
    _log(f"lab3: feature reuse with SigLIP {settings.siglip} in its own process")
    return rows + in_child(child_reuse, settings)


def child_reuse(settings: Settings) -> list[dict]:
    """Lab 3 at full size: features reused (image tower once per image, text once per class set) against one
    pipeline call per image per class set."""
    import cvkit
    from transformers import pipeline

    device, dtype = _device_dtype()
    model, processor = build_siglip(settings.siglip, device, dtype), siglip_processor(settings.siglip_processor)
    class_sets = cvkit.read_class_sets()
    images = [cvkit.load_image(p) for p in _paths(3, settings.reuse_images)]
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=processor.tokenizer,
                          image_processor=processor.image_processor, device=device)
    hypothesis = TEMPLATE.replace("{label}", "{}")

    def per_call():
        return [classifier(image, candidate_labels=[label.lower() for label in labels], hypothesis_template=hypothesis)
                for image in images for labels in class_sets.values()]

    def reused():
        img = cvkit.image_features(model, processor, images, device, dtype, batch_size=8)
        return [_siglip_probs(model, img, cvkit.text_features(model, processor, _prompts(labels), device))
                for labels in class_sets.values()]

    n, s = len(images), len(class_sets)
    classifier(images[0], candidate_labels=["cat", "dog"], hypothesis_template=hypothesis)  # warm-up: both towers
    tp, tr = paired_times(per_call, reused, settings.reuse_pairs)
    what = f"{n} images x {s} class sets"
    return [
        row("lab3", f"one pipeline call per image per class set, {what}", "s", summary(measurement(tp)),
            note=f"SigLIP {settings.siglip}"),
        row("lab3", f"features reused: image tower once per image, text once per set, {what}", "s",
            summary(measurement(tr))),
        row("lab3", "reuse speed-up (pipeline calls / reused features)", "x", paired_ratio(tp, tr),
            (">=", 3.0) if n == 8 else None, "" if n == 8 else "the 3x target is for 8 images"),
    ]


# ------------------------------------------------ full-size models (children)


def _latency_rows(settings: Settings, name: str, built: str, run: str, build: Callable[[], Any],
                  forward: Callable[[Any, int], Any], device: Any, baseline: float) -> list[dict]:
    """Build time, latency per image at batch 1 and 8, and peak memory of a model."""
    build_time = measure(build, settings.min_run_time)
    net = build()
    b1, b8 = (measure(lambda n=n: forward(net, n), settings.min_run_time) for n in (1, 8))
    return [
        row("fullsize", f"{name}: build {built}", "s", summary(build_time)),
        row("fullsize", f"{name}: {run}, batch 1, per image", "s", summary(b1)),
        row("fullsize", f"{name}: {run}, batch 8, per image", "s", summary(b8, 1 / 8)),
        *_memory_rows(name, device, baseline),
    ]


def child_resnet18(settings: Settings) -> list[dict]:
    import torch
    from torchvision.models import resnet18

    device, dtype = _device_dtype()
    baseline = _rss_mb()
    x = torch.randn(8, 3, 224, 224, device=device, dtype=dtype)

    def forward(net, n):
        with torch.inference_mode():
            return net(x[:n])

    return _latency_rows(settings, "ResNet-18", "resnet18()", "forward 224 px",
                         lambda: resnet18().eval().to(device=device, dtype=dtype), forward, device, baseline)


def child_yolo(settings: Settings) -> list[dict]:
    import cvkit
    import torch

    device, dtype = _device_dtype()
    images = ([cvkit.load_image(p) for p in _paths(2, None)] * 8)[:8]
    options = dict(conf=0.25, iou=0.7, device=device, quantize=16 if dtype != torch.float32 else None, verbose=False)
    from ultralytics import YOLO

    return _latency_rows(settings, "YOLO11n", f"YOLO({Path(settings.yolo).name!r})", "predict 640 px",
                         lambda: YOLO(settings.yolo), lambda net, n: net.predict(images[:n], **options), device,
                         _rss_mb())


def child_siglip(settings: Settings) -> list[dict]:
    """The full-size SigLIP with random weights: one build, the towers at batch 1 and 8, one class set, peak memory."""
    import cvkit
    import torch

    device, dtype = _device_dtype()
    labels = cvkit.read_class_sets()["subjects"]
    tokens = cvkit.tokenize_prompts(siglip_processor(settings.siglip_processor), _prompts(labels)).to(device)
    build_siglip("small", device, dtype)  # warm-up: the same code paths, a small model
    baseline = _rss_mb()
    seconds, model = timed(lambda: build_siglip(settings.siglip, device, dtype))
    n_params = sum(p.numel() for p in model.parameters())
    pixels = torch.randn(8, 3, 384, 384, device=device, dtype=dtype)
    with torch.inference_mode():
        b1, b8 = (measure(lambda n=n: model.get_image_features(pixel_values=pixels[:n]), settings.big_min_run_time)
                  for n in (1, 8))
        text = measure(lambda: model.get_text_features(**tokens), settings.big_min_run_time)
    name = f"SigLIP {settings.siglip}-384"
    return [
        row("fullsize", f"{name}: build SiglipModel(SiglipConfig(...)), {n_params / 1e6:.0f} M parameters", "s",
            seconds, note="one build, after a small warm-up build"),
        row("fullsize", f"{name}: image tower 384 px, batch 1, per image", "s", summary(b1)),
        row("fullsize", f"{name}: image tower 384 px, batch 8, per image", "s", summary(b8, 1 / 8)),
        row("fullsize", f"{name}: text tower, one class set ({len(labels)} prompts x 64 tokens)", "s", summary(text)),
        *_memory_rows(name, device, baseline),
    ]


def bench_fullsize(settings: Settings) -> list[dict]:
    rows = []
    for model, child in (("ResNet-18", child_resnet18), ("YOLO11n", child_yolo)):
        _log(f"fullsize: {model} in its own process")
        rows += in_child(child, settings)
    _log(f"fullsize: SigLIP {settings.siglip} in its own process (so400m: build about 35 s and 5.5 GB on a 2-core CPU)")
    return rows + in_child(child_siglip, settings)


# ------------------------------------------------------------------ notebooks


def first_cells(notebook: Path) -> str:
    """Source of the notebook's code cells up to and including the environment check (`device_report(`), as IPython
    runs it; only the first code cell if there is no such check."""
    cells = ["".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    end = next((i for i, source in enumerate(cells) if "device_report(" in source), 0)
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell("\n\n".join(cells[: end + 1]))  # `%pip` and `!git` as Python


def bench_notebooks(settings: Settings) -> list[dict]:
    rows = []
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        start = functools.partial(subprocess.run, [sys.executable, "-c", first_cells(notebook)], cwd=NOTEBOOKS,
                                  check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _log(f"notebooks: first cells of {notebook.name}")
        stats = summary(measure(start, 4 * settings.min_run_time))
        rows.append(row("notebooks", f"{notebook.name}: fresh interpreter to the environment check", "s", stats))
    return rows


# ---------------------------------------------------------------------- main


SECTIONS: dict[str, Callable[[Settings], list[dict]]] = {
    "lab1": bench_lab1,
    "lab2": bench_lab2,
    "lab3": bench_lab3,
    "fullsize": bench_fullsize,
    "notebooks": bench_notebooks,
}


def run_sections(names: Sequence[str], settings: Settings) -> list[dict]:
    """The rows of each section in turn; a section that fails gives one FAILED row and the others still run."""
    rows: list[dict] = []
    for name in names:
        start = time.perf_counter()
        try:
            rows += SECTIONS[name](settings)
        except Exception as err:  # one broken section must not lose the others' numbers
            _log(f"{name}: FAILED: {type(err).__name__}: {err}")
            rows.append(row(name, f"FAILED: {type(err).__name__}: {' '.join(str(err).split())[:160]}", "s", failed=True))
        _log(f"{name}: done in {time.perf_counter() - start:.0f} s")
    return rows


def make_report(rows: list[dict], machine: dict, settings: Settings, sections: Sequence[str], seconds: float) -> dict:
    return {"schema": SCHEMA, "tool": "scripts/bench.py", "machine": machine,
            "settings": {**dataclasses.asdict(settings), "sections": list(sections)}, "seconds": round(seconds, 1),
            "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None, "rows": rows}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, 2 images, small SigLIP (a smoke test)")
    parser.add_argument("--only", help=f"comma-separated sections among {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report (default build/bench.json)")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md between the markers")
    parser.add_argument("--yolo", default=Settings.yolo, help="Lab 2's weights (default: yolo11n.pt, where ultralytics finds it)")
    parser.add_argument("--siglip-processor", default=Settings.siglip_processor,
                        help=f"a model id or folder with SigLIP 2's processor (default: {SIGLIP_ID})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; choose among {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    names = [n for n in SECTIONS if n in names]  # fixed order
    from cvkit.weights import use_kit_cache

    use_kit_cache()  # the weights of `make weights`, offline, where they are there
    settings = dataclasses.replace(QUICK if args.quick else Settings(), yolo=args.yolo,
                                   siglip_processor=args.siglip_processor)
    machine = machine_info()
    _log(f"sections {', '.join(names)} on {describe_machine(machine)}")
    start = time.perf_counter()
    rows = run_sections(names, settings)
    report = make_report(rows, machine, settings, names, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _log(f"wrote {args.out} ({report['seconds']:.0f} s in all)")
    print(render_markdown(report))
    missed = [f"{r['section']} {r['name']}" for r in report["rows"] if r.get("verdict") == "missed"]
    if missed:
        print("\nmissed targets: " + "; ".join(missed))
    if args.update_readme:
        update_readme(report)
        _log(f"updated the benchmark table in {README.name}")
    return 1 if any(r.get("failed") for r in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
