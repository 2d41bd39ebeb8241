"""Lab 2: its images and helpers (cvkit), its exercises' checks, the YOLO11 and Faster R-CNN stand-ins
(tests/standins/yolo.py and fasterrcnn.py), and its notebook's Faster R-CNN cells and camera cell. The notebook's runs
are in test_detect_notebook.py."""

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
from standins import MARKER
from standins import fasterrcnn as frcnn_standin
from standins import yolo as yolo_standin

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_object_detection.ipynb"
WEIGHTS = list(yolo_standin.ARCHITECTURES)  # yolo11n.pt (the lab's), yolo11s.pt (its exercise's)
pytestmark = [
    pytest.mark.usefixtures("pil_open_left_as_found"),  # ultralytics replaces PIL.Image.open
    pytest.mark.standins("yolo", "fasterrcnn", "resnet"),
]


# ------------------------------------------------------------------ fixtures


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


def test_draw_boxes_refuses_classes_that_do_not_match_the_boxes_in_one_line():
    with pytest.raises(cvkit.KitError, match=r"^draw_boxes needs one class per box, got 2 boxes and 1 classes$"):
        cvkit.draw_boxes(np.zeros((20, 20, 3), np.uint8), [[1, 1, 5, 5], [2, 2, 9, 9]], classes=[0])


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


def exercise_function(name: str):
    """The notebook's solution of an exercise: the function `name` defined at the top of its exercise cell."""
    namespace = {"torch": torch}
    exec(notebook_cell(f"def {name}(").split("\n\n\n")[0], namespace)
    return namespace[name]


def lab_iou_cell() -> dict:
    """The variables of the notebook's IoU cell (section 8): its function `iou` and its table `ious`."""
    import pandas as pd

    namespace = {"torch": torch, "pd": pd}
    exec(notebook_cell("def iou("), namespace)
    return namespace


def test_check_box_iou_says_correct_to_the_notebooks_solution_and_returns_true(capsys):
    assert cvkit.check_box_iou(exercise_function("my_box_iou")) is True
    assert printed_line(capsys) == "Exercise 1: correct"


def test_check_box_iou_says_not_yet_to_the_labs_own_iou_function_and_table(capsys):
    lab = lab_iou_cell()
    assert cvkit.check_box_iou(lab["iou"]) is False  # one pair at a time: it cannot take sets of boxes
    assert printed_line(capsys).startswith("Exercise 1: not yet - my_box_iou raised")
    assert cvkit.check_box_iou(lab["ious"]) is False
    assert "my_box_iou should be a function, not DataFrame" in printed_line(capsys)


@pytest.mark.parametrize("library", ["torchvision", "ultralytics"])
def test_check_box_iou_refuses_a_function_that_calls_a_librarys_iou(capsys, library):
    from torchvision.ops import box_iou
    from ultralytics.utils import metrics

    answer = box_iou if library == "torchvision" else (lambda a, b: metrics.box_iou(a, b))
    assert cvkit.check_box_iou(answer) is False
    assert printed_line(capsys).startswith(f"Exercise 1: not yet - my_box_iou calls {library}.")
    assert sys.getprofile() is None  # the check's watch is gone


def test_check_box_iou_calls_the_function_on_boxes_of_its_own_with_n_not_m(capsys):
    seen = []
    solution = exercise_function("my_box_iou")
    cvkit.check_box_iou(lambda a, b: seen.append((a.shape, b.shape)) or solution(a, b))
    assert printed_line(capsys) == "Exercise 1: correct"
    assert len(seen) >= 2 and all(a[1] == b[1] == 4 and a[0] != b[0] for a, b in seen)


def test_check_box_iou_says_not_yet_to_a_function_that_raises_with_its_error(capsys):
    def unfinished(a, b):
        raise NotImplementedError("Exercise 1: replace this line with your solution")

    assert cvkit.check_box_iou(unfinished) is False
    assert printed_line(capsys) == ("Exercise 1: not yet - my_box_iou raised NotImplementedError: "
                                    "Exercise 1: replace this line with your solution")


def test_check_box_iou_says_not_yet_to_a_function_that_returns_none_or_no_numbers(capsys):
    cvkit.check_box_iou(lambda a, b: None)
    assert "my_box_iou returned None" in printed_line(capsys)
    cvkit.check_box_iou(lambda a, b: "a matrix")
    assert "should return a tensor" in printed_line(capsys)


