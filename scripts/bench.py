"""What each lab costs on this machine, and proof that the kit adds nothing on top of the libraries.

Measures, on the CPU or the first CUDA GPU (with the dtype `cvkit.pick_dtype` gives):

- lab1, lab2, lab3: each lab's kit pipeline against the bare library calls on the same images, interleaved in one
  run; the overhead is the median of the per-pair ratios kit / bare (target: at most 1.05). Lab 3 also times the
  reuse of features (image tower once per image, text tower once per class set) against one pipeline call per
  image per class set, at full size (target: at least 3x for 8 images x 3 class sets);
- fullsize: the real architectures with random weights (no download): build time, latency per image at batch 1
  and 8, peak memory; each model in its own process, so that peaks do not mix;
- notebooks: the wait before each notebook's environment check (its first code cells in a fresh interpreter);
- tests (only with --with-tests or --only tests): the whole `make test` run after set-up, and each notebook's
  execution time in it (from the section the repository's conftest prints).

Every time is the median of several runs after a warm-up, with min and max. Writes build/bench.json; with
--update-readme also the table (and the machine it came from) between the bench markers in README.md.
Never uses the network (HF_HUB_OFFLINE=1, YOLO_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
DEFAULT_OUT = ROOT / "build" / "bench.json"
MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"
SCHEMA = 1
SECTION_ORDER = ("lab1", "lab2", "lab3", "fullsize", "notebooks", "tests")
CHILD_MARK = "BENCH-CHILD "
TEMPLATE = "This is a photo of {label}."

# google/siglip2-so400m-patch14-384 (model_type "siglip"): the towers of SigLIP so400m-patch14-384 with SigLIP 2's
# 256k Gemma vocabulary; text padded to exactly 64 tokens.
SO400M = {
    "vision": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                   image_size=384, patch_size=14),
    "text": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                 vocab_size=256000, max_position_embeddings=64),
}
# For the kit / bare ratio of Lab 3 a small model with the same input sizes does (a ratio, not a cost).
SIGLIP_SMALL = {
    "vision": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                   image_size=384, patch_size=14),
    "text": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4,
                 vocab_size=512, max_position_embeddings=64),
}


# ------------------------------------------------------------------ settings


@dataclasses.dataclass
class Settings:
    quick: bool = False
    repeats: int = 7          # timed runs per figure, after the warm-up
    warmup: int = 1           # runs discarded before timing
    pairs: int = 11           # kit/bare pairs per ratio
    images: int | None = None  # images per lab (None: all the lab's images)
    big_repeats: int = 3      # so400m timed runs at batch 1 (batch 8: one fewer, at least 1)
    reuse_images: int = 8     # Lab 3 reuse comparison: images x the 3 class sets
    first_cell_runs: int = 5

    @classmethod
    def make(cls, quick: bool) -> "Settings":
        if quick:
            return cls(quick=True, repeats=3, pairs=5, images=4, big_repeats=1, reuse_images=2, first_cell_runs=2)
        return cls()


# ---------------------------------------------------------------- statistics


def summarize(samples: Sequence[float], warmup: int = 0) -> dict[str, Any]:
    """Median, min and max of the samples left after dropping the first `warmup` ones (the warm-up runs)."""
    kept = [float(s) for s in samples[warmup:]]
    if not kept:
        raise ValueError(f"no samples left after {warmup} warm-up run(s) out of {len(samples)}")
    return {"median": statistics.median(kept), "min": min(kept), "max": max(kept), "runs": len(kept), "samples": kept}


def paired_ratio(kit: Sequence[float], bare: Sequence[float]) -> dict[str, Any]:
    """Summary of the per-pair ratios kit[i] / bare[i] (pairs timed side by side), not the ratio of medians."""
    if len(kit) != len(bare) or not kit:
        raise ValueError(f"need as many kit as bare timings (and some): {len(kit)} vs {len(bare)}")
    return summarize([k / b for k, b in zip(kit, bare)])


def _sync_for(device: Any) -> Callable[[], None] | None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return torch.cuda.synchronize
    return None


def timed(fn: Callable[[], Any], sync: Callable[[], None] | None = None) -> tuple[float, Any]:
    """Seconds one call of fn takes (with the device synchronised before and after), and its result."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    result = fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start, result


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync=None, scale: float = 1.0) -> dict[str, Any]:
    """Run fn warmup + repeats times; summarize the timed runs (each multiplied by `scale`, e.g. 1/batch)."""
    samples = [timed(fn, sync)[0] * scale for _ in range(warmup + repeats)]
    return summarize(samples, warmup)


