"""ResNet-18 stand-in: a random state dict under the file name torchvision downloads to."""

from __future__ import annotations

from pathlib import Path

from . import MARKER


def install(root: Path) -> dict[str, str]:
    """Write a random resnet18 state dict into <root>/torch/hub/checkpoints; return {"TORCH_HOME": ...}."""
    import torch
    from torchvision.models import ResNet18_Weights, resnet18

    torch_home = root / "torch"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    file_name = ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), checkpoints / file_name)
    (checkpoints / MARKER).write_text(f"{file_name} holds random weights written by the tests\n")
    return {"TORCH_HOME": str(torch_home)}
