"""Plumbing for Lab 3 (open-vocabulary classification with SigLIP 2): batches through the two towers, and a heatmap.

The scoring itself (normalise, one matrix product, scale and bias, sigmoid) is the lesson: it stands in the notebook.
Nothing heavy is imported at module level (torch and matplotlib only inside the functions that need them; the
model and processor come in as arguments), so `import cvkit` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .core import KitError

if TYPE_CHECKING:
    import torch

__all__ = ["SIGLIP_TEXT_LENGTH", "tokenize_prompts", "image_features", "text_features", "plot_heatmap"]

SIGLIP_TEXT_LENGTH = 64  # SigLIP 2 was trained on texts padded to exactly 64 tokens


def _prompt_list(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise KitError(f"prompts must be a list of strings, not the single string {prompts!r}")
    prompts = list(prompts)
    if not prompts:
        raise KitError("the list of prompts is empty: give at least one")
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise KitError(f"every prompt must be a non-empty string; got {prompt!r}")
    return prompts


def tokenize_prompts(processor: Any, prompts: Sequence[str]) -> Any:
    """Token ids of the prompts, lower-cased and padded (or cut) to exactly 64 tokens, as SigLIP 2 was trained.

    Returns the tokenizer's BatchEncoding of PyTorch tensors. SigLIP 2's tokenizer returns `input_ids` only: the
    model was trained without an attention mask, so none is made up here either.
    """
    tokenizer = getattr(processor, "tokenizer", processor)
    return tokenizer(
        [prompt.lower() for prompt in _prompt_list(prompts)],
        padding="max_length",
        max_length=SIGLIP_TEXT_LENGTH,
        truncation=True,
        return_tensors="pt",
    )


def _pooled(output: Any) -> torch.Tensor:
    # transformers 5 returns an output object (use .pooler_output); 4.x returned the tensor itself.
    return output.pooler_output if hasattr(output, "pooler_output") else output


def image_features(
    model: Any, processor: Any, images: Sequence[Any], device: Any, dtype: Any, batch_size: int = 8
) -> torch.Tensor:
    """(n_images, dim) image-tower vectors (not normalised), float32 on the CPU, `batch_size` images per call."""
    import torch

    if not len(images):
        raise KitError("image_features got no images")
    if batch_size < 1:
        raise KitError(f"batch_size must be at least 1, got {batch_size}")
    image_processor = getattr(processor, "image_processor", processor)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = list(images[start : start + batch_size])
            pixels = image_processor(images=batch, return_tensors="pt")["pixel_values"].to(device, dtype)
            chunks.append(_pooled(model.get_image_features(pixel_values=pixels)).float().cpu())
    return torch.cat(chunks)


def text_features(model: Any, processor: Any, prompts: Sequence[str], device: Any = "cpu") -> torch.Tensor:
    """(n_prompts, dim) text-tower vectors (not normalised) of `tokenize_prompts(prompts)`, float32 on the CPU."""
    import torch

    inputs = tokenize_prompts(processor, prompts).to(device)
    with torch.inference_mode():
        return _pooled(model.get_text_features(**inputs)).float().cpu()


def plot_heatmap(
    matrix: torch.Tensor,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str = "",
    ax: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
    diagonal: bool = False,
    fmt: str = "{:.2f}",
) -> Any:
    """Draw a (rows x columns) matrix with its values in the cells; `center` gives a diverging colour scale around it,
    `diagonal` boxes the diagonal. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    values = matrix.detach().float().cpu().numpy()
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix of shape {values.shape} for {len(row_labels)} x {len(col_labels)} labels")
    cmap = "viridis"
    if center is not None:
        reach = max(abs(float(values.max()) - center), abs(float(values.min()) - center), 1e-6)
        vmin, vmax, cmap = center - reach, center + reach, "RdBu_r"
    show = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=(0.9 * len(col_labels) + 3, 0.45 * len(row_labels) + 1.6))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=9)
    low, high = image.get_clim()
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            share = (values[r, c] - low) / (high - low) if high > low else 0.5
            dark_cell = share > 0.8 or share < 0.2 if center is not None else share < 0.6
            ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=8,
                    color="white" if dark_cell else "black")
    if diagonal:
        for k in range(min(values.shape)):
            ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if show:
        ax.figure.tight_layout()
        plt.show()
    return ax