def paired_runs(kit: Callable[[], Any], bare: Callable[[], Any], pairs: int, warmup: int = 1, sync=None
                ) -> tuple[list[float], list[float], list[tuple[Any, Any]]]:
    """Time kit and bare side by side, `pairs` times after `warmup` pairs; who goes first alternates.

    Returns the kit times, the bare times (same order) and the (kit, bare) results of the last pair.
    """
    kit_times, bare_times, last = [], [], (None, None)
    for i in range(warmup + pairs):
        if i % 2 == 0:
            tk, rk = timed(kit, sync)
            tb, rb = timed(bare, sync)
        else:
            tb, rb = timed(bare, sync)
            tk, rk = timed(kit, sync)
        if i >= warmup:
            kit_times.append(tk)
            bare_times.append(tb)
        last = (rk, rb)
    return kit_times, bare_times, last


# ---------------------------------------------------------------------- rows


def row(section: str, name: str, unit: str, stats: dict[str, Any] | float | None, target: tuple[str, float] | None = None,
        note: str = "", **extra: Any) -> dict[str, Any]:
    """One line of the report: a measure with its unit, median/min/max/runs, an optional target and a note."""
    if stats is None:
        stats = {"median": None, "min": None, "max": None, "runs": 0, "samples": []}
    elif not isinstance(stats, dict):
        stats = {"median": float(stats), "min": float(stats), "max": float(stats), "runs": 1, "samples": [float(stats)]}
    out = {"section": section, "name": name, "unit": unit, **{k: stats[k] for k in ("median", "min", "max", "runs")},
           "samples": stats.get("samples", []), "target": None, "ok": None, "note": note}
    if target is not None:
        op, value = target
        out["target"] = {"op": op, "value": value}
        out["ok"] = None if out["median"] is None else meets(out["median"], op, value)
    out.update(extra)
    return out


def meets(value: float, op: str, target: float) -> bool:
    return {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s" if value < 1000 else f"{value:.0f} s"
    if unit == "x":
        return f"{value:.3f}x" if value < 2 else f"{value:.2f}x"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:.3g} {unit}".strip()


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table: section, measure, median, min, max, runs, target (met or missed)."""
    lines = ["| section | measure | median | min | max | runs | target |", "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        target = ""
        if r.get("target"):
            verdict = {True: "met", False: "**missed**", None: "-"}[r.get("ok")]
            target = f"{r['target']['op']} {format_value(r['target']['value'], r['unit'])}: {verdict}"
        name = r["name"] + (f" ({r['note']})" if r.get("note") else "")
        lines.append(
            f"| {r['section']} | {name.replace('|', '/')} | {format_value(r['median'], r['unit'])} | "
            f"{format_value(r['min'], r['unit'])} | {format_value(r['max'], r['unit'])} | {r['runs']} | {target} |"
        )
    return "\n".join(lines)


def describe_machine(machine: dict[str, Any]) -> str:
    gpu = machine.get("gpu") or "no GPU"
    return (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {gpu}; torch {machine.get('torch', '?')}, "
            f"Python {machine.get('python', '?')}; device {machine.get('device', '?')}, {machine.get('dtype', '?')}")


def render_markdown(report: dict[str, Any]) -> str:
    """The README region: when, where and how the numbers were measured, then the table."""
    m, s = report["machine"], report["settings"]
    command = "`.venv/bin/python scripts/bench.py --quick`" if s.get("quick") else "`make bench`"
    loads = [x for x in (m.get("load_average"), report.get("load_average_end")) if x]
    load_text = ""
    if loads:
        load_text = "; load average " + " -> ".join(f"{x[0]:.1f}" for x in loads)
        if max(x[0] for x in loads) > 0.5 * (m.get("cores") or 1):
            load_text += (" (other processes shared the CPU: absolute times are inflated, the interleaved "
                          "kit / bare ratios much less so)")
    return (
        f"- **When**: {m.get('date', '?')}, by {command} in {report.get('seconds', 0):.0f} s.\n"
        f"- **Machine**: {describe_machine(m)}{load_text}.\n"
        f"- **How**: each figure is the median of {s.get('repeats')} timed runs after {s.get('warmup')} warm-up "
        f"(fewer for SigLIP so400m, as the runs column says); a ratio is the median of {s.get('pairs')} per-pair "
        "ratios, kit and bare interleaved on the same images. Models have random weights (no download); their "
        "costs do not depend on the weights.\n\n"
        + format_table(report["rows"])
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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(NOTEBOOKS))
    import cvkit

    device = cvkit.pick_device()
    info = {
        "cpu": _cpu_model(),
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
    return info


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the models


def _kit():
    sys.path.insert(0, str(NOTEBOOKS))
    import cvkit

    return cvkit


def _device_dtype():
    cvkit = _kit()
    device = cvkit.pick_device()
    return device, cvkit.pick_dtype(device)


def _paths(lab: int, limit: int | None) -> list[Path]:
    paths = [s.path for s in _kit().sample_images(lab)]
    return paths[:limit] if limit else paths


def _tokenizer():
    """A small Gemma-style tokenizer built here (no download): pad 0, eos 1, bos 2, adds <eos>, byte fallback."""
    import string

    from transformers import GemmaTokenizer

    vocab = {token: i for i, token in enumerate(("<pad>", "<eos>", "<bos>", "<unk>", "<mask>"))}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for char in string.ascii_letters + string.digits + string.punctuation + "\u2581":
        vocab.setdefault(char, len(vocab))
    return GemmaTokenizer(vocab=vocab, merges=[], add_bos_token=False, add_eos_token=True, padding_side="right",
                          model_input_names=["input_ids"])


def build_siglip(spec: dict[str, dict], device, dtype, seed: int = 0):
    """A SiglipModel with random weights from the config in `spec` (tower sizes), on device in dtype."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(seed)
    config = SiglipConfig(text_config=dict(spec["text"], pad_token_id=0, eos_token_id=1, bos_token_id=2),
                          vision_config=dict(spec["vision"]))
    return SiglipModel(config).eval().to(device=device, dtype=dtype)