def with_mistake(mistake):
    """The notebook's solution with one step done wrong: mistake(a, b, intersection, area_a, area_b) gives the IoUs."""
    def answer(a, b):
        corners = torch.minimum(a[:, None, 2:], b[None, :, 2:]) - torch.maximum(a[:, None, :2], b[None, :, :2])
        area_a, area_b = (a[:, 2:] - a[:, :2]).prod(1), (b[:, 2:] - b[:, :2]).prod(1)
        return mistake(corners, area_a[:, None], area_b[None, :])
    return answer


def test_check_box_iou_names_the_expected_shape_for_a_transposed_matrix(capsys):
    solution = exercise_function("my_box_iou")
    cvkit.check_box_iou(lambda a, b: solution(a, b).T)
    assert re.search(r"returned shape \(5, 3\), not \(3, 5\)", printed_line(capsys))


def test_check_box_iou_spots_a_missing_clamp(capsys):
    cvkit.check_box_iou(with_mistake(lambda c, a, b: c.prod(2) / (a + b - c.prod(2))))
    assert "negative" in printed_line(capsys)


def test_check_box_iou_spots_a_union_that_counts_the_intersection_twice(capsys):
    cvkit.check_box_iou(with_mistake(lambda c, a, b: c.clamp(min=0).prod(2) / (a + b)))
    assert "sum of the two areas" in printed_line(capsys)


def test_check_box_iou_says_how_many_are_off_without_showing_the_values(capsys):
    solution = exercise_function("my_box_iou")

    def one_wrong(a, b):
        ious = solution(a, b)
        ious[0, 0] = 0.5
        return ious

    cvkit.check_box_iou(one_wrong)
    line = printed_line(capsys)
    assert line.startswith("Exercise 1: not yet - 1 of 15 IoUs are off") and "0.33" not in line


def test_check_count_threshold_says_correct_to_the_notebooks_solution_and_returns_true(capsys):
    assert cvkit.check_count_threshold(exercise_function("my_threshold")) is True
    assert printed_line(capsys) == "Exercise 2: correct"


def test_check_count_threshold_says_not_yet_to_the_labs_own_thresholds(capsys):
    lab_conf, lab_thresholds = 0.25, [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert f"CONF, IOU = {lab_conf}, 0.7" in notebook_cell("CONF, IOU = ")
    assert f"thresholds = {lab_thresholds}" in notebook_cell("thresholds = ")
    for answer in (lab_conf, lab_thresholds, lambda result, name, n: lab_conf):
        assert cvkit.check_count_threshold(answer) is False
        assert printed_line(capsys).startswith("Exercise 2: not yet - ")


def test_check_count_threshold_passes_real_results_of_its_own(capsys):
    from ultralytics.engine.results import Results

    seen = []
    solution = exercise_function("my_threshold")
    cvkit.check_count_threshold(lambda result, name, n: seen.append((result, name, n)) or solution(result, name, n))
    assert printed_line(capsys) == "Exercise 2: correct"
    assert all(isinstance(result, Results) and result.boxes.conf.tolist() == sorted(result.boxes.conf.tolist(),
                                                                                     reverse=True)
               for result, _, _ in seen)
    assert {name for _, name, _ in seen} >= {"person", "dog", "car"} and len({n for _, _, n in seen}) >= 3


def test_check_count_threshold_says_which_way_to_move_a_wrong_threshold(capsys):
    cvkit.check_count_threshold(lambda result, name, n: 0.1)
    assert printed_line(capsys).endswith("my_threshold(result, 'person', 3) returned 0.1, which keeps 6, not 3: raise it")
    cvkit.check_count_threshold(lambda result, name, n: 0.7)
    assert printed_line(capsys).endswith("returned 0.7, which keeps 2, not 3: lower it")


def test_check_count_threshold_counts_only_boxes_strictly_above_the_threshold(capsys):
    def at_a_score(result, name, n):  # the n-th score itself: it keeps n - 1, as ultralytics would
        index = next(i for i, label in result.names.items() if label == name)
        return float(result.boxes.conf[result.boxes.cls == index][n - 1])

    cvkit.check_count_threshold(at_a_score)
    assert printed_line(capsys).endswith("returned 0.64, which keeps 2, not 3: lower it")


def test_check_count_threshold_wants_none_where_no_threshold_works(capsys):
    solution = exercise_function("my_threshold")
    cvkit.check_count_threshold(lambda result, name, n: solution(result, name, n) or 0.0)
    line = printed_line(capsys)
    assert "no threshold keeps exactly 3 (there are only 2): return None" in line


def test_check_count_threshold_says_not_yet_to_none_where_a_threshold_works(capsys):
    cvkit.check_count_threshold(lambda result, name, n: None)
    assert printed_line(capsys).endswith("my_threshold(result, 'person', 3) returned None, but a threshold keeps exactly 3")


def test_check_count_threshold_says_not_yet_to_what_is_not_a_number(capsys):
    for bad in ("0.3", True, float("nan")):
        cvkit.check_count_threshold(lambda result, name, n, bad=bad: bad)
        assert "return a number (a float) or None" in printed_line(capsys)


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


@pytest.fixture(scope="module")
def loaded_by_name(standin, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """A fresh process that loads each stand-in as the lab does, YOLO(name), offline and guarded: (its run, its
    working folder, its network log)."""
    env, _ = standin
    folder = tmp_path_factory.mktemp("by-name")
    code = f"from ultralytics import YOLO\nfor name in {WEIGHTS!r}:\n    print(name, YOLO(name).ckpt_path)"
    log = folder.parent / f"{folder.name}-net.log"
    run_env = {**os.environ, **env, "CVKIT_NET_LOG": str(log), "PYTHONPATH": str(ROOT / "tests" / "nonet")}
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=run_env, capture_output=True, text=True,
                          timeout=120)
    return done, folder, log


@pytest.mark.parametrize("name", WEIGHTS)
def test_standin_loads_by_name_offline_without_network_or_a_copy_in_cwd(standin, loaded_by_name, name):
    _, weights_dir = standin
    done, folder, log = loaded_by_name
    assert done.returncode == 0, done.stderr
    paths = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(tuple(WEIGHTS)))
    assert Path(paths[name]) == weights_dir / name
    assert not (folder / name).exists()
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


