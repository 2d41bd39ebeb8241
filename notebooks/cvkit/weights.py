"""Where each lab's pretrained weights live, and a quick check that they are cached or can be fetched."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .core import KIT_ROOT, KitError

__all__ = [
    "LAB_MODELS", "kit_cache_dir", "kit_cache_env", "use_kit_cache", "cache_status",
    "cached_weights", "check_weights", "explain_load_errors", "explain_oom",
]

STANDIN_MARKER = "STANDIN"
LAB_MODELS = {
    1: ("ResNet-18 ImageNet weights", "download.pytorch.org"),
    2: ("YOLO11n weights (yolo11n.pt)", "github.com"),
    3: ("SigLIP 2 so400m-patch14-384 (google/siglip2-so400m-patch14-384)", "huggingface.co"),
}
SIGLIP_ID = "google/siglip2-so400m-patch14-384"


def kit_cache_dir() -> Path:
    """The kit's own cache folder: $CVKIT_CACHE, else .cache/ at the repository root."""
    return Path(os.environ.get("CVKIT_CACHE") or KIT_ROOT / ".cache").resolve()


def kit_cache_env(cache: Path) -> dict[str, str]:
    """The environment variables that point torch, Hugging Face and ultralytics at a kit cache folder."""
    return {
        "TORCH_HOME": str(cache / "torch"),
        "HF_HOME": str(cache / "huggingface"),
        "YOLO_CONFIG_DIR": str(cache / "ultralytics"),
    }


def _point_ultralytics_at(cache: Path) -> None:
    """Keep weights_dir in the cache's ultralytics settings pointing into the cache, wherever it was copied."""
    import json

    settings = cache / "ultralytics" / "Ultralytics" / "settings.json"
    if settings.is_file():
        values = json.loads(settings.read_text(encoding="utf-8"))
        if values.get("weights_dir") != str(cache / "ultralytics" / "weights"):
            values["weights_dir"] = str(cache / "ultralytics" / "weights")
            settings.write_text(json.dumps(values, indent=2), encoding="utf-8")


def use_kit_cache(cache: str | Path | None = None, timeout: float = 3.0) -> dict[str, str]:
    """Point the libraries at the kit's weight cache (made by `make weights`) if there is one; return what was set.

    Call it before importing torchvision models, ultralytics or transformers. Variables already set win. Without
    network, the libraries are switched to offline mode so that they do not spend minutes retrying.
    """
    cache = Path(cache).resolve() if cache is not None else kit_cache_dir()
    if not any((cache / name).is_dir() for name in ("torch", "huggingface", "ultralytics")):
        return {}
    applied = {key: value for key, value in kit_cache_env(cache).items() if key not in os.environ}
    os.environ.update(applied)
    if os.environ.get("YOLO_CONFIG_DIR") == str(cache / "ultralytics"):
        _point_ultralytics_at(cache)
    if applied and _reachable("huggingface.co", timeout) is not None:
        offline = {key: "1" for key in ("HF_HUB_OFFLINE", "YOLO_OFFLINE") if key not in os.environ}
        os.environ.update(offline)
        applied.update(offline)
    if applied:
        print(f"Using the kit's weight cache at {cache} ({', '.join(sorted(applied))})")
    return applied


def cache_status(lab: int, cache: str | Path | None = None) -> tuple[str, Path | None]:
    """("real" | "stand-in" | "missing", path) for a lab's weights in a kit cache folder, without loading anything."""
    cache = Path(cache) if cache is not None else kit_cache_dir()
    if lab == 1:
        from torchvision.models import ResNet18_Weights

        candidates = [cache / "torch" / "hub" / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]]
    elif lab == 2:
        candidates = [cache / "ultralytics" / "weights" / "yolo11n.pt"]
    elif lab == 3:
        repo = cache / "huggingface" / "hub" / ("models--" + SIGLIP_ID.replace("/", "--"))
        ref = repo / "refs" / "main"
        candidates = [repo / "snapshots" / ref.read_text().strip()] if ref.is_file() else []
        candidates = [p for p in candidates if (p / "config.json").is_file()]
    else:
        raise KitError(f"there is no lab {lab}: choose 1, 2 or 3")
    for path in candidates:
        if path.exists():
            return ("stand-in" if _is_standin(path) else "real"), path
    return "missing", None


