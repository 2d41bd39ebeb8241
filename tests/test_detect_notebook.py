"""Lab 2's notebook, run from top to bottom with the lab's model and with the larger one swapped in: what its cells
guarantee, read from the variables the run leaves (the cells themselves keep only the asserts that teach)."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import cvkit
import numpy as np
import pytest
import torch
from nbrun import NOTEBOOKS

pytestmark = pytest.mark.standins("yolo", "fasterrcnn")  # the stand-in models its tests load

NOTEBOOK = NOTEBOOKS / "02_object_detection.ipynb"
KEPT = [  # the notebook's variables the tests read
    "WEIGHTS", "names", "coco", "samples", "images", "main", "CONF", "IOU", "results", "annotated", "detections",
    "card", "v1", "raw", "candidates", "after_nms", "ious", "thresholds", "kept", "low", "categories", "to_name",
    "compared", "frcnn_out", "yolo_out", "per_class", "overlaps", "my_conf",
]
RUNS = {
    "yolo11n.pt": {},  # the lab as committed
    "yolo11s.pt": {'"yolo11n.pt"': '"yolo11s.pt"',  # the swap its text suggests, on the bus and one more image: lean
                   "samples = cvkit.sample_images(2)": "samples = cvkit.sample_images(2)[:2]"},
}


def _kept_file(run: str) -> Path:
    return Path(os.environ["CVKIT_STANDINS_ROOT"]) / f"{NOTEBOOK.stem}-{run}.pkl"


def _keep(run: str) -> str:
    """The code that pickles the KEPT variables and the model's task, once the notebook has run, to _kept_file(run)."""
    return (f"import pickle\nwith open({str(_kept_file(run))!r}, 'wb') as handle:\n"
            f"    pickle.dump({{'task': model.task, **{{k: globals()[k] for k in {KEPT!r}}}}}, handle)")


pytestmark = [pytestmark, pytest.mark.notebook_run(NOTEBOOK.name, _keep("yolo11n.pt"))]  # nbval's run serves yolo11n


@pytest.fixture(scope="module", params=list(RUNS), ids=lambda weights: f"run with {weights}")
def run(request):
    """The executed notebook and its variables, for one model: as committed (nbval's run, see nbrun.executed), or
    with the larger one swapped in."""
    from nbrun import execute_with, executed

    edits, keep = RUNS[request.param], _keep(request.param)
    nb = execute_with(NOTEBOOK.name, edits, then=keep) if edits else executed(NOTEBOOK.name, keep)
    with open(_kept_file(request.param), "rb") as handle:
        variables = pickle.load(handle)
    assert variables["WEIGHTS"] == request.param
    printed = ["".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
               for cell in nb.cells if cell.cell_type == "code"]
    return nb, variables, printed


def test_the_model_is_a_detection_model_of_the_80_coco_classes_in_order(run):
    _, lab, printed = run
    assert lab["task"] == "detect" and [lab["names"][i] for i in range(len(lab["names"]))] == lab["coco"]
    assert f"{lab['WEIGHTS']}: task 'detect', 80 classes" in "".join(printed)


def test_the_manifest_expects_only_coco_classes(run):
    _, lab, _ = run
    assert all(name in lab["coco"] for s in lab["samples"] for name in s.expected)


def test_each_result_holds_its_image_in_bgr_at_its_size(run):
    _, lab, _ = run
    for image, r in zip(lab["images"], lab["results"], strict=True):
        assert r.orig_shape == (image.height, image.width)
        assert np.array_equal(r.orig_img[..., ::-1], np.asarray(image))


def test_each_kept_box_has_corners_in_order_a_confidence_from_conf_to_1_and_a_class(run):
    _, lab, _ = run
    for r in lab["results"]:
        boxes, n = r.boxes, len(r.boxes)
        assert boxes.xyxy.shape == (n, 4) and boxes.conf.shape == (n,) and boxes.cls.shape == (n,)
        assert bool(((boxes.conf >= lab["CONF"]) & (boxes.conf <= 1)).all())
        assert bool(((boxes.cls >= 0) & (boxes.cls < len(lab["names"]))).all())
        assert bool((boxes.xyxy[:, 2:] >= boxes.xyxy[:, :2]).all())


def test_the_drawn_images_are_rgb_uint8_at_each_images_size(run):
    _, lab, _ = run
    assert all(a.shape == (im.height, im.width, 3) and a.dtype == np.uint8
               for a, im in zip(lab["annotated"], lab["images"], strict=True))


def test_the_table_has_a_row_per_box_with_coco_names_and_confidences_from_conf(run):
    _, lab, _ = run
    detections = lab["detections"]
    assert len(detections) == sum(len(r.boxes) for r in lab["results"])
    assert detections["name"].isin(lab["coco"]).all() and detections["confidence"].between(lab["CONF"], 1).all()


