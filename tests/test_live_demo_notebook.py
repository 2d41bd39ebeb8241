"""The live demo's notebook (05), executed once as committed: what its cells compute, and its exercise check.

These tests read its variables from a cell run after its own, in nbval's run of it (tests/nbrun.py), which is where
the guarantees live that used to be asserts in the student's cells.
"""

from __future__ import annotations

import json

import pytest

NOTEBOOK = "05_live_demo.ipynb"

pytestmark = pytest.mark.standins("resnet", "yolo", "siglip")  # the three tabs' models

PROBE = '''
import json
from cvkit.closing import check_template_shift

answers = {
    "the answer itself": shifts,
    "a function returning the answer for the notebook's photo and labels": lambda photo, labels: shifts,
    "a function that scores the notebook's photo instead of the one given": lambda photo, labels: template_shift(
        image, labels),
    "a function with the difference the wrong way round": lambda photo, labels: {
        label: -shift for label, shift in template_shift(photo, labels).items()},
}
print("PROBE " + json.dumps({
    "device": device.type,
    "dtype": str(dtype),
    "top 5": list(top5.values()),
    "detect tab's picture": list(annotated.shape),
    "photo": [image.height, image.width, 3],
    "scored labels": list(scores),
    "labels": labels,
    "scores": list(scores.values()),
    "check": {what: check_template_shift(answer, models["zero-shot"]) for what, answer in answers.items()},
}))
'''


pytestmark = [pytestmark, pytest.mark.notebook_run(NOTEBOOK, PROBE)]


@pytest.fixture(scope="module")
def executed():
    from nbrun import executed

    return executed(NOTEBOOK, PROBE)


@pytest.fixture(scope="module")
def probe(executed) -> dict:
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    found = json.loads(next(line for line in printed.splitlines() if line.startswith("PROBE "))[len("PROBE "):])
    found["printed"] = printed
    return found


def test_notebook_runs_on_a_device_and_dtype_the_kit_picks(probe):
    assert probe["device"] in ("cuda", "cpu")
    assert probe["dtype"] in ("torch.float16", "torch.bfloat16", "torch.float32")


def test_classify_tab_gives_five_probabilities(probe):
    assert len(probe["top 5"]) == 5 and all(0 <= p <= 1 for p in probe["top 5"])


def test_detect_tab_draws_on_a_picture_of_the_photos_size(probe):
    assert probe["detect tab's picture"] == probe["photo"]


def test_zero_shot_tab_gives_a_probability_per_label_in_their_order(probe):
    assert probe["scored labels"] == probe["labels"] and all(0 <= p <= 1 for p in probe["scores"])


def test_every_check_of_the_instructor_edition_says_correct(executed):
    checks = [cell for cell in executed.cells if "check" in cell.metadata.get("tags", [])]
    printed = ["".join(o.get("text", "") for o in cell.outputs).strip() for cell in checks]
    assert printed == ["Exercise 2: correct"]


def test_the_template_check_says_not_yet_to_the_notebooks_own_answers(probe):
    assert probe["check"] == {
        "the answer itself": False,
        "a function returning the answer for the notebook's photo and labels": False,
        "a function that scores the notebook's photo instead of the one given": False,
        "a function with the difference the wrong way round": False,
    }


def test_the_template_check_says_when_the_difference_is_the_wrong_way_round(probe):
    assert "subtract the bare label's logit from the caption's" in probe["printed"]
