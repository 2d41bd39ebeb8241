"""Helpers for Lab 3: open-vocabulary (zero-shot) classification with SigLIP 2.

The two towers of a SigLIP model are run separately so that their work can be reused: each image goes through the
image tower once, whatever the number of class sets, and each class set's prompts go through the text tower once,
whatever the number of images. Scores are then a matrix product plus SigLIP's scale, bias and sigmoid.

Nothing heavy is imported at module level (torch and matplotlib only inside the functions that need them; the
model, processor and pipeline come in as arguments), so `import cvkit` stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .core import KitError

if TYPE_CHECKING:
    import torch

__all__ = [
    "PROMPT_TEMPLATE",
    "SIGLIP_TEXT_LENGTH",
    "make_prompts",
    "tokenize_prompts",
    "image_features",
    "text_features",
    "zero_shot_logits",
    "zero_shot_probs",
    "TowerCalls",
    "count_tower_calls",
    "pipeline_probs",
    "ranked",
    "zero_shot_scorecard",
    "plot_heatmap",
]

PROMPT_TEMPLATE = "This is a photo of {label}."
SIGLIP_TEXT_LENGTH = 64  # SigLIP 2 was trained on texts padded to exactly 64 tokens


# ------------------------------------------------------------------------ text


def make_prompts(labels: Sequence[str], template: str = PROMPT_TEMPLATE) -> list[str]:
    """One prompt per label: the label lower-cased (SigLIP 2 was trained on lower-case text) put into `template`."""
    if isinstance(labels, str):
        raise KitError(f"labels must be a list of strings, not the single string {labels!r}")
    if "{label}" not in template:
        raise KitError(f"the prompt template must contain {{label}}, e.g. {PROMPT_TEMPLATE!r}; got {template!r}")
    cleaned = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise KitError(f"every label must be a non-empty string; got {label!r}")
        cleaned.append(re.sub(r"\s+", " ", label.strip()).lower())
    if not cleaned:
        raise KitError("the list of labels is empty: give at least one")
    return [template.replace("{label}", label) for label in cleaned]


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


def tokenize_prompts(processor: Any, prompts: Sequence[str]) -> Any:
    """Token ids padded to exactly 64 tokens, as SigLIP 2 was trained (padding=True would pad less and hurt accuracy).

    Returns the tokenizer's BatchEncoding (PyTorch tensors). The real SigLIP 2 tokenizer returns `input_ids` only:
    the model was trained without an attention mask, so none is made up here either.
    """
    return _tokenizer(processor)(
        list(prompts),
        padding="max_length",
        max_length=SIGLIP_TEXT_LENGTH,
        truncation=True,
        return_tensors="pt",
    )


# -------------------------------------------------------------------- features


def _pooled(output: Any) -> torch.Tensor:
    # transformers 5 returns an output object (use .pooler_output); 4.x returned the tensor itself.
    return output.pooler_output if hasattr(output, "pooler_output") else output


def _unit(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(p=2, dim=-1, keepdim=True)


def image_features(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    device: Any,
    dtype: Any,
    batch_size: int = 8,
) -> torch.Tensor:
    """(n_images, dim) unit-length image embeddings, float32 on the CPU; each image runs through the image tower once."""
    import torch

    if not len(images):
        raise KitError("image_features got no images")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    image_processor = getattr(processor, "image_processor", processor)
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = list(images[start : start + batch_size])
            pixels = image_processor(images=batch, return_tensors="pt")["pixel_values"].to(device, dtype)
            chunks.append(_pooled(model.get_image_features(pixel_values=pixels)).float().cpu())
    return _unit(torch.cat(chunks))


def text_features(
    model: Any,
    processor: Any,
    labels: Sequence[str],
    template: str = PROMPT_TEMPLATE,
    device: Any = "cpu",
) -> torch.Tensor:
    """(n_labels, dim) unit-length text embeddings of the labels' prompts, float32 on the CPU (one text-tower call)."""
    import torch

    inputs = tokenize_prompts(processor, make_prompts(labels, template)).to(device)
    with torch.inference_mode():
        features = _pooled(model.get_text_features(**inputs)).float().cpu()
    return _unit(features)


# ---------------------------------------------------------------------- scores


def zero_shot_logits(model: Any, img_feats: torch.Tensor, txt_feats: torch.Tensor) -> torch.Tensor:
    """(n_images, n_labels) SigLIP logits: cosine similarity times exp(logit_scale) plus logit_bias."""
    if img_feats.ndim != 2 or txt_feats.ndim != 2 or img_feats.shape[1] != txt_feats.shape[1]:
        raise ValueError(
            f"expected (n_images, dim) and (n_labels, dim) features, got {tuple(img_feats.shape)} "
            f"and {tuple(txt_feats.shape)}"
        )
    scale = model.logit_scale.detach().float().cpu().exp()
    bias = model.logit_bias.detach().float().cpu()
    cosine = _unit(img_feats.float().cpu()) @ _unit(txt_feats.float().cpu()).T
    return cosine * scale + bias


