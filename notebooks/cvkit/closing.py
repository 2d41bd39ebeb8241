"""The exercise checks of the closing notebooks: 04 (one photo, three models) and 05 (the live demo).

Each check calls the student's function on a photo and inputs of its own choosing, which the notebook never computed,
and compares the result with the same pipeline run here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .checks import report_check
from .data import DATA_DIR
from .images import load_image

__all__ = ["check_classify_regions", "check_template_shift"]

REGIONS_PHOTO = "cocker_spaniels.jpg"  # notebook 04, exercise 3: a photo the notebook does not use
SHIFT_PHOTO, SHIFT_LABELS = "igloo.webp", ["igloo", "snow", "tent", "polar bear"]  # notebook 05, exercise 2


def _call(function: Any, name: str, *args: Any) -> tuple[Any, str | None]:
    """(function(*args), None), or (None, what went wrong) in one line."""
    if not callable(function):
        return None, f"{name} should be a function, not a {type(function).__name__}: define it with def {name}(...)"
    try:
        return function(*args), None
    except Exception as err:  # the student's code: any error becomes the check's one line
        message = str(err).splitlines()[0] if str(err) else ""
        return None, f"{name} raised {type(err).__name__}: {message}"


def check_classify_regions(classify_regions: Callable[[Any, list], Any], classifier: Any, preprocess: Any) -> bool:
    """Notebook 04, exercise 3: classify_regions(photo, corners) -> the classifier's softmax probabilities of each crop."""
    import torch

    photo = load_image(DATA_DIR / "images" / REGIONS_PHOTO)
    w, h = photo.size
    corners = [(0, 0, w // 2, h // 2), (w // 4, h // 3, w, h), (w // 3, 0, 2 * w // 3, h // 2)]
    parameter = next(classifier.parameters())
    batch = torch.stack([preprocess(photo.crop(box)) for box in corners]).to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        expected = classifier(batch).float().softmax(dim=1).cpu()

    answer, problem = _call(classify_regions, "classify_regions", photo, corners)
    if problem is None:
        try:
            mine = torch.as_tensor(answer.detach().cpu() if torch.is_tensor(answer) else answer).float()
        except (TypeError, ValueError, RuntimeError):
            mine = None
        if mine is None or mine.shape != expected.shape:
            shape = "no tensor" if mine is None else f"shape {tuple(mine.shape)}"
            problem = (f"for {len(corners)} boxes expected a tensor of shape {tuple(expected.shape)} (one row of "
                       f"probabilities per box), got {shape}")
        elif not torch.allclose(mine.sum(dim=1), torch.ones(len(corners)), atol=1e-3):
            problem = "a row does not sum to 1: apply softmax to the logits"
        elif len(corners) > 1 and torch.allclose(mine[0], mine[1:], rtol=1e-3, atol=1e-7):
            problem = "every box gets the same probabilities: crop the photo to each box before the transforms"
        else:
            wrong = [i for i in range(len(corners)) if not torch.allclose(mine[i], expected[i], rtol=2e-2, atol=1e-6)]
            if wrong:
                problem = (f"the probabilities of box {corners[wrong[0]]} are not those of its crop: crop with "
                           "photo.crop((x1, y1, x2, y2)), then the weights' transforms, the classifier and softmax")
    return report_check(3, problem)


def check_template_shift(template_shift: Callable[[Any, list], Any], zero_shot_model: tuple[Any, Any]) -> bool:
    """Notebook 05, exercise 2: template_shift(photo, labels) -> {label: its logit with 'a photo of a {}.' minus
    its logit with the bare label '{}'}."""
    from .demo import zero_shot

    photo = load_image(DATA_DIR / "images" / SHIFT_PHOTO)
    logits = {template: zero_shot(photo, SHIFT_LABELS, zero_shot_model, template=template)[1].set_index("label")["logit"]
              for template in ("{}", "a photo of a {}.")}
    expected = (logits["a photo of a {}."] - logits["{}"]).to_dict()

    answer, problem = _call(template_shift, "template_shift", photo, SHIFT_LABELS)
    if problem is None:
        try:
            mine = {str(label): float(shift) for label, shift in dict(answer).items()}
        except (TypeError, ValueError):
            mine = None
        if mine is None or set(mine) != set(SHIFT_LABELS):
            problem = f"expected a dict with one shift per label of {SHIFT_LABELS}, got {str(answer)[:80]}"
        else:
            wrong = [label for label in SHIFT_LABELS if abs(mine[label] - expected[label]) > 0.03]
            if wrong:
                flipped = all(abs(mine[label] + expected[label]) <= 0.03 for label in SHIFT_LABELS)
                problem = (f"the shift of {wrong[0]!r} is {mine[wrong[0]]:+.2f}, expected {expected[wrong[0]]:+.2f}"
                           + (": subtract the bare label's logit from the caption's, not the other way round"
                              if flipped else ": the logit with 'a photo of a {}.' minus the logit with '{}'"))
    return report_check(2, problem)
