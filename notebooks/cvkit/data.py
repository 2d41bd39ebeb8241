"""The kit's own data: the image manifest with expected labels and credits, the label files and the class sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, NamedTuple

from .errors import KitError

__all__ = ["KIT_ROOT", "DATA_DIR", "LABELS_DIR", "Sample", "sample_images", "read_labels", "read_class_sets"]

_PACKAGE = Path(__file__).resolve().parent
IN_REPOSITORY = (_PACKAGE.parents[1] / "data" / "manifest.csv").is_file()  # run from a checkout (editable install)
# The kit's folder: the repository when the package runs from a checkout, else the installed package, whose wheel
# carries data/ and labels/ inside it.
KIT_ROOT = _PACKAGE.parents[1] if IN_REPOSITORY else _PACKAGE
DATA_DIR = KIT_ROOT / "data"
LABELS_DIR = KIT_ROOT / "labels"


class Sample(NamedTuple):
    name: str
    path: Path
    expected: Any
    credit: str


def read_labels(name: str) -> list[str]:
    """Class names from labels/<name> (one per line, index order)."""
    path = LABELS_DIR / name
    if not path.is_file():
        raise KitError(f"no labels file {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_class_sets(name: str = "zero_shot_sets.json") -> dict[str, list[str]]:
    """The zero-shot class sets from labels/<name>: set name -> list of labels."""
    path = LABELS_DIR / name
    if not path.is_file():
        raise KitError(f"no class-set file {path}")
    sets = json.loads(path.read_text(encoding="utf-8"))
    for set_name, labels in sets.items():
        if not labels:
            raise KitError(f"class set '{set_name}' in {path.name} is empty")
    return sets


def _parse_expected(lab: int, cell: str) -> Any:
    items = [item.strip() for item in cell.split("|") if item.strip()]
    if lab == 1:
        return items
    if lab == 2:
        return {name: int(count) for name, count in (item.rsplit(":", 1) for item in items)}
    return dict(item.split("=", 1) for item in items)


def _manifest_file(images: Path, file: str) -> Path:
    """Where a manifest's image lies: `name` in data/images, `package:path` inside that installed package."""
    package, sep, inside = file.partition(":")
    if not sep:
        return images / file
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise KitError(f"{file} comes with the {package} package, which is not installed: pip install {package}")
    return Path(next(iter(spec.submodule_search_locations))) / inside


def sample_images(lab: int, manifest: str | Path | None = None) -> list[Sample]:
    """The lab's images from data/manifest.csv, with their expected labels and credits."""
    if lab not in (1, 2, 3):  # "1" is no lab either: the manifest's columns are lab1, lab2, lab3
        raise KitError(f"sample_images takes the lab's number 1, 2 or 3 (an int), not {lab!r}")
    path = Path(manifest) if manifest is not None else DATA_DIR / "manifest.csv"
    samples = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cell = (row.get(f"lab{lab}") or "").strip()
            if not cell:
                continue
            credit = f"{row['author']} ({row['licence']})" if row.get("author") else row["licence"]
            samples.append(
                Sample(Path(row["file"]).stem, _manifest_file(path.parent / "images", row["file"]),
                       _parse_expected(lab, cell), credit)
            )
    if not samples:
        raise KitError(f"{path} lists no images for lab {lab}")
    return samples