def siglip_processor(image_size: int):
    from transformers import SiglipImageProcessor, SiglipProcessor

    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size}, resample=2,
                                           do_resize=True, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return SiglipProcessor(image_processor=image_processor, tokenizer=_tokenizer())


# ------------------------------------------------------- sections: kit vs bare


def bench_lab1(settings: Settings) -> list[dict]:
    import torch
    from PIL import Image
    from torchvision.models import ResNet18_Weights, resnet18

    cvkit = _kit()
    device, dtype = _device_dtype()
    sync = _sync_for(device)
    paths = _paths(1, settings.images)
    weights = ResNet18_Weights.IMAGENET1K_V1
    preprocess, categories = weights.transforms(), weights.meta["categories"]
    torch.manual_seed(0)
    model = resnet18().eval().to(device=device, dtype=dtype)  # the architecture; weights do not change the cost

    def kit():
        images = [cvkit.load_image(p) for p in paths]
        batch = torch.stack([preprocess(im) for im in images]).to(device=device, dtype=dtype)
        with torch.inference_mode():
            probs = model(batch).float().softmax(dim=1).cpu()
        return [[name for name, _ in preds] for preds in cvkit.top_k(probs, categories, k=5)]

    def bare():
        images = []
        for p in paths:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        batch = torch.stack([preprocess(im) for im in images]).to(device=device, dtype=dtype)
        with torch.inference_mode():
            probs = model(batch).float().softmax(dim=1).cpu()
        return [[categories[i] for i in row] for row in torch.topk(probs, 5, dim=1).indices.tolist()]

    _log(f"lab1: {len(paths)} images, {settings.pairs} kit/bare pairs")
    kt, bt, (rk, rb) = paired_runs(kit, bare, settings.pairs, settings.warmup, sync)
    same = sum(a == b for a, b in zip(rk, rb))
    n = len(paths)
    return [
        row("lab1", f"kit: load_image + transforms + forward + top_k, {n} images", "s", summarize(kt)),
        row("lab1", f"bare: PIL open/convert + transforms + forward + torch.topk, {n} images", "s", summarize(bt)),
        row("lab1", "kit / bare", "x", paired_ratio(kt, bt), ("<=", 1.05), f"same top-5 on {same}/{n} images"),
    ]