# ------------------------------------------------------------------ the real-time cell


LIVE_CELL = "cv2.VideoCapture(0)"


def live_cell(switch: bool = True) -> str:
    """The notebook's camera cell, with its switch USE_CAMERA turned on (or left as committed: off)."""
    source = notebook_cell(LIVE_CELL)
    assert source.count("USE_CAMERA = False") == 1
    return source.replace("USE_CAMERA = False", "USE_CAMERA = True") if switch else source


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
    exec(live_cell(), namespace)
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
    exec(live_cell(), namespace)
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
        exec(live_cell(), namespace)
    assert seen.cameras[0].released and seen.destroyed == 1


def test_live_cell_without_a_display_opens_neither_camera_nor_window(desktop, monkeypatch, capsys):
    seen, namespace = desktop
    monkeypatch.setattr(cvkit, "has_display", lambda: False)
    exec(live_cell(), namespace)
    assert seen.cameras == [] and seen.shown == []
    assert "live loop is skipped" in capsys.readouterr().out


def test_live_cell_is_off_by_default_and_says_in_one_line_how_to_turn_it_on(desktop, capsys):
    seen, namespace = desktop
    exec(live_cell(switch=False), namespace)
    assert seen.cameras == [] and seen.shown == []
    assert capsys.readouterr().out == "The camera is off: set USE_CAMERA = True in this cell and run it again.\n"


def test_live_cell_in_colab_takes_one_photo_with_the_browser_and_shows_its_boxes(desktop, monkeypatch):
    from PIL import Image

    seen, namespace = desktop
    shots, grids = [], []
    monkeypatch.setattr(cvkit, "in_colab", lambda: True)
    monkeypatch.setattr(cvkit, "colab_camera_frame", lambda: shots.append(1) or Image.fromarray(FakeCamera.FRAME))
    monkeypatch.setattr(cvkit, "show_grid", lambda images, titles, **kwargs: grids.append((images, titles)))
    exec(live_cell(), namespace)
    assert shots == [1] and seen.cameras == []
    ((images, titles),) = grids
    assert len(images) == 1 and images[0].shape == (240, 320, 3) and re.fullmatch(r"your camera: \d+ boxes", titles[0])


def test_live_cell_in_colab_shows_nothing_when_no_photo_comes(desktop, monkeypatch, capsys):
    seen, namespace = desktop
    monkeypatch.setattr(cvkit, "in_colab", lambda: True)
    monkeypatch.setattr(cvkit, "colab_camera_frame", lambda: None)
    monkeypatch.setattr(cvkit, "show_grid", lambda *args, **kwargs: pytest.fail("nothing to show"))
    exec(live_cell(), namespace)
    assert seen.cameras == []
