"""Download the real weights of all three labs into the kit's cache folder, once (`make weights`).

Afterwards `make run`, `make lab` and the notebooks use that folder and need no network; copy it to other machines
as it is (see README). Beside the weights it writes weights-manifest.json: every file fetched with its size and
SHA-256, and each Hugging Face model's revision, against which the kit checks a model's files before loading them.
Re-running downloads nothing that is already there, complete and as the manifest lists it, and replaces the rest.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import json
import shutil
import sys
from pathlib import Path

from cvkit.env import kit_cache_dir
from cvkit.weights import (
    LAB_WEIGHTS,
    MANIFEST_NAME,
    MORE_WEIGHTS,
    SIGLIP_BASE,
    cache_problem,
    manifest_problem,
    weights_host,
    weights_in_cache,
    why_unreachable,
    write_manifest,
)

FONTS_URL = "https://github.com/ultralytics/assets/releases/download/v0.0.0"
# Files of a Hugging Face repository that no PyTorch library here loads: other frameworks' weights and exports.
NOT_LOADED = ("*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "flax_*", "tf_*", "rust_*", "onnx/*", "openvino/*",
              "coreml/*")
PICKLED = ("*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.ckpt")  # PyTorch's older formats, pickles
TOO_LARGE = ("the cache's file system cannot hold files over 4 GB (FAT32?): SigLIP 2 so400m's weights are one file "
             "of about 4.5 GB; use a drive formatted exFAT or ext4")


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


def files_to_fetch(files: list[str]) -> list[str]:
    """The files of a Hugging Face repository that transformers loads: no other framework's, and no pickled PyTorch
    weights where safetensors are there (transformers then loads those)."""
    wanted = [name for name in files if not any(fnmatch.fnmatch(name, pattern) for pattern in NOT_LOADED)]
    if any(name.endswith(".safetensors") for name in wanted):
        wanted = [name for name in wanted if not any(fnmatch.fnmatch(name, pattern) for pattern in PICKLED)]
    return wanted


def fetch_huggingface(source: str, cache: Path) -> None:
    from huggingface_hub import HfApi, snapshot_download

    files = [sibling.rfilename for sibling in HfApi().model_info(source).siblings or []]
    snapshot_download(source, cache_dir=str(cache / "huggingface" / "hub"), allow_patterns=files_to_fetch(files))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _errno_in_chain(err: BaseException) -> int | None:
    """The errno of the first OSError in err's chain of causes (libraries wrap the file system's own error)."""
    while err is not None:
        if isinstance(err, OSError) and err.errno is not None:
            return err.errno
        err = err.__cause__ or err.__context__
    return None


def _listed(cache: Path) -> set[str]:
    """The models the cache's manifest lists (none when it has no manifest that reads)."""
    try:
        return set(json.loads((cache / MANIFEST_NAME).read_text(encoding="utf-8"))["models"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _problem(source: str, cache: Path, listed: bool) -> str | None:
    """What is wrong with the cache's copy of `source`: missing, damaged, or (when the manifest lists it) changed."""
    return cache_problem(source, cache) or (manifest_problem(source, cache) if listed else None)


def fetch(source: str, cache: Path, unreachable: dict[str, str | None], listed: bool = False) -> str | None:
    """Make sure `cache` holds a complete copy of `source`; return why not, or None.

    `unreachable` remembers, per host, why it could not be reached (None: it could), so each host is probed once.
    `listed`: the cache's manifest lists `source`, and a copy that differs from it is fetched again.
    """
    path = weights_in_cache(source, cache)
    problem = _problem(source, cache, listed)
    if problem is None:
        print(f"{source}: already in the cache")
        return None
    if path.exists():
        print(f"{source}: removing the damaged copy at {path} ({problem})")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    host = weights_host(source)
    if host not in unreachable:
        unreachable[host] = why_unreachable(host, timeout=5)
    reason = unreachable[host]
    if reason is not None:
        return f"{source}: cannot reach {host} ({reason})"
    print(f"{source}: downloading from {host}")
    kind = "torchvision" if "_Weights." in source else "ultralytics" if source.endswith(".pt") else "huggingface"
    fetcher = {"torchvision": fetch_torchvision, "ultralytics": fetch_ultralytics, "huggingface": fetch_huggingface}
    try:
        fetcher[kind](source, cache)
    except Exception as err:
        if _errno_in_chain(err) == errno.EFBIG:
            return f"{source}: {TOO_LARGE}"
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return f"{source}: download from {host} failed ({first})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="default: $CVKIT_CACHE or .cache/ in the repo")
    parser.add_argument("--with-base", action="store_true", help=f"also fetch the smaller {SIGLIP_BASE}")
    args = parser.parse_args(argv)
    cache = (args.cache.expanduser() if args.cache else kit_cache_dir()).resolve()
    cache.mkdir(parents=True, exist_ok=True)

    sources = [*LAB_WEIGHTS.values(), *(s for more in MORE_WEIGHTS.values() for s in more),
               *([SIGLIP_BASE] if args.with_base else [])]
    listed = _listed(cache)
    unreachable: dict[str, str | None] = {}
    problems = [problem for source in sources
                if (problem := fetch(source, cache, unreachable, source in listed)) is not None]
    complete = [source for source in sources if cache_problem(source, cache) is None]
    try:
        manifest = write_manifest(cache, complete)
    except OSError as err:
        why = TOO_LARGE if err.errno == errno.EFBIG else err.strerror or str(err)
        problems.append(f"{MANIFEST_NAME}: cannot be written in {cache} ({why})")
        manifest = None

    print(f"\nCache: {cache}")
    for name in ("torch", "ultralytics", "huggingface"):
        if (cache / name).exists():
            print(f"{_size(cache / name) / 2**20:10.1f} MB  {name}/")
    print(f"{_size(cache) / 2**20:10.1f} MB  in all")
    if manifest is not None:
        print(f"Manifest: {manifest} (the kit checks each model's files against it before loading them)")
    if problems:
        print("\nNot fetched:\n" + "\n".join(problems) + "\nRun `make weights` again once the network is up (or what "
              "is said above is fixed): it fetches only what is missing.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
