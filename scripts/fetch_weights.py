"""Download the real weights of all three labs into the kit's cache folder, once (`make weights`).

Afterwards `make run`, `make lab` and the notebooks use that folder and need no network; copy it to other machines
as it is (see README). Re-running downloads nothing that is already there and complete, and replaces what is damaged.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cvkit
from cvkit import cache_problem, weights_host, weights_in_cache, why_unreachable

SIGLIP_BASE_ID = "google/siglip2-base-patch16-224"
FONTS_URL = "https://github.com/ultralytics/assets/releases/download/v0.0.0"


def fetch_torchvision(source: str, cache: Path) -> None:
    import torch
    from torchvision.models import get_weight

    torch.hub.load_state_dict_from_url(get_weight(source).url, model_dir=str(weights_in_cache(source, cache).parent),
                                       progress=True, check_hash=True, weights_only=True)


def fetch_ultralytics(source: str, cache: Path) -> None:
    from ultralytics.utils import SettingsManager
    from ultralytics.utils.downloads import attempt_download_asset, safe_download

    config = cache / "ultralytics" / "Ultralytics"
    config.mkdir(parents=True, exist_ok=True)
    target = weights_in_cache(source, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    SettingsManager(config / "settings.json").update(weights_dir=str(target.parent), sync=False)
    for font in ("Arial.ttf", "Arial.Unicode.ttf"):  # ultralytics fetches these on first drawing otherwise
        if not (config / font).is_file():
            safe_download(url=f"{FONTS_URL}/{font}", file=config / font, retry=1)
    attempt_download_asset(str(target))
    if not target.is_file():
        raise RuntimeError(f"{source} did not arrive")


def fetch_huggingface(source: str, cache: Path) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(source, cache_dir=str(cache / "huggingface" / "hub"),  # PyTorch's files, not TF's or Flax's
                      ignore_patterns=["*.h5", "*.msgpack", "*.onnx", "*.ot", "flax_*", "tf_*", "rust_*", "onnx/*"])


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def fetch(source: str, cache: Path) -> str | None:
    """Make sure `cache` holds a complete copy of `source`; return why not, or None."""
    path = weights_in_cache(source, cache)
    problem = cache_problem(source, cache)
    if problem is None:
        print(f"{source}: already in the cache")
        return None
    if path.exists():
        print(f"{source}: removing the damaged copy at {path} ({problem})")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    host = weights_host(source)
    reason = why_unreachable(host, timeout=5)
    if reason is not None:
        return f"{source}: cannot reach {host} ({reason})"
    print(f"{source}: downloading from {host}")
    kind = "torchvision" if "_Weights." in source else "ultralytics" if source.endswith(".pt") else "huggingface"
    fetcher = {"torchvision": fetch_torchvision, "ultralytics": fetch_ultralytics, "huggingface": fetch_huggingface}
    try:
        fetcher[kind](source, cache)
    except Exception as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return f"{source}: download from {host} failed ({first})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: $CVKIT_CACHE or .cache/ in the repo")
    parser.add_argument("--with-base", action="store_true", help=f"also fetch the smaller {SIGLIP_BASE_ID}")
    args = parser.parse_args(argv)
    cache = (args.cache.expanduser() if args.cache else cvkit.kit_cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)

    sources = [*cvkit.LAB_WEIGHTS.values(), *(s for more in cvkit.MORE_WEIGHTS.values() for s in more),
               *([SIGLIP_BASE_ID] if args.with_base else [])]
    problems = [problem for source in sources if (problem := fetch(source, cache)) is not None]

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
