"""Pretrained weights: where each library keeps them, the kit's offline cache, and one-line errors when they fail.

A weights *source* is what a notebook loads: a torchvision weights enum member (``ResNet18_Weights.IMAGENET1K_V1``)
or its name as a string, an ultralytics weights file name (``"yolo11n.pt"``), or a Hugging Face model id
(``"google/siglip2-so400m-patch14-384"``). The libraries are imported only inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .env import kit_cache_dir
from .errors import KitError

__all__ = [
    "LAB_WEIGHTS", "MORE_WEIGHTS", "kit_cache_env", "use_kit_cache", "weights_name", "weights_host",
    "cached_weights", "weights_in_cache", "cache_problem", "why_unreachable", "check_weights",
    "explain_load_errors", "explain_oom",
]

LAB_WEIGHTS = {1: "ResNet18_Weights.IMAGENET1K_V1", 2: "yolo11n.pt", 3: "google/siglip2-so400m-patch14-384"}
# What each lab compares its model with, or swaps in for an exercise (`make weights` fetches these too).
MORE_WEIGHTS = {
    1: ("ResNet50_Weights.IMAGENET1K_V2",),
    2: ("yolo11s.pt", "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"),
    3: ("openai/clip-vit-base-patch32",),
}
_ULTRALYTICS_HOST = "github.com"  # ultralytics' assets are GitHub release files


# ------------------------------------------------------------------ sources


def _kind(source: Any) -> str:
    """'torchvision', 'ultralytics' or 'huggingface'."""
    if not isinstance(source, str):
        from torchvision.models import WeightsEnum

        if isinstance(source, WeightsEnum):
            return "torchvision"
        raise KitError(f"weights must be torchvision weights, a .pt file name or a Hugging Face id, not {source!r}")
    if re.fullmatch(r"\w+_Weights\.\w+", source):
        return "torchvision"
    if source.endswith(".pt"):
        return "ultralytics"
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        return "huggingface"
    raise KitError(f"{source!r} names no weights: use torchvision weights, a .pt file name or a Hugging Face id")


def _torchvision(source: Any) -> Any:
    from torchvision.models import get_weight

    if not isinstance(source, str):
        return source
    try:
        return get_weight(source)
    except (ValueError, KeyError) as err:
        raise KitError(f"torchvision has no weights called {source}") from err


def weights_name(source: Any) -> str:
    """A readable name for the weights: 'ResNet18_Weights.IMAGENET1K_V1', 'yolo11n.pt' or the model id."""
    if _kind(source) == "torchvision":
        weights = _torchvision(source)
        return f"{type(weights).__name__}.{weights.name}"
    return source


def weights_host(source: Any) -> str:
    """The host the library downloads these weights from."""
    kind = _kind(source)
    if kind == "torchvision":
        return urlsplit(_torchvision(source).url).hostname or "download.pytorch.org"
    return _ULTRALYTICS_HOST if kind == "ultralytics" else "huggingface.co"


def _hf_snapshot(repo: Path) -> Path | None:
    """The snapshot folder that refs/main of a hub-cache repository folder points at, if it holds a config."""
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def cached_weights(source: Any) -> Path | None:
    """Where the library would load the weights from without downloading (a file, or a model folder), else None."""
    kind = _kind(source)
    if kind == "torchvision":
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlsplit(_torchvision(source).url).path).name
        return path if path.is_file() else None
    if kind == "ultralytics":
        from ultralytics.utils import SETTINGS

        for path in (Path(source), Path(SETTINGS["weights_dir"]) / source):
            if path.is_file():
                return path.resolve()
        return None
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(source, "config.json")
    return Path(config).parent if isinstance(config, str) else None


def weights_in_cache(source: Any, cache: str | Path) -> Path:
    """Where a kit cache folder (made by `make weights`) keeps the weights: a file, or a hub-cache model folder."""
    cache = Path(cache)
    kind = _kind(source)
    if kind == "torchvision":
        return cache / "torch" / "hub" / "checkpoints" / Path(urlsplit(_torchvision(source).url).path).name
    if kind == "ultralytics":
        return cache / "ultralytics" / "weights" / source
    return cache / "huggingface" / "hub" / ("models--" + source.replace("/", "--"))


# -------------------------------------------------------------- the kit cache


def kit_cache_env(cache: Path) -> dict[str, str]:
    """The variables that point torch and Hugging Face at a kit cache folder (ultralytics: see use_kit_cache)."""
    return {"TORCH_HOME": str(cache / "torch"), "HF_HOME": str(cache / "huggingface")}


def _ultralytics_config(cache: Path) -> Path:
    """A writable YOLO_CONFIG_DIR outside the cache whose settings send ultralytics to the cache's weights.

    ultralytics finds weights through `weights_dir` in its settings file and rewrites that file as it likes, so the
    kit never points it into the cache itself: the cache may be a read-only copy.
    """
    source = cache / "ultralytics" / "Ultralytics"
    folder = Path(tempfile.gettempdir()) / "cvkit-ultralytics" / hashlib.sha256(str(cache).encode()).hexdigest()[:12]
    (folder / "Ultralytics").mkdir(parents=True, exist_ok=True)
    settings_file = source / "settings.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    settings.update(weights_dir=str(cache / "ultralytics" / "weights"), sync=False)
    fresh = folder / "Ultralytics" / f"settings.{os.getpid()}.tmp"
    fresh.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    os.replace(fresh, folder / "Ultralytics" / "settings.json")
    for font in source.glob("*.ttf"):  # ultralytics downloads its fonts on first drawing unless they are here
        target = folder / "Ultralytics" / font.name
        if not target.exists():
            target.symlink_to(font)
    return folder


def use_kit_cache(cache: str | Path | None = None, timeout: float = 3.0) -> dict[str, str]:
    """Point torch, Hugging Face and ultralytics at the kit's weight cache, if there is one; return what was set.

    Call it before the libraries load a model. Variables already set win. Nothing is written inside the cache. When the
    cache holds every model the labs load (LAB_WEIGHTS and MORE_WEIGHTS), the libraries are switched to offline mode
    without asking the network; when some are missing, one bounded probe decides whether they can be downloaded, and
    offline mode is set if not.
    """
    cache = Path(cache).expanduser().resolve() if cache is not None else kit_cache_dir()
    if not any((cache / name).is_dir() for name in ("torch", "huggingface", "ultralytics")):
        return {}
    wanted = dict(kit_cache_env(cache))
    if (cache / "ultralytics").is_dir() and "YOLO_CONFIG_DIR" not in os.environ:
        wanted["YOLO_CONFIG_DIR"] = str(_ultralytics_config(cache))
    applied = {key: value for key, value in wanted.items() if key not in os.environ}
    os.environ.update(applied)
    undecided = {key: "1" for key in ("HF_HUB_OFFLINE", "YOLO_OFFLINE") if key not in os.environ}
    every = [*LAB_WEIGHTS.values(), *(source for more in MORE_WEIGHTS.values() for source in more)]
    if undecided and (all(_complete_in_cache(source, cache) for source in every)
                      or why_unreachable("huggingface.co", timeout) is not None):
        os.environ.update(undecided)
        applied.update(undecided)
    if applied:
        print(f"Using the kit's weight cache at {cache} ({', '.join(sorted(applied))})")
    return applied


def _complete_in_cache(source: str, cache: Path) -> bool:
    path = weights_in_cache(source, cache)
    return _hf_snapshot(path) is not None if _kind(source) == "huggingface" else path.is_file()


def cache_problem(source: Any, cache: str | Path) -> str | None:
    """None when a kit cache folder holds a complete copy of the weights that reads, else what is wrong with it."""
    path = weights_in_cache(source, cache)
    if not path.exists():
        return "missing"
    if _kind(source) == "huggingface":
        snapshot = _hf_snapshot(path)
        return "incomplete (no snapshot with a config)" if snapshot is None else _damage(source, snapshot)
    if _kind(source) == "torchvision":  # torchvision names its files after the first hex digits of their sha256
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if digest.startswith(path.stem.rsplit("-", 1)[-1]) else "its checksum does not match its name"
    return _damage(source, path)


# ------------------------------------------------------------- availability


def why_unreachable(host: str, timeout: float) -> str | None:
    """None if a TCP connection to host:443 opens within `timeout` (name lookup included), else why not."""
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
        except OSError as err:
            found["error"] = err

    worker = threading.Thread(target=lookup, daemon=True)  # getaddrinfo itself has no time limit
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return f"its name did not resolve within {timeout:g} s (no network?)"
    if "error" in found:
        return "its name could not be resolved (no network?)"
    family, kind, proto, _, address = found["addresses"][0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
        return None
    except TimeoutError:
        return f"it did not answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)


def check_weights(source: Any, timeout: float = 5.0) -> Path | None:
    """Say where the weights will come from and return their cached path (None: to be downloaded).

    Raises a one-line KitError when they are neither cached nor downloadable.
    """
    name = weights_name(source)
    path = cached_weights(source)
    if path is not None:
        print(f"{name}: cached at {path}")
        return path
    host = weights_host(source)
    offline = [key for key in ("HF_HUB_OFFLINE", "YOLO_OFFLINE") if os.environ.get(key, "").lower() in ("1", "true")]
    kind = _kind(source)
    if kind == "huggingface" and "HF_HUB_OFFLINE" in offline:
        reason = "HF_HUB_OFFLINE is set (the kit sets it when a weight cache is in use or there is no network)"
    else:
        reason = why_unreachable(host, timeout)
    if reason is not None:
        raise KitError(
            f"{name} is not cached and cannot be downloaded from {host}: {reason}. "
            "Run `make weights` on a connected machine, or copy its .cache/ folder here (see README)."
        )
    print(f"{name}: not cached yet, will be downloaded from {host} on first load")
    return None


# ------------------------------------------------------------- load errors


def _damage(source: Any, path: Path) -> str | None:
    """What is wrong with cached weights at `path` (a file or a model folder), or None if they read correctly."""
    kind = _kind(source)
    try:
        if kind == "torchvision":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif kind == "ultralytics":
            with zipfile.ZipFile(path) as archive:  # a torch checkpoint is a zip archive with checksums
                bad = archive.testzip()
            if bad is not None:
                return f"{bad} inside it fails its checksum"
        else:
            from safetensors import safe_open

            for config in path.glob("*.json"):
                json.loads(config.read_text(encoding="utf-8"))
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            if not weights:
                return "it holds no weights file (an interrupted download?)"
            for file in weights:
                if file.suffix == ".bin":  # a torch checkpoint: a zip archive, whose directory sits at its very end
                    zipfile.ZipFile(file).close()
                else:
                    with safe_open(str(file), framework="pt"):
                        pass
    except Exception as err:  # whatever the reader raises, the file does not read
        return _first_line(err)
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160].strip() if text else type(err).__name__


@contextmanager
def explain_oom(hint: str | None = None) -> Iterator[None]:
    """Turn CUDA out-of-memory inside the block into a one-line KitError that says what to change."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        advice = hint or "use a smaller batch (half of it, say), then run the cell again"
        raise KitError(f"the GPU ran out of memory: {advice}") from err


@contextmanager
def explain_load_errors(source: Any) -> Iterator[None]:
    """Turn a failed load of these weights into one KitError line when a missing or damaged file caused it.

    Every other error (a typo in the cell, a wrong argument) passes through unchanged.
    """
    name = weights_name(source)
    with explain_oom(f"free memory (Runtime > Restart session) or use a smaller model than {name}"):
        try:
            yield
        except KitError:
            raise
        except Exception as err:
            path = cached_weights(source)
            if path is None:
                if not isinstance(err, OSError):  # network failures are OSErrors in all three libraries
                    raise
                raise KitError(
                    f"{name} could not be downloaded ({_first_line(err)}); check the network, or copy a prepared "
                    "cache here (see README)"
                ) from err
            problem = _damage(source, path)
            if problem is None:
                raise
            if _kind(source) == "huggingface":
                path = next((p for p in path.parents if p.name.startswith("models--")), path)
            raise KitError(
                f"the cached {name} at {path} is damaged or incomplete ({problem}); delete it and run the cell "
                "again to download it afresh"
            ) from err