def bench_lab2(settings: Settings) -> list[dict]:
    import torch
    from ultralytics import YOLO

    cvkit = _kit()
    device, dtype = _device_dtype()
    sync = _sync_for(device)
    paths = _paths(2, settings.images)
    model = YOLO("yolo11n.yaml")  # the architecture with random weights; no download
    quantize = 16 if dtype != torch.float32 else None
    options = dict(conf=0.25, iou=0.7, device=device, quantize=quantize, verbose=False)

    def kit():
        return [model.predict(cvkit.load_image(p), **options)[0] for p in paths]

    def bare():
        return [model.predict(str(p), **options)[0] for p in paths]

    _log(f"lab2: {len(paths)} images, {settings.pairs} kit/bare pairs")
    kt, bt, (rk, rb) = paired_runs(kit, bare, settings.pairs, settings.warmup, sync)
    same = sum(a.orig_shape == b.orig_shape and len(a.boxes) == len(b.boxes) for a, b in zip(rk, rb))
    n = len(paths)
    return [
        row("lab2", f"kit: predict on load_image images, {n} images", "s", summarize(kt)),
        row("lab2", f"bare: predict on the file paths, {n} images", "s", summarize(bt)),
        row("lab2", "kit / bare", "x", paired_ratio(kt, bt), ("<=", 1.05),
            f"same image size and box count on {same}/{n} images"),
    ]


def bench_lab3_overhead(settings: Settings) -> list[dict]:
    import torch

    cvkit = _kit()
    device, dtype = _device_dtype()
    sync = _sync_for(device)
    paths = _paths(3, settings.images)
    images = [cvkit.load_image(p) for p in paths]
    labels = cvkit.read_class_sets()["subjects"]
    prompts = [TEMPLATE.replace("{label}", label.lower()) for label in labels]
    model = build_siglip(SIGLIP_SMALL, device, dtype)
    processor = siglip_processor(SIGLIP_SMALL["vision"]["image_size"])

    def kit():
        img = cvkit.image_features(model, processor, images, device, dtype, batch_size=8)
        txt = cvkit.text_features(model, processor, labels, TEMPLATE, device)
        return cvkit.zero_shot_probs(model, img, txt)

    def bare():
        inputs = processor(text=prompts, images=images, padding="max_length", max_length=64, return_tensors="pt").to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        with torch.inference_mode():
            return model(**inputs).logits_per_image.float().sigmoid().cpu()

    _log(f"lab3: {len(images)} images x {len(labels)} labels (small SigLIP), {settings.pairs} kit/bare pairs")
    kt, bt, (rk, rb) = paired_runs(kit, bare, settings.pairs, settings.warmup, sync)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    same = "yes" if rk.shape == rb.shape and torch.allclose(rk, rb, atol=tol) else "NO"
    n = len(images)
    return [
        row("lab3", f"kit: image_features + text_features + zero_shot_probs, {n} images x {len(labels)} labels",
            "s", summarize(kt), note="small SigLIP, 384 px"),
        row("lab3", f"bare: model(**processor(...)) + sigmoid, {n} images x {len(labels)} labels", "s", summarize(bt)),
        row("lab3", "kit / bare", "x", paired_ratio(kt, bt), ("<=", 1.05), f"same probabilities: {same}"),
    ]


# ------------------------------------------------ full-size models (children)


def _memory_rows(section: str, what: str, device, baseline_mb: float) -> list[dict]:
    import torch

    rows = [row(section, f"{what}: peak RSS (process, after imports {baseline_mb:,.0f} MB)", "MB", _peak_rss_mb())]
    if getattr(device, "type", "") == "cuda":
        rows.append(row(section, f"{what}: peak GPU memory allocated", "MB", torch.cuda.max_memory_allocated() / 2**20))
    return rows


def child_resnet18(settings: Settings) -> dict:
    import torch
    from torchvision.models import resnet18

    device, dtype = _device_dtype()
    sync = _sync_for(device)
    baseline = _rss_mb()
    build = repeat(lambda: resnet18().eval().to(device=device, dtype=dtype), settings.repeats, settings.warmup, sync)
    model = resnet18().eval().to(device=device, dtype=dtype)
    x = torch.randn(8, 3, 224, 224, device=device, dtype=dtype)
    with torch.inference_mode():
        b1 = repeat(lambda: model(x[:1]), settings.repeats, settings.warmup, sync)
        b8 = repeat(lambda: model(x), settings.repeats, settings.warmup, sync, scale=1 / 8)
    name = "ResNet-18"
    return {"rows": [
        row("fullsize", f"{name}: build resnet18()", "s", build),
        row("fullsize", f"{name}: forward 224 px, batch 1, per image", "s", b1),
        row("fullsize", f"{name}: forward 224 px, batch 8, per image", "s", b8),
        *_memory_rows("fullsize", name, device, baseline),
    ]}