def cached_weights(lab: int, model_id: str = SIGLIP_ID) -> Path | None:
    """The cached weights file (or model folder; Lab 3: of `model_id`), or None when it would have to be downloaded."""
    if lab == 1:
        import torch
        from torchvision.models import ResNet18_Weights

        path = Path(torch.hub.get_dir()) / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
        return path if path.is_file() else None
    if lab == 2:
        from ultralytics.utils import SETTINGS

        for path in (Path("yolo11n.pt"), Path(SETTINGS["weights_dir"]) / "yolo11n.pt"):
            if path.is_file():
                return path.resolve()
        return None
    if lab == 3:
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(model_id, "config.json")
        return Path(config).parent if isinstance(config, str) else None
    raise KitError(f"there is no lab {lab}: choose 1, 2 or 3")


def _is_standin(path: Path) -> bool:
    folder = path if path.is_dir() else path.parent
    return (folder / STANDIN_MARKER).exists()


def _reachable(host: str, timeout: float) -> str | None:
    """None if a TCP connection to host:443 opens, else the reason it did not."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except socket.gaierror:
        return "its name could not be resolved (no network?)"
    except TimeoutError:
        return f"it did not answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)


def check_weights(lab: int, model_id: str = SIGLIP_ID, timeout: float = 5.0) -> Path | None:
    """Say where the lab's weights (Lab 3: of `model_id`) come from; a one-line KitError if neither cached nor reachable."""
    what, host = LAB_MODELS[lab] if lab in LAB_MODELS else (None, None)
    if lab == 3 and model_id != SIGLIP_ID:
        what = model_id
    path = cached_weights(lab, model_id)
    if path is not None:
        note = "  (STAND-IN with random weights: predictions are meaningless)" if _is_standin(path) else ""
        print(f"{what}: cached at {path}{note}")
        return path
    if lab == 3 and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        reason = "HF_HUB_OFFLINE is set"
    else:
        reason = _reachable(host, timeout)
    if reason is not None:
        raise KitError(
            f"{what} are not cached and cannot be downloaded from {host}: {reason}. "
            "Run `make weights` on a connected machine, or copy its .cache/ folder here (see README)."
        )
    print(f"{what}: not cached yet, will be downloaded from {host} on first load")
    return None


def _oom_message(lab: int) -> str:
    smaller = " or the smaller model google/siglip2-base-patch16-224" if lab == 3 else ""
    return f"the GPU ran out of memory: use a smaller batch (half of it, say){smaller}, then run the cell again"


def _first_line(err: BaseException) -> str:
    text = str(err).replace("❌", "").strip()
    return text.splitlines()[0][:160].strip() if text else type(err).__name__


@contextmanager
def explain_oom(lab: int) -> Iterator[None]:
    """Turn CUDA out-of-memory while running a lab's model into a one-line KitError with what to change."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        raise KitError(_oom_message(lab)) from None


@contextmanager
def explain_load_errors(lab: int) -> Iterator[None]:
    """Turn a failed model load (damaged cache, no download, no GPU memory) into a one-line KitError."""
    import torch

    what = LAB_MODELS[lab][0]
    try:
        yield
    except KitError:
        raise
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        raise KitError(_oom_message(lab)) from None
    except Exception as err:
        path = cached_weights(lab)
        if path is None:
            raise KitError(
                f"{what} could not be loaded or downloaded ({_first_line(err)}); "
                "check the network, or copy a prepared cache here (see README)"
            ) from None
        if lab == 3:
            path = next(p for p in path.parents if p.name.startswith("models--"))
        raise KitError(
            f"the cached {what} at {path} cannot be loaded ({_first_line(err)}): it is damaged or incomplete; "
            f"delete it and run the cell again to download it afresh"
        ) from None
