"""The closing notebook (04): one photo through the three labs' models.

nbval runs it as committed (bus.jpg, no camera). These tests check what that run cannot see: that it loads the very
models of the labs, that another photo goes through it (in nbval's kernel, after its run), that its camera cell copes with no camera and uses a camera's
photo, and that the names its closing table quotes exist in the models' class lists.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import cvkit
import pytest
from PIL import Image

pytestmark = pytest.mark.standins("resnet", "yolo", "siglip")  # the stand-in models its tests load

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK = NOTEBOOKS / "04_one_photo_three_models.ipynb"
PHOTO_LINE = 'PHOTO = ASSETS / "bus.jpg"'


def _cells(path: Path, kind: str = "code") -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == kind]


def _model_line(path: Path, target: str) -> str:
    """The right-hand side of the notebook's one assignment to `target` (e.g. 'architecture, weights'), as source."""
    found = []
    for cell in _cells(path)[1:]:  # the setup cell holds IPython syntax (!, %)
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.Assign) and [ast.unparse(t).strip("()") for t in node.targets] == [target]:
                found.append(ast.unparse(node.value))
    assert len(found) == 1, f"{path.name} assigns {target} {len(found)} times"
    return found[0]


def _camera_cell() -> str:
    found = [cell for cell in _cells(NOTEBOOK) if "USE_CAMERA = False" in cell]
    assert len(found) == 1
    return found[0].replace("USE_CAMERA = False", "USE_CAMERA = True", 1)


@pytest.mark.parametrize("lab, target", [
    ("01_image_classification.ipynb", "architecture, weights"),
    ("02_object_detection.ipynb", "WEIGHTS"),
    ("03_zero_shot_classification.ipynb", "MODEL_ID"),
])
def test_notebook_names_the_same_model_as_the_lab(lab, target):
    assert _model_line(NOTEBOOK, target) == _model_line(NOTEBOOKS / lab, target)


OTHER_PHOTO = ROOT / "data" / "images" / "kitten.webp"  # not the committed photo: nbval runs the notebook with that


def test_notebook_runs_another_photo_through_all_three_models(executed):
    with Image.open(OTHER_PHOTO) as photo:
        width, height = photo.size
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert f"the photo: {width} x {height} pixels" in printed
    for source in ("ResNet18_Weights.IMAGENET1K_V1", "yolo11n.pt", "google/siglip2-so400m-patch14-384"):
        assert f"{source}: cached at" in printed  # each model was checked, loaded and run (a failing cell raises)


def test_camera_cell_without_a_camera_says_so_in_one_line_and_keeps_the_photo(monkeypatch, capsys):
    monkeypatch.setattr(cvkit.camera, "in_colab", lambda: False)
    monkeypatch.setattr(cvkit.camera, "local_camera_available", lambda camera=0: False)
    photo = ROOT / "data" / "images" / "kitten.webp"
    namespace = {"cvkit": cvkit, "PHOTO": photo}
    exec(_camera_cell(), namespace)
    lines = capsys.readouterr().out.splitlines()
    with Image.open(photo) as original:
        assert namespace["PHOTO"] == photo and namespace["image"].size == original.size
    assert len(lines) == 2 and lines[0].startswith("camera_photo: no camera")


def test_camera_cell_uses_the_cameras_photo(monkeypatch):
    shot = Image.new("RGB", (64, 48), (200, 30, 30))
    monkeypatch.setattr(cvkit, "camera_photo", lambda: shot)
    namespace = {"cvkit": cvkit, "PHOTO": ROOT / "data" / "images" / "kitten.webp"}
    exec(_camera_cell(), namespace)
    assert namespace["image"].size == (64, 48) and namespace["image"].getpixel((0, 0)) == (200, 30, 30)


def test_closing_table_quotes_only_class_names_the_models_have():
    from torchvision.models import ResNet18_Weights

    row = next(line for text in _cells(NOTEBOOK, "markdown") for line in text.splitlines()
               if line.startswith("| **which names**"))
    _, imagenet_cell, coco_cell, _ = [cell.strip() for cell in row.strip("|").split("|")]
    imagenet = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    coco = cvkit.read_labels("coco_classes.txt")
    assert f"{len(imagenet):,} classes" in imagenet_cell and f"{len(coco)} classes" in coco_cell
    quoted = re.findall(r'"([^"]+)"', imagenet_cell)
    assert quoted[0] == "person" and "person" not in imagenet  # the cell says ImageNet has no plain "person"
    assert set(quoted[1:]) <= set(imagenet) and quoted[1:]
    assert re.findall(r'"([^"]+)"', coco_cell) == ["person"] and "person" in coco


