"""Lab 2: its images and helpers (cvkit), the YOLO11 and Faster R-CNN stand-ins (tests/standins/yolo.py and
fasterrcnn.py), and its notebook's Faster R-CNN cells, real-time loop and model swap."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cvkit
import numpy as np
import pytest
import torch
from nbrun import execute_with
from standins import MARKER
from standins import fasterrcnn as frcnn_standin
from standins import yolo as yolo_standin

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_object_detection.ipynb"
WEIGHTS = list(yolo_standin.ARCHITECTURES)  # yolo11n.pt (the lab's), yolo11s.pt (its exercise's)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", autouse=True)
def pil_open_left_as_found():
    """Importing ultralytics replaces PIL.Image.open for the whole process (the replacement tries to pip-install
    pi-heif whenever Pillow cannot identify a file); put back what was there, so later test modules see plain Pillow."""
    from PIL import Image

    found = Image.open
    yield
    Image.open = found


@pytest.fixture(scope="module")
def standin():
    """The stand-ins this test session installed (conftest.py calls yolo.install): (environment, weights folder)."""
    env = {key: os.environ[key] for key in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE")}
    settings = json.loads((Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics" / "settings.json").read_text())
    return env, Path(settings["weights_dir"])


@pytest.fixture(scope="module")
def models(standin):
    from ultralytics import YOLO

    return {name: YOLO(str(standin[1] / name)) for name in WEIGHTS}


@pytest.fixture(scope="module")
def lab_images():
    return {s.name: cvkit.load_image(s.path) for s in cvkit.sample_images(2)}


def notebook_cell(marker: str) -> str:
    """The source of the notebook's one code cell that contains `marker`."""
    cells = [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    found = ["".join(c["source"]) for c in cells if marker in "".join(c["source"])]
    assert len(found) == 1, f"{len(found)} code cells contain {marker!r}"
    return found[0]


# ------------------------------------------------------------------ images


def test_lab_images_start_with_ultralytics_bus_read_from_the_installed_package():
    from ultralytics.utils import ASSETS

    bus, *others = cvkit.sample_images(2)
    assert bus.name == "bus" and bus.path == ASSETS / "bus.jpg"
    assert bus.expected == {"person": 4, "bus": 1}
    assert others and all(s.path.parent == cvkit.DATA_DIR / "images" for s in others)
    assert not (cvkit.DATA_DIR / "images" / "bus.jpg").exists()  # not redistributed


def test_bus_in_the_installed_package_is_the_file_the_manifest_names():
    import csv

    with (cvkit.DATA_DIR / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        row = next(row for row in csv.DictReader(handle) if row["file"] == "ultralytics:assets/bus.jpg")
    bus = next(s for s in cvkit.sample_images(2) if s.name == "bus")
    assert hashlib.sha256(bus.path.read_bytes()).hexdigest() == row["sha256"]


def test_a_manifest_image_from_a_package_that_is_not_installed_is_one_clear_error(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,lab1,lab2,lab3,licence,author,origin,sha256\n"
                        "no_such_package_xyz:assets/x.jpg,,person:1,,CC0,A,B,0\n", encoding="utf-8")
    with pytest.raises(cvkit.KitError, match=r"^no_such_package_xyz:assets/x.jpg comes with the no_such_package_xyz "
                                             r"package, which is not installed"):
        cvkit.sample_images(2, manifest)


# ------------------------------------------------------------------ show_score_maps


@pytest.fixture
def shown(monkeypatch):
    """The figures that plt.show() would display, kept open for inspection."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    yield figures
    plt.close("all")


def test_show_score_maps_draws_the_input_then_each_grid_on_one_zero_to_one_scale(shown):
    image = np.zeros((64, 64, 3), np.uint8)
    maps = [torch.rand(8, 8), torch.rand(4, 4), np.random.rand(2, 2)]
    cvkit.show_score_maps(image, maps, ["fine", "middle", "coarse"])
    (figure,) = shown
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["network input", "fine", "middle", "coarse"]
    assert [ax.images[0].get_array().shape[:2] for ax in panels] == [(64, 64), (8, 8), (4, 4), (2, 2)]
    assert all(ax.images[0].get_clim() == (0, 1) for ax in panels[1:])


def test_show_score_maps_refuses_maps_and_titles_of_different_lengths(shown):
    with pytest.raises(cvkit.KitError, match="one title per map"):
        cvkit.show_score_maps(np.zeros((8, 8, 3)), [np.zeros((2, 2))], ["a", "b"])
    assert shown == []


def test_show_score_maps_refuses_a_map_that_is_not_two_dimensional(shown):
    with pytest.raises(cvkit.KitError, match="must be 2-D"):
        cvkit.show_score_maps(np.zeros((8, 8, 3)), [np.zeros(16)], ["flat"])
    assert shown == []


# ------------------------------------------------------------------ draw_boxes


def test_draw_boxes_draws_each_box_in_ultralytics_colour_of_its_class():
    from ultralytics.utils.plotting import colors

    image = np.full((120, 160, 3), 255, np.uint8)
    drawn = cvkit.draw_boxes(image, torch.tensor([[10.0, 20.0, 60.0, 90.0], [80, 30, 150, 110]]), ["a", "b"], [0, 5])
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert tuple(drawn[60, 10]) == colors(0) and tuple(drawn[70, 150]) == colors(5)  # left edge of box 1, right of 2
    assert (drawn[60, 35] == 255).all()  # inside a box: the photo, not filled


def test_draw_boxes_takes_a_pil_image_and_boxes_without_labels():
    from PIL import Image

    drawn = cvkit.draw_boxes(Image.new("RGB", (64, 48), "white"), [[5, 5, 40, 40]])
    assert drawn.shape == (48, 64, 3) and tuple(drawn[20, 5]) == (255, 0, 0)


def test_draw_boxes_without_boxes_returns_the_image_unchanged():
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert np.array_equal(cvkit.draw_boxes(image, torch.zeros(0, 4), [], []), image)


def test_draw_boxes_refuses_labels_that_do_not_match_the_boxes():
    with pytest.raises(cvkit.KitError, match="one label"):
        cvkit.draw_boxes(np.zeros((20, 20, 3), np.uint8), [[1, 1, 5, 5], [2, 2, 9, 9]], ["only one"])


def test_draw_boxes_refuses_an_image_that_is_not_rgb():
    with pytest.raises(cvkit.KitError, match="RGB image"):
        cvkit.draw_boxes(np.zeros((20, 20), np.uint8), [[1, 1, 5, 5]])


# ------------------------------------------------------------------ timed_runs


def test_timed_runs_warms_up_on_the_first_input_then_returns_each_output_and_time_in_order():
    calls = []

    def run(x):
        calls.append(x)
        return x * 10

    outputs, seconds = cvkit.timed_runs(run, [1, 2, 3], "cpu", warmup=2)
    assert calls == [1, 1, 1, 2, 3] and outputs == [10, 20, 30]
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)


def test_timed_runs_on_cuda_synchronises_before_and_after_each_timed_call(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append("sync"))
    cvkit.timed_runs(lambda x: events.append(f"run {x}"), ["a", "b"], torch.device("cuda"))
    assert events == ["run a", "sync", "run a", "sync", "sync", "run b", "sync"]


def test_timed_runs_refuses_no_inputs():
    with pytest.raises(cvkit.KitError, match="no inputs"):
        cvkit.timed_runs(lambda x: x, [], "cpu")


# ------------------------------------------------------------------ the exercises' checks


def printed_line(capsys) -> str:
    """The one line a check printed."""
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return out.strip()


IOU_A = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
IOU_B = torch.tensor([[2.0, 0.0, 6.0, 4.0], [2.0, 6.0, 6.0, 8.0], [0.0, 0.0, 4.0, 4.0]])
IOU_RIGHT = [[1 / 3, 0.0, 1.0], [0.0, 0.0, 0.25]]  # worked out by hand


def test_check_iou_matrix_says_correct_for_the_right_matrix_as_tensor_or_array(capsys):
    cvkit.check_iou_matrix(torch.tensor(IOU_RIGHT), IOU_A, IOU_B)
    assert printed_line(capsys) == "Exercise 1: correct"
    cvkit.check_iou_matrix(np.array(IOU_RIGHT), IOU_A.numpy(), IOU_B.numpy(), exercise=7)
    assert printed_line(capsys) == "Exercise 7: correct"


def test_check_iou_matrix_says_not_yet_for_none(capsys):
    cvkit.check_iou_matrix(None, IOU_A, IOU_B)
    assert printed_line(capsys).startswith("Exercise 1: not yet - my_ious is still None")


def test_check_iou_matrix_says_not_yet_for_something_that_is_not_numbers(capsys):
    cvkit.check_iou_matrix("a matrix", IOU_A, IOU_B)
    assert "should be a tensor" in printed_line(capsys)


def test_check_iou_matrix_names_the_expected_shape_for_a_transposed_matrix(capsys):
    cvkit.check_iou_matrix(torch.tensor(IOU_RIGHT).T, IOU_A, IOU_B)
    assert "has shape (3, 2), it should be (2, 3)" in printed_line(capsys)


def test_check_iou_matrix_spots_a_missing_clamp(capsys):
    unclamped = torch.tensor(IOU_RIGHT)
    unclamped[0, 1] = -4 / 28  # overlap width 2, height -2 unclamped: "intersection" -4, "union" 16 + 8 + 4
    cvkit.check_iou_matrix(unclamped, IOU_A, IOU_B)
    assert "negative" in printed_line(capsys)


def test_check_iou_matrix_spots_a_union_that_counts_the_intersection_twice(capsys):
    area_a, area_b = torch.tensor([16.0, 4.0]), torch.tensor([16.0, 8.0, 16.0])
    intersection = torch.tensor([[8.0, 0.0, 16.0], [0.0, 0.0, 4.0]])
    cvkit.check_iou_matrix(intersection / (area_a[:, None] + area_b[None, :]), IOU_A, IOU_B)
    assert "sum of the two areas" in printed_line(capsys)


def test_check_iou_matrix_says_how_many_are_off_without_showing_the_values(capsys):
    wrong = torch.tensor(IOU_RIGHT)
    wrong[0, 0] = 0.5
    cvkit.check_iou_matrix(wrong, IOU_A, IOU_B)
    line = printed_line(capsys)
    assert line.startswith("Exercise 1: not yet - 1 of 6 IoUs are off") and "0.33" not in line and "0.25" not in line


def people_result(person_scores, other_scores=(0.9,), names=None):
    """What the check reads from an ultralytics Results: names, boxes.conf and boxes.cls."""
    names = names or {0: "person", 5: "bus"}
    conf = torch.tensor([*person_scores, *other_scores])
    cls = torch.tensor([0.0] * len(person_scores) + [5.0] * len(other_scores))
    return SimpleNamespace(names=names, boxes=SimpleNamespace(conf=conf, cls=cls))


PEOPLE = people_result([0.91, 0.85, 0.6, 0.42, 0.2, 0.07])  # exactly 4 above any threshold in [0.2, 0.42)


def test_check_people_threshold_says_correct_when_the_count_is_right(capsys):
    for threshold in (0.2, 0.3, 0.41):  # 0.2: only scores strictly above it count, as in ultralytics
        cvkit.check_people_threshold(threshold, PEOPLE, 4, lowest=0.05)
        assert printed_line(capsys) == "Exercise 2: correct"


def test_check_people_threshold_says_which_way_to_move_a_wrong_threshold(capsys):
    cvkit.check_people_threshold(0.1, PEOPLE, 4, lowest=0.05)
    assert printed_line(capsys) == "Exercise 2: not yet - at conf=0.1 the model keeps 5 people, not 4: raise the threshold"
    cvkit.check_people_threshold(0.42, PEOPLE, 4, lowest=0.05)
    assert printed_line(capsys).endswith("keeps 3 people, not 4: lower the threshold")


def test_check_people_threshold_says_not_yet_for_none_and_for_what_is_not_a_number(capsys):
    cvkit.check_people_threshold(None, PEOPLE, 4, lowest=0.05)
    assert printed_line(capsys).startswith("Exercise 2: not yet - my_conf is still None")
    for bad in ("0.3", True, float("nan")):
        cvkit.check_people_threshold(bad, PEOPLE, 4, lowest=0.05)
        assert "should be a number between 0 and 1" in printed_line(capsys)


def test_check_people_threshold_refuses_a_threshold_below_the_lowest_run(capsys):
    cvkit.check_people_threshold(0.01, PEOPLE, 4, lowest=0.05)
    assert "choose a threshold from 0.05" in printed_line(capsys)


@pytest.mark.parametrize("scores", [[0.9, 0.8, 0.7], [0.9, 0.8, 0.6, 0.5, 0.5]], ids=["too few people", "a tie"])
def test_check_people_threshold_says_when_no_threshold_works_for_this_model(capsys, scores):
    cvkit.check_people_threshold(0.3, people_result(scores), 4, lowest=0.05)
    assert "no threshold of at least 0.05 gives exactly 4 people" in printed_line(capsys)


def test_check_people_threshold_says_when_the_model_has_no_person_class(capsys):
    cvkit.check_people_threshold(0.3, people_result([], names={0: "cat"}), 4, lowest=0.05)
    assert "no class 'person'" in printed_line(capsys)


def test_check_people_threshold_reads_a_real_results_object(models, lab_images, capsys):
    low = models["yolo11n.pt"].predict(lab_images["bus"], conf=0.05, iou=0.7, verbose=False)[0]
    people = sorted(low.boxes.conf[low.boxes.cls == 0].tolist(), reverse=True)
    assert len(people) > 4 and people[3] > people[4]  # the stand-in leaves a threshold to find
    cvkit.check_people_threshold((people[3] + people[4]) / 2, low, 4, lowest=0.05)
    assert printed_line(capsys) == "Exercise 2: correct"
    cvkit.check_people_threshold(people[3], low, 4, lowest=0.05)  # boxes count only strictly above the threshold
    assert printed_line(capsys).endswith("keeps 3 people, not 4: lower the threshold")


# ------------------------------------------------------------------ stand-ins


def test_standins_are_written_where_settings_point_with_marker_and_fonts(standin):
    env, weights_dir = standin
    assert env["YOLO_OFFLINE"] == "1" and Path(env["YOLO_CONFIG_DIR"]).name == "ultralytics"
    user_dir = Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics"
    settings = json.loads((user_dir / "settings.json").read_text())
    assert all((weights_dir / name).is_file() for name in WEIGHTS) and (weights_dir / "STANDIN").is_file()
    assert settings["sync"] is False and Path(settings["runs_dir"]).parent == weights_dir.parent
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):
        assert (user_dir / font).read_bytes()[:4] == b"\x00\x01\x00\x00"  # a TrueType file


@pytest.mark.parametrize("name", WEIGHTS)
def test_standin_has_its_architecture_and_the_80_coco_names(models, name):
    model = models[name]
    assert model.task == "detect" and Path(model.model.yaml["yaml_file"]).name == yolo_standin.ARCHITECTURES[name]
    assert [model.names[i] for i in range(len(model.names))] == cvkit.read_labels("coco_classes.txt")


@pytest.mark.parametrize("name", WEIGHTS)
def test_standin_finds_a_few_classes_in_tens_of_boxes_on_each_lab_image(models, lab_images, name):
    confidences = []
    for image_name, image in lab_images.items():
        result = models[name].predict(image, conf=0.25, iou=0.7, verbose=False)[0]
        classes = {result.names[int(c)] for c in result.boxes.cls}
        assert 5 <= len(result.boxes) <= 60, (image_name, len(result.boxes))
        assert 2 <= len(classes) and classes <= set(yolo_standin.ACTIVE_CLASSES), (image_name, classes)
        confidences += result.boxes.conf.tolist()
    low, high = np.quantile(confidences, [0.1, 0.9])
    assert min(confidences) >= 0.25 and low < 0.5 and high > 0.85  # spread over (0.25, 1), not piled up


def _raw_output(model, image):
    from ultralytics.data.augment import LetterBox

    boxed = LetterBox((640, 640), auto=False)(image=np.array(image))
    with torch.inference_mode():
        return model.model(torch.from_numpy(boxed).permute(2, 0, 1)[None].float() / 255)[0]


def test_standin_boxes_come_from_all_three_grids_in_sizes_from_small_to_large(models, lab_images):
    from ultralytics.utils.nms import non_max_suppression

    raw = _raw_output(models["yolo11n.pt"], lab_images["bus"])
    kept, index = non_max_suppression(raw, conf_thres=0.25, iou_thres=0.7, return_idxs=True)
    grid = np.digitize(index[0].flatten().numpy(), [80 * 80, 80 * 80 + 40 * 40])  # 0, 1, 2: strides 8, 16, 32
    assert set(grid.tolist()) == {0, 1, 2}
    sides = (kept[0][:, 2:4] - kept[0][:, :2]).flatten()
    assert float(sides.min()) < 64 and float(sides.max()) > 256


def test_standin_finds_nothing_on_a_flat_grey_frame(models):
    grey = np.full((480, 640, 3), 114, np.uint8)
    assert len(models["yolo11n.pt"].predict(grey, conf=0.25, verbose=False)[0].boxes) == 0


@pytest.mark.parametrize("name", WEIGHTS)
def test_standin_loads_by_name_offline_without_network_or_a_copy_in_cwd(standin, tmp_path, name):
    env, weights_dir = standin
    code = f"from ultralytics import YOLO; m = YOLO({name!r}); print(m.ckpt_path)"
    log = tmp_path / "net.log"
    run_env = {**os.environ, **env, "CVKIT_NET_LOG": str(log), "PYTHONPATH": str(ROOT / "tests" / "nonet")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]) == weights_dir / name
    assert not (tmp_path / name).exists()
    assert not log.exists() or not log.read_text().strip(), log.read_text()


# ------------------------------------------------------------------ the Faster R-CNN stand-in


@pytest.fixture(scope="module")
def frcnn():
    """Lab 2's Faster R-CNN, loaded as the notebook loads it (torchvision finds the stand-in in TORCH_HOME)."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    return fasterrcnn_mobilenet_v3_large_fpn(weights=frcnn_standin.weights(), box_score_thresh=0.25,
                                             box_nms_thresh=0.7).eval()


@pytest.fixture(scope="module")
def frcnn_outputs(frcnn, lab_images):
    """Its detections on each lab image, with the labels as names."""
    categories = frcnn_standin.weights().meta["categories"]
    to_tensor = frcnn_standin.weights().transforms()
    with torch.inference_mode():
        outputs = {name: frcnn([to_tensor(image)])[0] for name, image in lab_images.items()}
    return {name: {**out, "names": [categories[i] for i in out["labels"].tolist()]} for name, out in outputs.items()}


def test_frcnn_standin_is_the_file_torchvision_downloads_to_beside_a_marker():
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    assert frcnn_standin.file_name() == "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth"
    assert (checkpoints / frcnn_standin.file_name()).is_file()
    assert frcnn_standin.file_name() in (checkpoints / MARKER).read_text()
    assert "resnet18" in (checkpoints / MARKER).read_text()  # the ResNet stand-ins' line is kept


def test_frcnn_loads_with_weights_given_from_its_one_file_without_a_backbone_download(frcnn):
    from torchvision.ops.misc import FrozenBatchNorm2d

    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    assert not list(checkpoints.glob("mobilenet_v3*"))  # weights= makes torchvision skip weights_backbone
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frcnn.modules())  # built as the trained model is
    assert frcnn.roi_heads.box_predictor.cls_score.out_features == 91


