"""The kit's data: label files equal to the libraries' own metadata, zero-shot class sets of two or more distinct labels, and a
manifest whose every image exists, matches its hash, is licensed, credited, used by a lab, small and RGB, with expected
labels that each lab's classes contain.

These tests read the files directly (they do not import cvkit).
"""

import csv
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
IMAGES = DATA / "images"
LABELS = ROOT / "labels"
MANIFEST = DATA / "manifest.csv"
COLUMNS = ["file", "lab1", "lab2", "lab3", "licence", "author", "origin", "sha256"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MAX_SIDE = 1280
CLASS_SETS = json.loads((LABELS / "zero_shot_sets.json").read_text(encoding="utf-8"))


def read_lines(path):
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def manifest():
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def imagenet_classes():
    return read_lines(LABELS / "imagenet_classes.txt")


@pytest.fixture(scope="module")
def coco_classes():
    return read_lines(LABELS / "coco_classes.txt")


def split_cell(cell):
    return cell.split("|") if cell else []


def image_path(row):
    """A manifest row's image: `name` in data/images, or `package:path` inside that installed package (not shipped)."""
    package, sep, inside = row["file"].partition(":")
    if not sep:
        return IMAGES / row["file"]
    spec = importlib.util.find_spec(package)  # located without importing it
    assert spec is not None and spec.submodule_search_locations, f"{row['file']}: {package} is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / inside


# ---------------------------------------------------------------- label files


def test_imagenet_labels_equal_torchvision_weights_meta(imagenet_classes):
    from torchvision.models import ResNet18_Weights

    assert imagenet_classes == list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def test_coco_labels_equal_ultralytics_dataset_names(coco_classes):
    yaml = pytest.importorskip("yaml")
    # Locate the installed package without importing it (importing ultralytics writes a settings file).
    spec = importlib.util.find_spec("ultralytics")
    assert spec is not None and spec.submodule_search_locations, "ultralytics is not installed"
    coco_yaml = Path(list(spec.submodule_search_locations)[0]) / "cfg" / "datasets" / "coco.yaml"
    names = yaml.safe_load(coco_yaml.read_text(encoding="utf-8"))["names"]
    expected = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    assert len(expected) == 80
    assert coco_classes == expected


@pytest.mark.parametrize("name", CLASS_SETS)
def test_each_zero_shot_set_has_at_least_two_distinct_labels(name):
    labels = CLASS_SETS[name]
    assert len(labels) >= 2 and len(set(labels)) == len(labels)
    assert all(isinstance(label, str) and label.strip() == label != "" for label in labels)


# ---------------------------------------------------------------- manifest


def test_manifest_has_the_contract_columns():
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == COLUMNS


def test_manifest_lists_each_file_once(manifest):
    files = [row["file"] for row in manifest]
    assert len(files) == len(set(files))


def test_every_manifest_file_exists(manifest):
    missing = [row["file"] for row in manifest if not image_path(row).is_file()]
    assert manifest and missing == []


def test_every_image_file_is_in_the_manifest(manifest):
    listed = {row["file"] for row in manifest}
    on_disk = {p.name for p in IMAGES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    assert on_disk - listed == set()


def test_manifest_sha256_matches_file(manifest):
    wrong = [
        row["file"]
        for row in manifest
        if hashlib.sha256(image_path(row).read_bytes()).hexdigest() != row["sha256"]
    ]
    assert wrong == []


def test_every_image_has_licence_and_origin(manifest):
    incomplete = [
        row["file"]
        for row in manifest
        if not (row["licence"].strip() and row["origin"].strip() and row["author"].strip())
    ]
    assert incomplete == []


def test_every_image_is_used_by_some_lab(manifest):
    code = "\n".join("".join(c["source"]) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                     for c in json.loads(p.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    unused = [row["file"] for row in manifest
              if not (row["lab1"] or row["lab2"] or row["lab3"]) and row["file"] not in code]
    assert unused == []


def test_attribution_and_copyleft_images_are_credited_in_readme(manifest):
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    uncredited = []
    for row in manifest:
        licence = row["licence"].upper()
        if any(tag in licence for tag in ("CC-BY", "GPL")):
            if row["file"] not in readme or row["author"] not in readme or row["licence"] not in readme:
                uncredited.append(row["file"])
    assert uncredited == []


# ---------------------------------------------------------------- expected labels


def test_lab1_expected_labels_are_imagenet_classes(manifest, imagenet_classes):
    known = set(imagenet_classes)
    unknown = [
        (row["file"], name) for row in manifest for name in split_cell(row["lab1"]) if name not in known
    ]
    assert unknown == []


def test_lab2_expected_objects_are_coco_classes_with_positive_counts(manifest, coco_classes):
    known = set(coco_classes)
    bad = []
    for row in manifest:
        seen = set()
        for item in split_cell(row["lab2"]):
            name, sep, count = item.rpartition(":")
            if not sep or name not in known or name in seen or not count.isdigit() or int(count) < 1:
                bad.append((row["file"], item))
            seen.add(name)
    assert bad == []


def test_lab3_expected_labels_belong_to_their_set(manifest):
    bad = []
    for row in manifest:
        seen = set()
        for item in split_cell(row["lab3"]):
            set_name, sep, label = item.partition("=")
            if not sep or label not in CLASS_SETS.get(set_name, []) or set_name in seen:
                bad.append((row["file"], item))
            seen.add(set_name)
    assert bad == []


def test_lab1_has_at_least_6_images(manifest):
    assert sum(1 for row in manifest if row["lab1"]) >= 6


def test_each_lab3_set_has_an_example(manifest):
    used = {item.partition("=")[0] for row in manifest for item in split_cell(row["lab3"])}
    assert used == set(CLASS_SETS)


# ---------------------------------------------------------------- image files


def test_images_are_at_most_1280_px(manifest):
    from PIL import Image

    too_big = []
    for row in manifest:
        with Image.open(image_path(row)) as im:
            if max(im.size) > MAX_SIDE:
                too_big.append((row["file"], im.size))
    assert too_big == []


def test_images_decode_as_rgb(manifest):
    from PIL import Image

    bad = []
    for row in manifest:
        with Image.open(image_path(row)) as im:
            im.load()
            if im.mode != "RGB":
                bad.append((row["file"], im.mode))
    assert bad == []


def test_images_total_size_is_under_6_mb(manifest):
    total = sum(image_path(row).stat().st_size for row in manifest if ":" not in row["file"])  # shipped files
    assert total < 6 * 1024 * 1024
