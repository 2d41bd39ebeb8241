"""Where each lab's pretrained weights live, and a quick check that they are cached or can be fetched."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .core import KitError

__all__ = ["LAB_MODELS", "cached_weights", "check_weights", "explain_load_errors", "explain_oom"]

STANDIN_MARKER = "STANDIN"
LAB_MODELS = {
    1: ("ResNet-18 ImageNet weights", "download.pytorch.org"),
    2: ("YOLO11n weights (yolo11n.pt)", "github.com"),
    3: ("SigLIP 2 so400m-patch14-384 (google/siglip2-so400m-patch14-384)", "huggingface.co"),
}
SIGLIP_ID = "google/siglip2-so400m-patch14-384"


def cached_weights(lab: int) -> Path | None:
    """The cached weights file (or model folder) of a lab, or None when it would have to be downloaded."""
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

        config = try_to_load_from_cache(SIGLIP_ID, "config.json")
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


def check_weights(lab: int, timeout: float = 5.0) -> Path | None:
    """Say where the lab's weights come from; raise a one-line KitError if they are neither cached nor reachable."""
    what, host = LAB_MODELS[lab] if lab in LAB_MODELS else (None, None)
    path = cached_weights(lab)
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