def test_frcnn_standin_finds_some_boxes_of_its_active_classes_on_each_lab_image(frcnn_outputs):
    for name, out in frcnn_outputs.items():
        assert 2 <= len(out["labels"]) <= 40, (name, len(out["labels"]))
        assert set(out["names"]) <= set(frcnn_standin.ACTIVE_CLASSES), (name, out["names"])
    scores = torch.cat([out["scores"] for out in frcnn_outputs.values()])
    assert float(scores.min()) > 0.25 and float(scores.max()) > 0.8 and float(scores.median()) < 0.8


def test_frcnn_standin_boxes_range_from_small_to_large(frcnn_outputs):
    boxes = torch.cat([out["boxes"] for out in frcnn_outputs.values()])
    sides = (boxes[:, 2:] - boxes[:, :2]).flatten()
    assert float(sides.min()) < 64 and float(sides.max()) > 256


def test_frcnn_standin_proposes_a_few_hundred_regions_per_photo_and_none_on_a_grey_frame(frcnn, lab_images):
    counts = []
    hook = frcnn.rpn.register_forward_hook(lambda module, args, out: counts.append(len(out[0][0])))
    to_tensor = frcnn_standin.weights().transforms()
    with torch.inference_mode():
        frcnn([to_tensor(lab_images["bus"])])
        out = frcnn([torch.full((3, 480, 640), 114 / 255)])[0]
    hook.remove()
    assert 100 <= counts[0] < 1000 and counts[1] < 100 and len(out["labels"]) == 0


