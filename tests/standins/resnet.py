"""ResNet stand-ins: random state dicts under the file names torchvision downloads to (ResNet-18 for the lab,
ResNet-50 V2 for the exercise that swaps it in)."""

from __future__ import annotations

from pathlib import Path

from . import MARKER


def install(root: Path) -> dict[str, str]:
    """Write random resnet18 (IMAGENET1K_V1) and resnet50 (IMAGENET1K_V2) state dicts into
    <root>/torch/hub/checkpoints; return {"TORCH_HOME": ...}."""
    import torch
    from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18, resnet50

    torch_home = root / "torch"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    names = []
    for build, weights in ((resnet18, ResNet18_Weights.IMAGENET1K_V1), (resnet50, ResNet50_Weights.IMAGENET1K_V2)):
        file_name = weights.url.rsplit("/", 1)[-1]
        torch.manual_seed(0)
        torch.save(build().state_dict(), checkpoints / file_name)
        names.append(file_name)
    with (checkpoints / MARKER).open("a", encoding="utf-8") as marker:  # Faster R-CNN's stand-in writes there too
        marker.write(f"{', '.join(names)} hold random weights written by the tests\n")
    return {"TORCH_HOME": str(torch_home)}