def child_yolo(settings: Settings) -> dict:
    import torch
    from ultralytics import YOLO

    cvkit = _kit()
    device, dtype = _device_dtype()
    sync = _sync_for(device)
    images = [cvkit.load_image(p) for p in _paths(2, None)]
    images = (images * 8)[:8]
    baseline = _rss_mb()
    build = repeat(lambda: YOLO("yolo11n.yaml"), settings.repeats, settings.warmup, sync)
    model = YOLO("yolo11n.yaml")
    options = dict(conf=0.25, iou=0.7, device=device, quantize=16 if dtype != torch.float32 else None, verbose=False)
    b1 = repeat(lambda: model.predict(images[0], **options), settings.repeats, settings.warmup, sync)
    b8 = repeat(lambda: model.predict(images, **options), settings.repeats, settings.warmup, sync, scale=1 / 8)
    name = "YOLO11n"
    return {"rows": [
        row("fullsize", f"{name}: build YOLO(\"yolo11n.yaml\")", "s", build),
        row("fullsize", f"{name}: predict 640 px, batch 1, per image", "s", b1),
        row("fullsize", f"{name}: predict 640 px, batch 8, per image", "s", b8),
        *_memory_rows("fullsize", name, device, baseline),
    ]}


def child_siglip(settings: Settings, fullsize: bool = True, reuse: bool = True) -> dict:
    """so400m-patch14-384 with random weights: build, towers, memory (fullsize) and the Lab 3 reuse comparison."""
    import torch

    cvkit = _kit()
    device, dtype = _device_dtype()
    sync = _sync_for(device)
    class_sets = cvkit.read_class_sets()
    labels = class_sets["subjects"]
    processor = siglip_processor(SO400M["vision"]["image_size"])
    build_siglip(SIGLIP_SMALL, device, dtype)  # warm-up: the same code paths, a small model
    baseline = _rss_mb()
    seconds, model = timed(lambda: build_siglip(SO400M, device, dtype), sync)
    n_params = sum(p.numel() for p in model.parameters())
    rows, name = [], "SigLIP so400m-384"
    tower = {}
    if fullsize:
        pixels = torch.randn(8, 3, 384, 384, device=device, dtype=dtype)
        tokens = cvkit.tokenize_prompts(processor, cvkit.make_prompts(labels, TEMPLATE)).to(device)
        reps = settings.big_repeats
        with torch.inference_mode():
            b1 = repeat(lambda: model.get_image_features(pixel_values=pixels[:1]), reps, 1, sync)
            b8 = repeat(lambda: model.get_image_features(pixel_values=pixels), max(1, reps - 1), 0, sync, scale=1 / 8)
            text = repeat(lambda: model.get_text_features(**tokens), max(3, reps), 1, sync)
        tower = {"b1": b1["median"], "b8": b8["median"], "text": text["median"]}
        rows += [
            row("fullsize", f"{name}: build SiglipModel(SiglipConfig(...)), {n_params / 1e6:.0f} M parameters", "s",
                seconds, note="one build, after a small warm-up build"),
            row("fullsize", f"{name}: image tower 384 px, batch 1, per image", "s", b1),
            row("fullsize", f"{name}: image tower 384 px, batch 8, per image", "s", b8, note="warm-up: batch 1"),
            row("fullsize", f"{name}: text tower, one class set ({len(labels)} prompts x 64 tokens)", "s", text),
            *_memory_rows("fullsize", name, device, baseline),
        ]
    if reuse:
        rows += _lab3_reuse(settings, model, processor, class_sets, device, dtype, sync, tower)
    return {"rows": rows}