def zero_shot_probs(model: Any, img_feats: torch.Tensor, txt_feats: torch.Tensor) -> torch.Tensor:
    """(n_images, n_labels) probabilities: sigmoid of the logits, each image-label pair scored on its own.

    Rows need not sum to 1 (unlike CLIP's softmax): an image can match several labels, or none.
    """
    return zero_shot_logits(model, img_feats, txt_feats).sigmoid()


# ------------------------------------------------------------ counting the work


@dataclasses.dataclass
class TowerCalls:
    """How much went through each tower: calls, and rows (images or prompts) in all."""

    image_calls: int = 0
    images: int = 0
    text_calls: int = 0
    texts: int = 0

    def __str__(self) -> str:
        return (
            f"image tower: {self.images} image(s) in {self.image_calls} call(s); "
            f"text tower: {self.texts} prompt(s) in {self.text_calls} call(s)"
        )


@contextlib.contextmanager
def count_tower_calls(model: Any) -> Iterator[TowerCalls]:
    """Count the calls and rows that go through `model.vision_model` and `model.text_model` inside the block."""
    calls = TowerCalls()

    def on_image(module, args, kwargs, output):
        calls.image_calls += 1
        calls.images += output.last_hidden_state.shape[0]

    def on_text(module, args, kwargs, output):
        calls.text_calls += 1
        calls.texts += output.last_hidden_state.shape[0]

    hooks = [
        model.vision_model.register_forward_hook(on_image, with_kwargs=True),
        model.text_model.register_forward_hook(on_text, with_kwargs=True),
    ]
    try:
        yield calls
    finally:
        for hook in hooks:
            hook.remove()


# ------------------------------------------------------------------- pipeline


def pipeline_probs(classifier: Any, image: Any, labels: Sequence[str], template: str = PROMPT_TEMPLATE) -> torch.Tensor:
    """Scores from a transformers zero-shot-image-classification pipeline, in the order of `labels`.

    The labels are lower-cased as in `make_prompts`, and `template` is given to the pipeline in its own `{}` form.
    For SigLIP models the pipeline pads to 64 tokens and applies a sigmoid by itself.
    """
    import torch

    make_prompts(labels, template)  # the same checks as the hand-written path
    cleaned = [re.sub(r"\s+", " ", label.strip()).lower() for label in labels]
    duplicates = sorted({label for label in cleaned if cleaned.count(label) > 1})
    if duplicates:  # the pipeline answers one score per distinct label
        raise KitError(f"labels repeat (after lower-casing): {', '.join(duplicates)}")
    results = classifier(image, candidate_labels=cleaned, hypothesis_template=template.replace("{label}", "{}"))
    scores = {result["label"]: result["score"] for result in results}
    return torch.tensor([scores[label] for label in cleaned])


# ------------------------------------------------------------ reading results


def ranked(probs: torch.Tensor, labels: Sequence[str]) -> list[tuple[str, float]]:
    """(label, probability) pairs of one image's row, most likely first."""
    values = [float(v) for v in probs.tolist()]
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} probabilities for {len(labels)} labels")
    return sorted(zip(labels, values), key=lambda pair: -pair[1])


def zero_shot_scorecard(
    names: Sequence[str],
    expected: Sequence[Mapping[str, str]],
    probs_by_set: Mapping[str, torch.Tensor],
    class_sets: Mapping[str, Sequence[str]],
) -> list[tuple[str, str, str, str, float, int, str]]:
    """Rows of (image, class set, expected, top prediction, p(expected), rank of expected, hit) for the scorecard.

    `expected[i]` maps set name -> expected label for image i (the manifest's lab3 column); sets an image has no
    expectation for are left out.
    """
    rows = []
    for i, (name, wanted) in enumerate(zip(names, expected, strict=True)):
        for set_name, label in wanted.items():
            if set_name not in class_sets:
                raise KitError(f"{name}: the manifest names class set '{set_name}', which is not in the class sets")
            labels = [item.lower() for item in class_sets[set_name]]
            if label.lower() not in labels:
                raise KitError(f"{name}: expected label '{label}' is not in class set '{set_name}' ({', '.join(labels)})")
            order = ranked(probs_by_set[set_name][i], labels)
            position = [item for item, _ in order].index(label.lower()) + 1
            p_expected = dict(order)[label.lower()]
            rows.append(
                (name, set_name, label, order[0][0], p_expected, position, "yes" if position == 1 else "no")
            )
    return rows


# -------------------------------------------------------------------- plotting


def plot_heatmap(
    matrix: torch.Tensor,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str = "",
    ax: Any = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    diagonal: bool = False,
    cmap: str = "viridis",
) -> Any:
    """Draw a (rows x columns) matrix with its values written in the cells; box the diagonal if asked. Returns the axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    values = matrix.detach().float().cpu().numpy()
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix of shape {values.shape} for {len(row_labels)} x {len(col_labels)} labels")
    show = ax is None
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * len(col_labels) + 2.5, 0.55 * len(row_labels) + 1.6))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    low, high = image.get_clim()
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            bright = (values[r, c] - low) > 0.6 * (high - low)
            ax.text(c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=8, color="black" if bright else "white")
    if diagonal:
        for k in range(min(values.shape)):
            ax.add_patch(Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if show:
        ax.figure.tight_layout()
        plt.show()
    return ax
