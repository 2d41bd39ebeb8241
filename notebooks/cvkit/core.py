"""Shared helpers for every lab: the environment, short errors, images, the manifest and an image grid."""

from __future__ import annotations

import csv
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

__all__ = [
    "KIT_ROOT", "DATA_DIR", "LABELS_DIR", "KitError", "Sample",
    "kit_cache_dir", "in_colab", "in_kaggle", "pick_device", "pick_dtype", "device_report", "use_short_errors",
    "pil_open", "load_image", "sample_images", "read_labels", "read_class_sets",
    "show_grid",
]

KIT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = KIT_ROOT / "data"
LABELS_DIR = KIT_ROOT / "labels"


class KitError(Exception):
    """A problem the user can fix; notebooks show its message in one line."""


class Sample(NamedTuple):
    name: str
    path: Path
    expected: Any
    credit: str


# ---------------------------------------------------------------- environment


def kit_cache_dir() -> Path:
    """The kit's own cache folder (weights and downloaded images): $CVKIT_CACHE, else .cache/ in the repository."""
    return Path(os.environ.get("CVKIT_CACHE") or KIT_ROOT / ".cache").expanduser().resolve()


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def in_kaggle() -> bool:
    """True when running inside a Kaggle notebook."""
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def pick_device() -> torch.device:
    """The device the labs run on: the first CUDA GPU if there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """fp32 on CPU, bf16 on GPUs with native bf16 (compute capability 8.0+), fp16 on older GPUs such as the T4."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    # Decide from the compute capability: torch.cuda.is_bf16_supported() can say True on a T4 through emulation.
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def device_report() -> dict[str, Any]:
    """Print and return torch/CUDA versions, the GPU (name, memory, compute capability) and the dtype to use."""
    import torch

    device = pick_device()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "device": str(device),
        "dtype": str(pick_dtype(device)).replace("torch.", ""),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
        )
    for key, value in report.items():
        print(f"{key:>20}: {value}")
    if device.type == "cpu":
        if in_colab():
            print("No GPU. In Colab: Runtime > Change runtime type > T4 GPU, then run the notebook again.")
        elif in_kaggle():
            print("No GPU. In Kaggle: Settings > Accelerator > GPU T4, then run the notebook again.")
        else:
            print("No GPU found: the lab runs on the CPU (slower, same results).")
    return report


def use_short_errors() -> None:
    """Show a KitError, and PyTorch's device and dtype mix-ups, as one line in IPython instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def show(shell, etype, value, tb, tb_offset=None):
        line = str(value) if issubclass(etype, KitError) else _explain_torch_error(str(value))
        if line is None:  # a RuntimeError the kit cannot explain: the usual traceback
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return
        print(f"{etype.__name__}: {line}", file=sys.stderr)

    shell.set_custom_exc((KitError, RuntimeError), show)


def _explain_torch_error(message: str) -> str | None:
    """One line on what to change for PyTorch's commonest beginner errors, or None for any other error."""
    types = re.search(r"Input type \((\S+)\) and (?:weight|bias) type \((\S+)\) should be the same", message)
    if "Expected all tensors to be on the same device" in message or (
        types and ("cuda" in types[1]) != ("cuda" in types[2])
    ):
        return "the model and its input are on different devices: move the input there with .to(device)"
    if types or "must have the same dtype" in message:
        return "the input's number format differs from the model's: convert it with .to(device=device, dtype=dtype)"
    if "selected index k out of range" in message:
        return "k is larger than the number of classes: torch.topk can return at most one entry per column"
    return None


# --------------------------------------------------------------------- images


def _is_url(source: Any) -> bool:
    return isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) is not None


def _describe_bytes(head: bytes) -> str:
    text = head.lstrip()[:15].lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML/XML page, not an image"
    if not head:
        return "an empty file"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc"):
        return "a HEIC/HEIF photo, which needs the pillow-heif package (pip install pillow-heif)"
    return "not an image Pillow can read"


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray((array / top * 255.0).clip(0, 255).astype("uint8"))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")


def pil_open(path: str | Path) -> Image.Image:
    """PIL.Image.open as Pillow defines it, with HEIC/HEIF support from pillow-heif when it is installed.

    ultralytics replaces PIL.Image.open with a wrapper that pip-installs a package whenever Pillow cannot identify a
    file; the kit opens files with Pillow's own function so that a wrong file gives an error, not an install.
    """
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()  # idempotent: registers the HEIF plugin with Pillow
    except ImportError:
        pass
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(path)


def _from_array(array: Any) -> Image.Image:
    import numpy as np

    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise KitError(
            f"load_image takes an array of uint8 pixels shaped (H, W), (H, W, 3) RGB or (H, W, 4) RGBA; "
            f"got {array.dtype} with shape {tuple(array.shape)}"
        )
    return _to_rgb(Image.fromarray(np.ascontiguousarray(array)))


def load_image(source: Any) -> Image.Image:
    """An RGB PIL image, upright (EXIF orientation applied), from a path, an http(s) URL, a PIL image or an array.

    A NumPy array must hold RGB (or gray) uint8 pixels: reverse an OpenCV BGR frame first (`frame[..., ::-1]`).
    """
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    if type(source).__module__ == "numpy" and hasattr(source, "dtype"):
        return _from_array(source)
    if not isinstance(source, (str, Path)):
        raise KitError(f"load_image takes a file path, a URL, a PIL image or a NumPy array, not {type(source).__name__}")
    if _is_url(source):
        from .download import download_image

        path = download_image(source)
    else:
        path = Path(source).expanduser()
    if not path.exists():
        raise KitError(f"no such file: {path}")
    if path.is_dir():
        raise KitError(f"{path} is a folder, not an image file")
    try:
        with pil_open(path) as image:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except Image.DecompressionBombError as err:
        raise KitError(
            f"{path.name} is too large to open safely ({err}); Pillow refuses it as a possible decompression bomb"
        ) from err
    except UnidentifiedImageError as err:
        head = path.read_bytes()[:64]
        raise KitError(f"{path.name} is {_describe_bytes(head)}") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise KitError(f"{path.name} is damaged or truncated ({err})") from err


# ------------------------------------------------------------- manifest, labels


def read_labels(name: str) -> list[str]:
    """Class names from labels/<name> (one per line, index order)."""
    path = LABELS_DIR / name
    if not path.is_file():
        raise KitError(f"no labels file {path}")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_class_sets(name: str = "zero_shot_sets.json") -> dict[str, list[str]]:
    """The zero-shot class sets from labels/<name>: set name -> list of labels."""
    import json

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
    if lab not in (1, 2, 3):
        raise KitError(f"there is no lab {lab}: choose 1, 2 or 3")
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


# ------------------------------------------------------------------- plotting


def show_grid(images: Sequence[Any], titles: Sequence[str] | None = None, ncols: int = 4, size: float = 3.2) -> None:
    """Show images (PIL, HxWx3 RGB arrays or HxW grayscale arrays) in a grid with optional titles."""
    import matplotlib.pyplot as plt

    if not len(images):
        raise KitError("show_grid got no images")
    if titles is not None and len(titles) != len(images):
        raise KitError(f"show_grid got {len(images)} images but {len(titles)} titles: give one title per image")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, cmap="gray" if getattr(image, "ndim", 3) == 2 else None)
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    fig.tight_layout()
    plt.show()