def _lab3_reuse(settings, model, processor, class_sets, device, dtype, sync, tower) -> list[dict]:
    from transformers import pipeline

    cvkit = _kit()
    images = [cvkit.load_image(p) for p in _paths(3, settings.reuse_images)]
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=processor.tokenizer,
                          image_processor=processor.image_processor, device=device)
    hypothesis = TEMPLATE.replace("{label}", "{}")

    def per_call():
        return [classifier(image, candidate_labels=[l.lower() for l in labels], hypothesis_template=hypothesis)
                for image in images for labels in class_sets.values()]

    def reused():
        img = cvkit.image_features(model, processor, images, device, dtype, batch_size=8)
        return [cvkit.zero_shot_probs(model, img, cvkit.text_features(model, processor, labels, TEMPLATE, device))
                for labels in class_sets.values()]

    n, s = len(images), len(class_sets)
    _log(f"lab3 reuse: {n} images x {s} class sets at full size (about {n * s * 3.4 + n * 2.6:.0f} s on a 2-core CPU)")
    classifier(images[0], candidate_labels=["cat", "dog"], hypothesis_template=hypothesis)  # warm-up
    tp, tr, _ = paired_runs(per_call, reused, 1, 0, sync)
    expected = ""
    if tower:
        guess = n * s * (tower["b1"] + tower["text"]) / (n * tower["b8"] + s * tower["text"])
        expected = f"{guess:.2f}x expected from the towers' costs"
    target = (">=", 3.0) if n == 8 else None
    what = f"{n} images x {s} class sets"
    return [
        row("lab3", f"one pipeline call per image per class set, {what}", "s", summarize(tp), note="so400m"),
        row("lab3", f"features reused: image tower once per image, text once per set, {what}", "s", summarize(tr)),
        row("lab3", "reuse speed-up (pipeline calls / reused features)", "x", paired_ratio(tp, tr), target,
            expected + ("" if target else "; the 3x target is for 8 images")),
    ]


CHILDREN: dict[str, Callable[..., dict]] = {"resnet18": child_resnet18, "yolo11n": child_yolo, "siglip": child_siglip}


def run_child(name: str, settings: Settings, **kwargs: Any) -> list[dict]:
    """Run one CHILDREN entry in a fresh interpreter (its own peak memory); return its rows."""
    args = json.dumps({"settings": dataclasses.asdict(settings), "kwargs": kwargs})
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", name, "--child-args", args],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(CHILD_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child {name} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(CHILD_MARK):])["rows"]


def bench_fullsize(settings: Settings, with_reuse: bool = False) -> list[dict]:
    rows = []
    for name in ("resnet18", "yolo11n"):
        _log(f"fullsize: {name} in its own process")
        rows += run_child(name, settings)
    _log("fullsize: SigLIP so400m in its own process (build about 25 s and 5.5 GB on a 2-core CPU)")
    rows += run_child("siglip", settings, fullsize=True, reuse=with_reuse)
    return rows


# ------------------------------------------------------- notebooks and tests


