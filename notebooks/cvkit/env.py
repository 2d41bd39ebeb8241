"""Where the labs run: Colab, Kaggle or a local machine, the device and number format, the kit's cache folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import IN_REPOSITORY, KIT_ROOT

if TYPE_CHECKING:
    import torch

__all__ = ["kit_cache_dir", "in_colab", "in_kaggle", "pick_device", "pick_dtype", "device_report"]


def kit_cache_dir() -> Path:
    """The kit's cache folder (weights, downloaded images): $CVKIT_CACHE, else .cache/ in the repository when the kit
    runs from a checkout, else ~/.cache/cvkit (an installed kit; $XDG_CACHE_HOME is honoured)."""
    if os.environ.get("CVKIT_CACHE"):
        return Path(os.environ["CVKIT_CACHE"]).expanduser().resolve()
    if IN_REPOSITORY:
        return KIT_ROOT / ".cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser().resolve() / "cvkit"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def in_kaggle() -> bool:
    """True when running inside a Kaggle notebook."""
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def pick_device() -> torch.device:
    """The device the labs run on: the first CUDA GPU if there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """fp32 on CPU, bf16 on GPUs with native bf16 (compute capability 8.0+), fp16 on older GPUs such as the T4."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    # Decide from the compute capability: torch.cuda.is_bf16_supported() can say True on a T4 through emulation.
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def device_report() -> dict[str, Any]:
    """Print and return torch/CUDA versions, the GPU (name, memory, compute capability) and the dtype to use."""
    import torch

    device = pick_device()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "device": str(device),
        "dtype": str(pick_dtype(device)).replace("torch.", ""),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
        )
    for key, value in report.items():
        print(f"{key:>20}: {value}")
    if device.type == "cpu":
        if in_colab():
            print("No GPU. In Colab: Runtime > Change runtime type > T4 GPU, then run the notebook again.")
        elif in_kaggle():
            print("No GPU. In Kaggle: Settings > Accelerator > GPU T4, then run the notebook again.")
        else:
            print("No GPU found: the lab runs on the CPU (slower, same results).")
    return report
