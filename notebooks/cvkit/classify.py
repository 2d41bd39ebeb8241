"""Helpers for Lab 1: top-k tables, the scorecard and a look at the preprocessing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["top_k", "classification_scorecard", "show_preprocessing"]


def top_k(probs: torch.Tensor, categories: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """For each row of an (N, C) probability tensor, the k most likely (class name, probability) pairs."""
    if probs.ndim != 2 or probs.shape[1] != len(categories):
        raise ValueError(f"expected probabilities of shape (N, {len(categories)}), got {tuple(probs.shape)}")
    values, indices = probs.float().topk(k, dim=1)
    return [
        [(categories[i], float(v)) for v, i in zip(row_values.tolist(), row_indices.tolist())]
        for row_values, row_indices in zip(values, indices)
    ]


def classification_scorecard(
    names: Sequence[str], predictions: Sequence[Sequence[tuple[str, float]]], expected: Sequence[Sequence[str]]
) -> list[tuple[str, str, str, str, str]]:
    """Rows of (image, expected, top-1 prediction, top-1 hit, top-5 hit) against the accepted labels."""
    rows = []
    for name, preds, accepted in zip(names, predictions, expected, strict=True):
        labels = [label for label, _ in preds]
        rows.append(
            (
                name,
                " | ".join(accepted),
                labels[0],
                "yes" if labels[0] in accepted else "no",
                "yes" if any(label in accepted for label in labels[:5]) else "no",
            )
        )
    return rows


def show_preprocessing(image: Any, preprocess: Any) -> torch.Tensor:
    """Show an image beside what `preprocess` makes of it (de-normalised for display); return the tensor."""
    import matplotlib.pyplot as plt
    import torch

    tensor = preprocess(image)
    mean = torch.tensor(preprocess.mean).view(3, 1, 1)
    std = torch.tensor(preprocess.std).view(3, 1, 1)
    shown = (tensor * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    left.imshow(image)
    left.set_title(f"original {image.width}x{image.height}")
    right.imshow(shown)
    right.set_title(f"model input {tensor.shape[2]}x{tensor.shape[1]} (de-normalised)")
    for ax in (left, right):
        ax.axis("off")
    fig.tight_layout()
    plt.show()
    return tensor