def first_cells(notebook: Path) -> str:
    """Source of the notebook's code cells up to and including the environment check (`device_report(`);
    only the first code cell if there is no such check."""
    cells = ["".join(c["source"]) for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    end = next((i for i, source in enumerate(cells) if "device_report(" in source), 0)
    return "\n\n".join(cells[: end + 1])


def bench_notebooks(settings: Settings) -> list[dict]:
    rows = []
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        source = first_cells(notebook)

        def start():
            subprocess.run([sys.executable, "-c", source], cwd=NOTEBOOKS, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        _log(f"notebooks: first cells of {notebook.name}, {settings.first_cell_runs} runs")
        stats = repeat(start, settings.first_cell_runs, 1)
        rows.append(row("notebooks", f"{notebook.name}: fresh interpreter to the environment check", "s", stats))
    return rows


NOTEBOOK_TIME = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?) s\s+(\S+\.ipynb)\s*$", re.M)


def parse_notebook_times(output: str) -> dict[str, float]:
    """Per-notebook seconds from the 'notebook execution time' section the repository's conftest prints."""
    at = output.find("notebook execution time")
    return {path: float(sec) for sec, path in NOTEBOOK_TIME.findall(output[at:])} if at >= 0 else {}


def bench_tests(settings: Settings) -> list[dict]:
    _log("tests: the whole `python -m pytest` run (minutes)")
    seconds, proc = timed(lambda: subprocess.run([sys.executable, "-m", "pytest"], cwd=ROOT, text=True,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    status = "passed" if proc.returncode == 0 else f"FAILED, exit {proc.returncode}"
    rows = [row("tests", f"make test after set-up (python -m pytest, {status})", "s", seconds, ("<", 300.0),
                "stand-ins built at start included")]
    for path, sec in sorted(parse_notebook_times(proc.stdout).items()):
        rows.append(row("tests", f"{Path(path).name} under nbval with stand-ins", "s", sec))
    return rows


# ---------------------------------------------------------------------- main


SECTIONS: dict[str, Callable[[Settings], list[dict]]] = {
    "lab1": bench_lab1,
    "lab2": bench_lab2,
    "lab3": bench_lab3_overhead,
    "fullsize": bench_fullsize,
    "notebooks": bench_notebooks,
    "tests": bench_tests,
}


def run_sections(names: Sequence[str], settings: Settings) -> list[dict]:
    rows: list[dict] = []
    # The Lab 3 reuse comparison needs the full-size SigLIP: build it once, in the fullsize child when there is one.
    lab3_reuse_in_fullsize = "lab3" in names and "fullsize" in names and SECTIONS["fullsize"] is bench_fullsize
    reuse_rows: list[dict] = []
    for name in names:
        start = time.perf_counter()
        try:
            if name == "fullsize" and lab3_reuse_in_fullsize:
                got = bench_fullsize(settings, with_reuse=True)
                reuse_rows = [r for r in got if r["section"] == "lab3"]
                got = [r for r in got if r["section"] != "lab3"]
            else:
                got = SECTIONS[name](settings)
            if name == "lab3" and "fullsize" not in names and SECTIONS["lab3"] is bench_lab3_overhead:
                _log("lab3: reuse comparison with SigLIP so400m in its own process")
                got += run_child("siglip", settings, fullsize=False, reuse=True)
        except Exception as err:  # one broken section must not lose the others' numbers
            _log(f"{name}: FAILED: {type(err).__name__}: {err}")
            got = [row(name, f"FAILED: {type(err).__name__}: {' '.join(str(err).split())[:160]}", "s", None, failed=True)]
        rows += got
        _log(f"{name}: done in {time.perf_counter() - start:.0f} s")
    if reuse_rows:  # keep Lab 3's rows together
        last = max(i for i, r in enumerate(rows) if r["section"] == "lab3")
        rows[last + 1:last + 1] = reuse_rows
    return rows


def make_report(rows: list[dict], machine: dict, settings: Settings, sections: Sequence[str], seconds: float) -> dict:
    return {
        "schema": SCHEMA,
        "tool": "scripts/bench.py",
        "machine": machine,
        "settings": {**dataclasses.asdict(settings), "sections": list(sections)},
        "seconds": round(seconds, 1),
        "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "rows": rows,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats and images (a few minutes)")
    parser.add_argument("--only", help=f"comma-separated sections among {','.join(SECTION_ORDER)}")
    parser.add_argument("--with-tests", action="store_true", help="also time the whole test run (minutes)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON report (default build/bench.json)")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md between the markers")
    parser.add_argument("--from-json", type=Path, help="print (and with --update-readme write) an earlier report; measure nothing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for key in ("HF_HUB_OFFLINE", "YOLO_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ.setdefault(key, "1")
    if args.child:
        payload = json.loads(args.child_args)
        result = CHILDREN[args.child](Settings(**payload["settings"]), **payload["kwargs"])
        print(CHILD_MARK + json.dumps(result), flush=True)
        return 0

    if args.from_json:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        if args.only:
            names = [n.strip() for n in args.only.split(",") if n.strip()]
            unknown = [n for n in names if n not in SECTIONS]
            if unknown:
                print(f"unknown section(s): {', '.join(unknown)}; choose among {', '.join(SECTIONS)}", file=sys.stderr)
                return 2
        else:
            names = [n for n in SECTIONS if n != "tests" or args.with_tests]
        names = [n for n in SECTIONS if n in names]  # fixed order
        settings = Settings.make(args.quick)
        machine = machine_info()
        _log(f"sections {', '.join(names)} on {describe_machine(machine)}")
        start = time.perf_counter()
        rows = run_sections(names, settings)
        report = make_report(rows, machine, settings, names, time.perf_counter() - start)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        _log(f"wrote {args.out} ({report['seconds']:.0f} s in all)")
    print(render_markdown(report))
    missed = [r for r in report["rows"] if r.get("ok") is False]
    if missed:
        print("\nmissed targets: " + "; ".join(f"{r['section']} {r['name']}" for r in missed))
    if args.update_readme:
        update_readme(report)
        _log(f"updated the benchmark table in {README.name}")
    return 1 if any(r.get("failed") for r in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