def test_frcnn_categories_without_background_and_na_are_ultralytics_coco_names_in_order(models):
    categories = frcnn_standin.weights().meta["categories"]
    assert categories[0] == "__background__" and categories.count("N/A") == 10 and len(categories) == 91
    names = models["yolo11n.pt"].names
    assert [c for c in categories if c not in ("__background__", "N/A")] == [names[i] for i in range(len(names))]


def test_run_frcnn_cell_drops_na_labels_and_returns_cpu_tensors():
    from PIL import Image

    weights = frcnn_standin.weights()
    categories = weights.meta["categories"]
    coco = cvkit.read_labels("coco_classes.txt")
    assert categories[12] == "N/A" and categories[1] == "person"
    fake = {"boxes": torch.tensor([[0.0, 0, 5, 5], [1, 1, 6, 6], [2, 2, 7, 7]]), "labels": torch.tensor([1, 12, 3]),
            "scores": torch.tensor([0.9, 0.8, 0.7])}
    seen = []
    namespace = {"torch": torch, "FRCNN_WEIGHTS": weights, "device": "cpu", "model": None, "CONF": 0.25, "IOU": 0.7,
                 "quantize": None, "to_name": {i: n for i, n in enumerate(categories) if n in coco},
                 "frcnn": lambda batch: seen.append(batch) or [fake]}
    exec(notebook_cell("def run_frcnn"), namespace)
    out = namespace["run_frcnn"](Image.new("RGB", (8, 6)))
    assert out["labels"].tolist() == [1, 3] and out["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert out["boxes"].tolist() == [[0, 0, 5, 5], [2, 2, 7, 7]]
    assert seen[0][0].shape == (3, 6, 8) and seen[0][0].dtype == torch.float32  # a list of float tensors in [0, 1]


# ------------------------------------------------------------------ what the notebook states


def test_counting_boxes_above_a_threshold_of_a_low_threshold_run_equals_running_at_that_threshold(models, lab_images):
    model, image = models["yolo11n.pt"], lab_images["bus"]
    low = model.predict(image, conf=0.05, iou=0.7, verbose=False)[0].boxes
    for threshold in (0.25, 0.5, 0.8):
        run = model.predict(image, conf=threshold, iou=0.7, verbose=False)[0].boxes
        above = low.conf > threshold
        assert torch.equal(run.xyxy, low.xyxy[above]) and torch.equal(run.cls, low.cls[above])


def test_notebook_installs_the_ultralytics_version_of_requirements():
    pin = re.search(r"^ultralytics==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    assert re.search(rf"\bultralytics=={re.escape(pin)}(\s|$)", notebook_cell("import cvkit"))


# ------------------------------------------------------------------ the real-time cell


LIVE_CELL = "cv2.VideoCapture(0)"


class FakeCamera:
    """Stands in for cv2.VideoCapture(0): the same textured BGR frame on every read, and whether it was released."""

    FRAME = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)

    def __init__(self, index):
        self.index, self.released, self.frames = index, False, 0

    def isOpened(self):
        return not self.released

    def read(self):
        self.frames += 1
        return True, self.FRAME.copy()

    def release(self):
        self.released = True


@pytest.fixture
def desktop(monkeypatch, models):
    """A machine with a camera and a display, OpenCV's window calls recorded, and `q` pressed on the third frame;
    returns (what happened, the namespace the notebook's cell runs in)."""
    import cv2

    seen = SimpleNamespace(cameras=[], shown=[], destroyed=0)

    def capture(index):
        seen.cameras.append(FakeCamera(index))
        return seen.cameras[-1]

    monkeypatch.setattr(cvkit, "local_camera_available", lambda camera=0: True)
    monkeypatch.setattr(cvkit, "has_display", lambda: True)
    monkeypatch.setattr(cv2, "VideoCapture", capture)
    monkeypatch.setattr(cv2, "imshow", lambda window, image: seen.shown.append((window, image)))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: ord("q") if len(seen.shown) >= 3 else -1)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: setattr(seen, "destroyed", seen.destroyed + 1))
    namespace = {"cvkit": cvkit, "model": models["yolo11n.pt"], "CONF": 0.25, "IOU": 0.7, "device": "cpu",
                 "quantize": None}
    return seen, namespace