def test_the_scorecard_has_a_row_per_expectation(run):
    _, lab, _ = run
    assert len(lab["card"]) == sum(len(s.expected) for s in lab["samples"])


def test_the_lab_iou_equals_torchvisions_on_every_pair(run):
    _, lab, _ = run
    ious = lab["ious"]
    assert len(ious) == 5 and (ious["iou"] - ious["torchvision box_iou"]).abs().max() < 1e-6


def test_yolov1_output_is_7_by_7_by_30(run):
    _, lab, printed = run
    assert lab["v1"] == (7, 7, 30) and "YOLOv1 output (7, 7, 30): 1470 numbers, at most 98 boxes" in "".join(printed)


def test_the_raw_class_scores_are_probabilities_and_nms_keeps_at_most_the_candidates(run):
    _, lab, printed = run
    raw = lab["raw"].float()
    assert bool(((raw[:, 4:] >= 0) & (raw[:, 4:] <= 1)).all())
    assert lab["after_nms"].shape[1] == 6 and len(lab["after_nms"]) <= lab["candidates"]
    assert "bus: 8400 positions" in "".join(printed)


def test_raising_the_threshold_never_adds_boxes(run):
    _, lab, _ = run
    assert (lab["kept"].diff().dropna() <= 0).all().all()
    assert list(lab["kept"].index) == lab["thresholds"]


def test_the_camera_cell_is_off_and_says_how_to_turn_it_on(run):
    _, _, printed = run
    assert "The camera is off: set USE_CAMERA = True in this cell and run it again.\n" in printed


def test_faster_rcnn_classes_without_background_and_na_are_yolos_80_in_order(run):
    _, lab, _ = run
    assert [lab["to_name"][label] for label in sorted(lab["to_name"])] == lab["coco"]
    assert len(lab["categories"]) == 91


def test_faster_rcnn_gives_a_box_and_a_score_above_conf_per_label(run):
    _, lab, _ = run
    assert len(lab["frcnn_out"]) == len(lab["compared"])
    for out in lab["frcnn_out"]:
        n = len(out["labels"])
        assert out["boxes"].shape == (n, 4) and out["scores"].shape == (n,)
        assert bool(((out["scores"] > lab["CONF"]) & (out["scores"] <= 1)).all())
        assert bool((out["boxes"][:, 2:] >= out["boxes"][:, :2]).all())


def test_the_per_class_table_counts_every_box_of_both_detectors(run):
    _, lab, _ = run
    assert lab["per_class"]["YOLO"].sum() == sum(len(r.boxes) for r in lab["yolo_out"])
    assert lab["per_class"]["Faster R-CNN"].sum() == sum(len(out["labels"]) for out in lab["frcnn_out"])


def _check_cells(nb) -> list:
    return [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])]


def test_every_check_says_correct_to_the_solutions(run):
    nb, _, _ = run
    printed = ["".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout") for cell in _check_cells(nb)]
    assert len(printed) == 2 and all(re.fullmatch(r"Exercise \w+: correct\n", p) for p in printed), printed


@pytest.mark.parametrize("run", ["yolo11s.pt"], indirect=True)
def test_a_check_cell_shows_no_true_under_jupyter(run):
    """Read from nbclient's run, which keeps history as Jupyter does (nbval's does not, and there a cell's closing
    `;` does not hide its value)."""
    nb, _, _ = run
    assert not [o for cell in _check_cells(nb) for o in cell.outputs if o.output_type == "execute_result"]


def test_the_checks_say_not_yet_to_the_labs_own_results(run, capsys):
    from torchvision.ops import box_iou

    _, lab, _ = run
    for answer in (lab["overlaps"], lab["ious"], box_iou):
        assert cvkit.check_box_iou(answer) is False
    for answer in (lab["my_conf"], lab["CONF"], lab["thresholds"], lambda result, name, n: lab["my_conf"]):
        assert cvkit.check_count_threshold(answer) is False
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(re.match(r"Exercise [12]: not yet - ", line) for line in lines), lines


def test_the_solutions_threshold_keeps_exactly_the_expected_people_on_the_bus(run):
    _, lab, _ = run
    bus = lab["low"][lab["main"]]
    wanted = lab["samples"][lab["main"]].expected["person"]
    assert lab["my_conf"] is not None  # the stand-ins' scores leave a threshold to find, so the cell's plot runs
    assert int((bus.boxes.conf[bus.boxes.cls == lab["coco"].index("person")] > lab["my_conf"]).sum()) == wanted


def test_overlaps_is_the_iou_of_yolos_boxes_with_faster_rcnns_on_the_bus(run):
    from torchvision.ops import box_iou

    _, lab, _ = run
    want = box_iou(lab["yolo_out"][lab["main"]].boxes.xyxy.float().cpu(), lab["frcnn_out"][lab["main"]]["boxes"].float())
    assert torch.allclose(lab["overlaps"], want, atol=1e-5)
