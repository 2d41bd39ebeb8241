"""Plumbing for Lab 3 (open-vocabulary classification with SigLIP 2 and CLIP): batches through the two towers, a
heatmap, and the checks of the lab's exercises.

The scoring itself (normalise, one matrix product, scale and bias, sigmoid or softmax) is the lesson: it stands in
the notebook. Nothing heavy is imported at module level (torch and matplotlib only inside the functions that need
them; the model and processor come in as arguments), so `import cvkit` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .checks import report_check
from .errors import KitError

if TYPE_CHECKING:
    import torch

__all__ = [
    "SIGLIP_TEXT_LENGTH", "tokenize_prompts", "image_features", "text_features", "plot_heatmap",
    "check_sigmoid_scores", "check_softmax_scores",
]

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
    """(n_prompts, dim) text-tower vectors (not normalised), float32 on the CPU, of the prompts tokenised as
    transformers' zero-shot pipeline does: `tokenize_prompts` for SigLIP models, else (CLIP) padded to the longest
    prompt with an attention mask."""
    import torch

    if "siglip" in model.config.model_type:
        inputs = tokenize_prompts(processor, prompts)
    else:
        tokenizer = getattr(processor, "tokenizer", processor)
        inputs = tokenizer(_prompt_list(prompts), padding=True, truncation=True, return_tensors="pt")
    inputs = inputs.to(device)
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


# ---------------------------------------------------------------- exercise checks
#
# Each check calls the student's function on inputs of its own, which the lab never computes, so that no value pasted
# from the lab can pass.


def _check_inputs(seed: int, *shape: int) -> torch.Tensor:
    """Reproducible random numbers of `shape`, drawn by the check (never by the lab)."""
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _call(function: Any, *args: Any) -> tuple[Any, str | None]:
    """(what `function` returns for `args`, None), or (None, why it could not be called)."""
    if function is None:
        return None, "your function is still None: define it in the exercise cell and run that cell again"
    if not callable(function):
        return None, (f"give the function itself (its name, without calling it), not a {type(function).__name__}: "
                      "the check calls it on inputs of its own")
    name = getattr(function, "__name__", "your function")
    try:
        return function(*args), None
    except Exception as err:  # the student's code: any error becomes a "not yet"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return None, f"{name} raised {type(err).__name__}" + (f": {first_line}" if first_line else "")


def _answer_problem(answer: Any, shape: tuple[int, ...]) -> tuple[Any, str | None]:
    """The answer as a float32 CPU tensor, or why it cannot be compared with a reference of `shape`."""
    import torch

    if answer is None:
        return None, "your function returned None: end it with a return statement"
    try:
        answer = torch.as_tensor(answer).detach().float().cpu()
    except (TypeError, ValueError, RuntimeError):
        return None, f"your function must return a tensor of numbers, not a {type(answer).__name__}"
    if tuple(answer.shape) == tuple(reversed(shape)):
        return None, f"it returned shape {tuple(answer.shape)} where {shape} was due: rows are images, columns labels"
    if tuple(answer.shape) != shape:
        return None, (f"for {shape[0]} images and {shape[1]} labels it returned shape {tuple(answer.shape)}, not "
                      f"{shape}: compute the result from the function's arguments, not from the lab's variables")
    if not torch.isfinite(answer).all():
        return None, "it returned NaN or infinite values"
    return answer, None


def _close(a: Any, b: Any) -> bool:
    """Equal up to float32 rounding: 0.1 % of each value (probabilities can be tiny), or 1e-6."""
    import torch

    return bool(torch.allclose(a, b, rtol=1e-3, atol=1e-6))


def _first_mistake(answer: Any, mistakes: dict[str, Any], otherwise: str) -> str:
    """The hint of the first known mistake that `answer` equals, else `otherwise`."""
    return next((hint for hint, wrong in mistakes.items() if _close(answer, wrong)), otherwise)


def check_sigmoid_scores(function: Any, exercise: int | str = 1) -> bool:
    """Exercise check: `function(image_vectors, text_vectors, logit_scale, logit_bias)` must return SigLIP's
    sigmoid(e^t * cosine + b) for every (image, text) pair; it is called on vectors and parameters of the check's own."""
    import torch
    import torch.nn.functional as F

    images, texts = 3 * _check_inputs(1, 3, 24), 2 * _check_inputs(2, 5, 24)  # not unit length, as the towers' output
    t, b = torch.tensor(1.7), torch.tensor(-0.8)  # neither a real checkpoint's nor a fresh model's
    answer, problem = _call(function, images.clone(), texts.clone(), t.clone(), b.clone())
    if problem is None:
        answer, problem = _answer_problem(answer, (len(images), len(texts)))
    if problem is None:
        cosine = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T
        logits = t.exp() * cosine + b
        if not _close(answer, torch.sigmoid(logits)):
            problem = _first_mistake(answer, {
                "you applied a softmax across the labels; SigLIP judges each pair on its own with torch.sigmoid":
                    logits.softmax(dim=1),
                "these look like logits, not probabilities: apply torch.sigmoid last": logits,
                "the bias is missing: add logit_bias before the sigmoid": torch.sigmoid(t.exp() * cosine),
                "the scale is e^t: multiply by logit_scale.exp(), not by logit_scale itself": torch.sigmoid(t * cosine + b),
                "scale each vector to unit length first (divide by its norm), so that the product gives cosines":
                    torch.sigmoid(t.exp() * images @ texts.T + b),
            }, "the values differ from sigmoid(e^t * cosine + b) of the arguments: use the function's arguments "
               "(not the lab's model, scale or bias) and check each step")
    return report_check(exercise, problem)


def check_softmax_scores(function: Any, exercise: int | str = 4) -> bool:
    """Exercise check: `function(logits)` must return the softmax over the labels (along each row) of an
    (images x labels) matrix; it is called on logits of the check's own."""
    logits = 4 * _check_inputs(3, 3, 5) - 2
    answer, problem = _call(function, logits.clone())
    if problem is None:
        answer, problem = _answer_problem(answer, tuple(logits.shape))
    if problem is None and not _close(answer, logits.softmax(dim=1)):
        problem = _first_mistake(answer, {
            "each image's row must sum to 1: take the softmax over the labels (dim=1), not over the images":
                logits.softmax(dim=0),
            "that is the sigmoid of each cell; the softmax divides e^logit by the sum over the row": logits.sigmoid(),
            "take the softmax of the logits themselves, not of the sigmoid probabilities":
                logits.sigmoid().softmax(dim=1),
        }, "the values differ from a softmax over each row of the argument: compare your formula with torch.softmax")
    return report_check(exercise, problem)