def test_live_cell_shows_annotated_frames_until_q_then_releases_camera_and_window(desktop):
    seen, namespace = desktop
    exec(notebook_cell(LIVE_CELL), namespace)
    (camera,) = seen.cameras
    assert camera.index == 0 and camera.frames == 3 and len(seen.shown) == 3
    assert all(image.shape == (240, 320, 3) and image.dtype == np.uint8 for _, image in seen.shown)
    assert camera.released and seen.destroyed == 1


def test_live_cell_draws_the_models_boxes_on_each_frame(desktop):
    seen, namespace = desktop
    calls = []
    model = namespace["model"]

    class Recording:
        def predict(self, frame, **kwargs):
            calls.append(kwargs)
            return model.predict(frame, **kwargs)

    namespace["model"] = Recording()
    exec(notebook_cell(LIVE_CELL), namespace)
    assert len(calls) == 3 and all(kwargs["stream"] is True for kwargs in calls)
    result = next(model.predict(FakeCamera.FRAME, stream=True, conf=0.25, iou=0.7, verbose=False))
    assert len(result.boxes) > 0 and np.array_equal(seen.shown[0][1], result.plot())


def test_live_cell_releases_the_camera_and_window_when_the_model_fails(desktop):
    seen, namespace = desktop

    class Broken:
        def predict(self, *args, **kwargs):
            raise RuntimeError("model failed")

    namespace["model"] = Broken()
    with pytest.raises(RuntimeError, match="model failed"):
        exec(notebook_cell(LIVE_CELL), namespace)
    assert seen.cameras[0].released and seen.destroyed == 1


def test_live_cell_without_a_display_opens_neither_camera_nor_window(desktop, monkeypatch, capsys):
    seen, namespace = desktop
    monkeypatch.setattr(cvkit, "has_display", lambda: False)
    exec(notebook_cell(LIVE_CELL), namespace)
    assert seen.cameras == [] and seen.shown == []
    assert "live loop is skipped" in capsys.readouterr().out


# ------------------------------------------------------------------ the model swap


def test_notebook_runs_with_the_larger_model_swapped_in_and_every_check_says_correct():
    nb = execute_with(NOTEBOOK.name, {
        '"yolo11n.pt"': '"yolo11s.pt"',
        "samples = cvkit.sample_images(2)": "samples = cvkit.sample_images(2)[:2]",  # bus and one more: lean
    })

    def printed(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")

    code = [c for c in nb.cells if c.cell_type == "code"]
    everything = "".join(printed(c) for c in code)
    assert "yolo11s.pt: task 'detect', 80 classes" in everything
    assert "bus: 8400 positions" in everything
    checks = [c for c in code if "check" in c.metadata.get("tags", [])]
    assert len(checks) == 2
    assert all(re.fullmatch(r"Exercise \w+: correct\n", printed(c)) for c in checks), [printed(c) for c in checks]