# The notebook on another photo: after nbval's run as committed, its cells from the photo's on run again in the same
# kernel with PHOTO changed, as a student who changed it runs them; then a cell reads its variables (what the cells'
# asserts guarded before they left the student's cells) and feeds its exercise check the notebook's own answers.

PROBE = '''
import json
from cvkit.closing import check_classify_regions

own_answers = {
    "the answer itself": region_probs,
    "a function returning the answer for the notebook's photo": lambda photo, corners: region_probs,
    "a function returning the whole photo's probabilities for each box": lambda photo, corners: probs.expand(
        len(corners), -1),
}
print("PROBE " + json.dumps({
    "photo": str(PHOTO),
    "photo size": list(image.size),
    "device": device.type,
    "dtype": str(dtype),
    "probabilities": list(probs.shape),
    "classes": len(categories),
    "top 5 in descending order": bool((top5_probs[:-1] >= top5_probs[1:]).all()),
    "detector task": detector.task,
    "confidences at most 1": bool((boxes.conf <= 1).all()),
    "class indices that name a class": bool(((boxes.cls >= 0) & (boxes.cls < len(detector.names))).all()),
    "detection rows": len(detections),
    "boxes": len(boxes),
    "detection names known": bool(detections["name"].isin(list(detector.names.values())).all()),
    "siglip model type": siglip.config.model_type,
    "siglip dtype": str(siglip.dtype),
    "label logits": list(label_logits.shape),
    "labels": len(MY_LABELS),
    "label probabilities in [0, 1]": bool(((label_probs >= 0) & (label_probs <= 1)).all()),
    "check of own answers": {what: check_classify_regions(answer, classifier, preprocess)
                             for what, answer in own_answers.items()},
}))
'''


ON_ANOTHER_PHOTO = f'''
import nbformat as _nbformat
_code = [c.source for c in _nbformat.read({str(NOTEBOOK)!r}, as_version=4).cells if c.cell_type == "code"]
_first = next(i for i, source in enumerate(_code) if {PHOTO_LINE!r} in source)
for _source in _code[_first:]:
    get_ipython().run_cell(_source.replace({PHOTO_LINE!r}, {f"PHOTO = {str(OTHER_PHOTO)!r}"!r})).raise_error()
''' + PROBE
pytestmark = [pytestmark, pytest.mark.notebook_run(NOTEBOOK.name, ON_ANOTHER_PHOTO)]


@pytest.fixture(scope="module")
def executed():
    """The notebook run as committed (nbval's run, see nbrun.executed), then again from its photo's cell on with
    another photo, and PROBE."""
    from nbrun import executed

    return executed(NOTEBOOK.name, ON_ANOTHER_PHOTO)


@pytest.fixture(scope="module")
def probe(executed) -> dict:
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    return json.loads(next(line for line in printed.splitlines() if line.startswith("PROBE "))[len("PROBE "):])


def test_the_variables_read_are_those_of_the_other_photo(probe):
    with Image.open(OTHER_PHOTO) as photo:
        assert probe["photo"] == str(OTHER_PHOTO) and probe["photo size"] == list(photo.size)


def test_notebook_runs_on_a_device_and_dtype_the_kit_picks(probe):
    assert probe["device"] in ("cuda", "cpu")
    assert probe["dtype"] in ("torch.float16", "torch.bfloat16", "torch.float32")


def test_classifier_gives_one_probability_per_class_and_a_top5_in_descending_order(probe):
    assert probe["probabilities"] == [probe["classes"]] and probe["classes"] == 1000
    assert probe["top 5 in descending order"]


def test_detector_is_a_detection_model_whose_boxes_name_its_classes(probe):
    assert probe["detector task"] == "detect"
    assert probe["confidences at most 1"] and probe["class indices that name a class"]


def test_detections_table_has_one_row_per_box_named_after_the_detectors_classes(probe):
    assert probe["detection rows"] == probe["boxes"] > 0
    assert probe["detection names known"]


def test_vision_language_model_is_siglip_in_the_picked_dtype(probe):
    assert "siglip" in probe["siglip model type"] and probe["siglip dtype"] == probe["dtype"]


def test_each_label_gets_one_logit_and_a_probability(probe):
    assert probe["label logits"] == [probe["labels"]] and probe["label probabilities in [0, 1]"]


def test_every_check_of_the_instructor_edition_says_correct(executed):
    checks = [cell for cell in executed.cells if "check" in cell.metadata.get("tags", [])]
    printed = ["".join(o.get("text", "") for o in cell.outputs).strip() for cell in checks]
    assert printed == ["Exercise 3: correct"]


def test_the_regions_check_says_not_yet_to_the_notebooks_own_answers(probe):
    assert probe["check of own answers"] == {
        "the answer itself": False,
        "a function returning the answer for the notebook's photo": False,
        "a function returning the whole photo's probabilities for each box": False,
    }
