"""Download the real weights of all three labs into the kit's cache folder, once (`make weights`).

Afterwards `make run`, `make lab` and the notebooks use that folder and need no network; copy it to other machines
as it is (see README). Re-running downloads nothing that is already there and complete; stand-ins are replaced.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "notebooks"))

import cvkit  # noqa: E402  (cheap: the libraries are imported by the functions below)
from cvkit.weights import SIGLIP_ID, _first_line, _reachable  # noqa: E402

SIGLIP_BASE_ID = "google/siglip2-base-patch16-224"
FONTS_URL = "https://github.com/ultralytics/assets/releases/download/v0.0.0"


def _resnet_ok(path: Path) -> bool:
    """torchvision names its files after the first hex digits of their sha256: check them."""
    prefix = path.stem.rsplit("-", 1)[-1]
    return hashlib.sha256(path.read_bytes()).hexdigest().startswith(prefix)


def fetch_resnet(cache: Path) -> None:
    import torch
    from torchvision.models import ResNet18_Weights

    torch.hub.load_state_dict_from_url(
        ResNet18_Weights.IMAGENET1K_V1.url, model_dir=str(cache / "torch" / "hub" / "checkpoints"),
        progress=True, check_hash=True, weights_only=True,
    )


def fetch_yolo(cache: Path) -> None:
    from ultralytics.utils import SettingsManager
    from ultralytics.utils.downloads import attempt_download_asset, safe_download

    config = cache / "ultralytics" / "Ultralytics"
    config.mkdir(parents=True, exist_ok=True)
    weights_dir = cache / "ultralytics" / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    SettingsManager(config / "settings.json").update(weights_dir=str(weights_dir), sync=False)
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):  # ultralytics fetches these on first drawing otherwise
        if not (config / font).is_file():
            safe_download(url=f"{FONTS_URL}/{font}", file=config / font, retry=1)
    attempt_download_asset(str(weights_dir / "yolo11n.pt"))
    if not (weights_dir / "yolo11n.pt").is_file():
        raise RuntimeError("yolo11n.pt did not arrive")


def fetch_hf(cache: Path, model_id: str = SIGLIP_ID) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(model_id, cache_dir=str(cache / "huggingface" / "hub"))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: $CVKIT_CACHE or .cache/ in the repo")
    parser.add_argument("--with-base", action="store_true", help=f"also fetch the smaller {SIGLIP_BASE_ID}")
    args = parser.parse_args(argv)
    cache = (args.cache or cvkit.kit_cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)

    jobs = [(1, lambda: fetch_resnet(cache)), (2, lambda: fetch_yolo(cache)), (3, lambda: fetch_hf(cache))]
    problems = []
    for lab, fetch in jobs:
        what, host = cvkit.LAB_MODELS[lab]
        status, path = cvkit.cache_status(lab, cache)
        if status == "real" and (lab != 1 or _resnet_ok(path)):
            print(f"{what}: already in the cache")
            continue
        if path is not None:  # a stand-in, or a damaged file: never keep it
            print(f"{what}: removing the {'stand-in' if status == 'stand-in' else 'damaged copy'} at {path}")
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        reason = _reachable(host, timeout=5)
        if reason is not None:
            problems.append(f"{what}: cannot reach {host} ({reason})")
            continue
        print(f"{what}: downloading from {host}")
        try:
            fetch()
        except Exception as err:
            problems.append(f"{what}: download from {host} failed ({_first_line(err)})")
    if args.with_base:
        reason = _reachable("huggingface.co", timeout=5)
        try:
            if reason is not None:
                raise ConnectionError(f"cannot reach huggingface.co ({reason})")
            print(f"{SIGLIP_BASE_ID}: downloading (or checking) from huggingface.co")
            fetch_hf(cache, SIGLIP_BASE_ID)
        except Exception as err:
            problems.append(f"{SIGLIP_BASE_ID}: {_first_line(err)}")

    print(f"\nCache: {cache}")
    for name in ("torch", "ultralytics", "huggingface"):
        if (cache / name).exists():
            print(f"{_size(cache / name) / 2**20:10.1f} MB  {name}/")
    print(f"{_size(cache) / 2**20:10.1f} MB  in all")
    if problems:
        print("\nNot fetched:\n" + "\n".join(problems) + "\nRun `make weights` again once the network is up.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
