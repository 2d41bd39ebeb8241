"""Pretrained weights: where each library keeps them, the kit's offline cache and its manifest, one-line errors.

A weights *source* is what a notebook loads: a torchvision weights enum member (``ResNet18_Weights.IMAGENET1K_V1``)
or its name as a string, an ultralytics weights file name (``"yolo11n.pt"``), or a Hugging Face model id
(``"google/siglip2-so400m-patch14-384"``). The libraries are imported only inside the functions that need them:
huggingface_hub and ultralytics read their settings once, when first imported, and `use_kit_cache` sets them first.
"""

from __future__ import annotations

import atexit
import difflib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .env import kit_cache_dir
from .errors import KitError

__all__ = [
    "LAB_WEIGHTS", "MORE_WEIGHTS", "SIGLIP_BASE", "MANIFEST_NAME", "kit_cache_env", "use_kit_cache", "weights_name",
    "weights_host", "cached_weights", "weights_in_cache", "cache_problem", "why_unreachable", "locate_weights",
    "model_files", "manifest_problem", "write_manifest", "explain_load_errors", "explain_oom",
]

LAB_WEIGHTS = {1: "ResNet18_Weights.IMAGENET1K_V1", 2: "yolo11n.pt", 3: "google/siglip2-so400m-patch14-384"}
# What each lab compares its model with, or swaps in for an exercise (`make weights` fetches these too).
MORE_WEIGHTS = {
    1: ("ResNet50_Weights.IMAGENET1K_V2",),
    2: ("yolo11s.pt", "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"),
    3: ("openai/clip-vit-base-patch32",),
}
SIGLIP_BASE = "google/siglip2-base-patch16-224"  # the smaller SigLIP 2 (`make weights WITH_BASE=1` fetches it)
MANIFEST_NAME = "weights-manifest.json"  # written by `make weights` at the top of a kit cache
_ULTRALYTICS_HOST = "github.com"  # ultralytics' assets are GitHub release files
# ultralytics reads these when first imported: load checkpoints with torch.load(weights_only=True) against its list
# of known model classes (ultralytics/nn/tasks.py, _SafeLoad), and never pip-install a package it misses.
_ULTRALYTICS_SAFETY = {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}


# ------------------------------------------------------------------ sources


def _kind(source: Any) -> str:
    """'torchvision', 'ultralytics' or 'huggingface'."""
    if not isinstance(source, str):
        from torchvision.models import WeightsEnum

        if isinstance(source, WeightsEnum):
            return "torchvision"
        raise KitError(f"weights must be torchvision weights, a .pt file name or a Hugging Face id, not {source!r}")
    if re.fullmatch(r"\w+_Weights\.\w+", source):
        return "torchvision"
    if source.endswith(".pt"):
        return "ultralytics"
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        return "huggingface"
    raise KitError(f"{source!r} names no weights: use torchvision weights, a .pt file name or a Hugging Face id")


def _closest(name: str, names: Iterable[str]) -> str:
    """' (the closest it publishes: a, b, c)' for the names most like `name`, ignoring case; '' when none is close."""
    by_lower = {known.lower(): known for known in names}
    close = difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.6)
    return f" (the closest it publishes: {', '.join(by_lower[c] for c in close)})" if close else ""


def _torchvision(source: Any) -> Any:
    from torchvision import models

    if not isinstance(source, str):
        return source
    try:
        return models.get_weight(source)
    except (ValueError, KeyError, AttributeError) as err:
        published = {f"{enum.__name__}.{member.name}" for enum in map(models.get_model_weights, models.list_models())
                     for member in enum}
        raise KitError(f"torchvision has no weights called {source}{_closest(source, published)}") from err


def weights_name(source: Any) -> str:
    """A readable name for the weights: 'ResNet18_Weights.IMAGENET1K_V1', 'yolo11n.pt' or the model id."""
    if _kind(source) == "torchvision":
        weights = _torchvision(source)
        return f"{type(weights).__name__}.{weights.name}"
    return source


def weights_host(source: Any) -> str:
    """The host the library downloads these weights from."""
    kind = _kind(source)
    if kind == "torchvision":
        return urlsplit(_torchvision(source).url).hostname or "download.pytorch.org"
    return _ULTRALYTICS_HOST if kind == "ultralytics" else "huggingface.co"


def _hf_snapshot(repo: Path) -> Path | None:
    """The snapshot folder that refs/main of a hub-cache repository folder points at, if it holds a config."""
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snapshot = repo / "snapshots" / ref.read_text().strip()
    return snapshot if (snapshot / "config.json").is_file() else None


def cached_weights(source: Any) -> Path | None:
    """Where the library would load the weights from without downloading (a file, or a model folder), else None."""
    kind = _kind(source)
    if kind == "torchvision":
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlsplit(_torchvision(source).url).path).name
        return path if path.is_file() else None
    if kind == "ultralytics":
        from ultralytics.utils import SETTINGS

        for path in (Path(source), Path(SETTINGS["weights_dir"]) / source):
            if path.is_file():
                return path.resolve()
        return None
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(source, "config.json")
    return Path(config).parent if isinstance(config, str) else None


def weights_in_cache(source: Any, cache: str | Path) -> Path:
    """Where a kit cache folder (made by `make weights`) keeps the weights: a file, or a hub-cache model folder."""
    cache = Path(cache)
    kind = _kind(source)
    if kind == "torchvision":
        return cache / "torch" / "hub" / "checkpoints" / Path(urlsplit(_torchvision(source).url).path).name
    if kind == "ultralytics":
        return cache / "ultralytics" / "weights" / source
    return cache / "huggingface" / "hub" / ("models--" + source.replace("/", "--"))


# -------------------------------------------------------------- the kit cache


def kit_cache_env(cache: Path) -> dict[str, str]:
    """The variables that point torch and Hugging Face at a kit cache folder (ultralytics: see use_kit_cache)."""
    return {"TORCH_HOME": str(cache / "torch"), "HF_HOME": str(cache / "huggingface")}


@functools.cache
def _private_temp_dir() -> Path:
    """A folder with a random name that only this user can use (mode 0700), removed when Python exits."""
    folder = Path(tempfile.mkdtemp(prefix="cvkit-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _user_dir() -> Path:
    """The kit's folder for this user, which only they can write: $XDG_CACHE_HOME/cvkit or ~/.cache/cvkit (mode 0700),
    else (no writable home) a private temporary folder."""
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cvkit"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)  # fails unless the folder is this user's
        if os.access(folder, os.W_OK):
            return folder
    except (OSError, RuntimeError):  # RuntimeError: no home folder known
        pass
    return _private_temp_dir()


def _ultralytics_config(cache: Path) -> Path:
    """A YOLO_CONFIG_DIR in this user's own folder whose settings send ultralytics to the cache's weights.

    ultralytics finds weights through `weights_dir` in its settings file and rewrites that file as it likes, so the
    kit never points it into the cache itself: the cache may be a read-only copy.
    """
    source = cache / "ultralytics" / "Ultralytics"
    folder = _user_dir() / "ultralytics" / hashlib.sha256(str(cache).encode()).hexdigest()[:12]
    (folder / "Ultralytics").mkdir(parents=True, exist_ok=True)
    settings_file = source / "settings.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    settings.update(weights_dir=str(cache / "ultralytics" / "weights"), sync=False)
    fresh = folder / "Ultralytics" / f"settings.{os.getpid()}.tmp"
    fresh.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    os.replace(fresh, folder / "Ultralytics" / "settings.json")
    for font in source.glob("*.ttf"):  # ultralytics downloads its fonts on first drawing unless they are here
        target = folder / "Ultralytics" / font.name
        if not target.exists():
            target.unlink(missing_ok=True)  # a link to a cache that has moved
            target.symlink_to(font)
    return folder


def _kit_weights() -> list[str]:
    """Every model the labs load (LAB_WEIGHTS and MORE_WEIGHTS): what `make weights` fetches."""
    return [*LAB_WEIGHTS.values(), *(source for more in MORE_WEIGHTS.values() for source in more)]


def _offline_switches(cache: Path, env: dict[str, str], timeout: float) -> dict[str, str]:
    """HF_HUB_OFFLINE and YOLO_OFFLINE for the libraries that `env` (the environment to be) sends to the cache and that
    nobody switched yet: set when the cache holds every model of that library, or when its host cannot be reached."""
    hosts = {"HF_HUB_OFFLINE": "huggingface.co", "YOLO_OFFLINE": _ULTRALYTICS_HOST}
    kinds = {"HF_HUB_OFFLINE": "huggingface", "YOLO_OFFLINE": "ultralytics"}
    uses_cache = {"HF_HUB_OFFLINE": env.get("HF_HOME") == str(cache / "huggingface"),
                  "YOLO_OFFLINE": "YOLO_CONFIG_DIR" in env and "YOLO_CONFIG_DIR" not in os.environ}
    switches = {}
    for key, host in hosts.items():
        if key in env or not uses_cache[key]:
            continue
        if all(_complete_in_cache(source, cache) for source in _kit_weights() if _kind(source) == kinds[key]) \
                or why_unreachable(host, timeout) is not None:
            switches[key] = "1"
    return switches


def _read_too_early(applied: dict[str, str]) -> list[str]:
    """The libraries imported before these variables were set, which read them at import and hold other values."""
    stale = []
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None and (("HF_HOME" in applied and Path(hub.HF_HOME) != Path(applied["HF_HOME"]))
                            or ("HF_HUB_OFFLINE" in applied and not hub.HF_HUB_OFFLINE)):
        stale.append("huggingface_hub")
    yolo = sys.modules.get("ultralytics.utils")
    if yolo is not None and (
        ("YOLO_CONFIG_DIR" in applied and Path(applied["YOLO_CONFIG_DIR"]) not in Path(yolo.SETTINGS.file).parents)
        or ("YOLO_OFFLINE" in applied and yolo.ONLINE)
    ):
        stale.append("ultralytics")
    return stale


def use_kit_cache(cache: str | Path | None = None, timeout: float = 3.0) -> dict[str, str]:
    """Point torch, Hugging Face and ultralytics at the kit's weight cache, if there is one; return what was set.

    Call it before anything imports huggingface_hub (gradio and transformers do) or ultralytics: they read these
    settings once, at import; a KitError says so when one was imported with other cache settings (a printed note,
    when ultralytics was imported without its safe loading). Variables already set win, and nothing is written inside
    the cache. A library whose models are all in the cache is switched to offline mode without asking the network;
    otherwise one bounded probe of its host decides. Libraries the user pointed elsewhere (HF_HOME, YOLO_CONFIG_DIR
    set before) are left online. Always: ultralytics loads checkpoints with its safe loading (ULTRALYTICS_SAFE_LOAD)
    and never pip-installs packages (YOLO_AUTOINSTALL=false).
    """
    cache = Path(cache).expanduser().resolve() if cache is not None else kit_cache_dir()
    wanted = dict(_ULTRALYTICS_SAFETY)
    has_cache = any((cache / name).is_dir() for name in ("torch", "huggingface", "ultralytics"))
    if has_cache:
        wanted.update(kit_cache_env(cache))
        if (cache / "ultralytics").is_dir() and "YOLO_CONFIG_DIR" not in os.environ:
            wanted["YOLO_CONFIG_DIR"] = str(_ultralytics_config(cache))
    applied = {key: value for key, value in wanted.items() if key not in os.environ}
    if has_cache:
        applied.update(_offline_switches(cache, {**applied, **os.environ}, timeout))
    stale = _read_too_early(applied)
    if stale:
        raise KitError(
            f"{' and '.join(stale)} {'was' if len(stale) == 1 else 'were'} imported before cvkit.setup_notebook() and "
            "would not use the kit's cache: restart the kernel (or the program) and run the setup cell "
            "(cvkit.setup_notebook()) before importing gradio, transformers, huggingface_hub or ultralytics"
        )
    yolo = sys.modules.get("ultralytics.utils")
    if yolo is not None and ("ULTRALYTICS_SAFE_LOAD" in applied and not yolo.SAFE_LOAD):
        print("Note: ultralytics was imported before cvkit.setup_notebook(), so until the kernel restarts it loads "
              "checkpoints without its safe loading and may pip-install packages (the kit cache's files are still "
              "checked against its manifest)")
    os.environ.update(applied)
    shown = sorted(set(applied) - set(_ULTRALYTICS_SAFETY))
    if shown:
        print(f"Using the kit's weight cache at {cache} ({', '.join(shown)})")
    return applied


def _complete_in_cache(source: str, cache: Path) -> bool:
    path = weights_in_cache(source, cache)
    return _hf_snapshot(path) is not None if _kind(source) == "huggingface" else path.is_file()


def cache_problem(source: Any, cache: str | Path) -> str | None:
    """None when a kit cache folder holds a complete copy of the weights that reads, else what is wrong with it."""
    path = weights_in_cache(source, cache)
    if not path.exists():
        return "missing"
    if _kind(source) == "huggingface":
        snapshot = _hf_snapshot(path)
        return "incomplete (no snapshot with a config)" if snapshot is None else _damage(source, snapshot)
    if _kind(source) == "torchvision":  # torchvision names its files after the first hex digits of their sha256
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if digest.startswith(path.stem.rsplit("-", 1)[-1]) else "its checksum does not match its name"
    return _damage(source, path)


# ------------------------------------------------------------------ manifest


def model_files(source: Any, cache: str | Path) -> list[Path]:
    """The files a library reads for these weights from a kit cache: the weights file (for ultralytics also the fonts
    it draws with), or every file of a Hugging Face model's snapshot."""
    cache = Path(cache)
    path = weights_in_cache(source, cache)
    if _kind(source) == "huggingface":
        snapshot = _hf_snapshot(path)
        return [] if snapshot is None else sorted(p for p in snapshot.rglob("*") if p.is_file())
    if not path.is_file():
        return []
    fonts = sorted((cache / "ultralytics" / "Ultralytics").glob("*.ttf")) if _kind(source) == "ultralytics" else []
    return [path, *fonts]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(cache: Path) -> dict[str, Any] | None:
    """The models of the cache's manifest ({weights name: entry}), or None when there is none that reads."""
    try:
        models = json.loads((cache / MANIFEST_NAME).read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return models if isinstance(models, dict) else None


def write_manifest(cache: str | Path, sources: Iterable[Any]) -> Path:
    """Write the cache's manifest: every file of each model (model_files) with its size and SHA-256, and each Hugging
    Face model's revision (commit). Entries of other models still in the cache are kept. Returns its path."""
    cache = Path(cache)
    models = _read_manifest(cache) or {}
    for source in sources:
        files = model_files(source, cache)
        if not files or (weights_name(source) in models and manifest_problem(source, cache) is None):
            continue  # nothing there, or listed already as it is
        entry: dict[str, Any] = {"files": {file.relative_to(cache).as_posix(): {"size": file.stat().st_size,
                                                                                "sha256": _sha256(file)}
                                           for file in files}}
        if _kind(source) == "huggingface":
            entry["revision"] = _hf_snapshot(weights_in_cache(source, cache)).name
        elif _kind(source) == "torchvision":
            entry["url"] = _torchvision(source).url
        models[weights_name(source)] = entry
    models = {name: entry for name, entry in models.items() if model_files(name, cache)}  # drop what is gone
    target = cache / MANIFEST_NAME
    part = cache / f".{MANIFEST_NAME}.{os.getpid()}.part"
    try:
        part.write_text(json.dumps({"format": 1, "models": models}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _matches(file: Path, want: dict[str, Any], verified: dict[str, list[Any]]) -> bool:
    """Whether `file` has the size and SHA-256 `want`s; a file verified before (same size, mtime and ctime, in
    `verified`, which this updates) is not hashed again."""
    info = file.stat()
    if info.st_size != want.get("size"):
        return False
    key, seen = str(file.resolve()), [info.st_size, info.st_mtime_ns, info.st_ctime_ns, want.get("sha256")]
    if verified.get(key) == seen:
        return True
    if _sha256(file) != want.get("sha256"):
        return False
    verified[key] = seen
    return True


def manifest_problem(source: Any, cache: str | Path) -> str | None:
    """None when the model's files in a kit cache are exactly those its manifest lists, else the first difference.

    A file verified once is remembered by its size and times in this user's own folder (not in the cache, which may
    be read-only), so a 4.5 GB model is hashed once per machine.
    """
    cache = Path(cache)
    models = _read_manifest(cache)
    if models is None:
        return f"the cache has no readable {MANIFEST_NAME}"
    entry = models.get(weights_name(source))
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        return f"{MANIFEST_NAME} does not list it"
    if _kind(source) == "huggingface":
        snapshot = _hf_snapshot(weights_in_cache(source, cache))
        if snapshot is None or snapshot.name != entry.get("revision"):
            return f"its refs/main names another revision than the {entry.get('revision')} that was fetched"
    present = {file.relative_to(cache).as_posix(): file for file in model_files(source, cache)}
    listed = entry["files"]
    memory = _user_dir() / "verified.json"
    try:
        verified = json.loads(memory.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        verified = {}
    known = dict(verified)
    try:
        for name in sorted(set(present) | set(listed)):
            if name not in listed:
                return f"{name} is not in {MANIFEST_NAME}"
            if name not in present:
                return f"{name} is missing"
            if not _matches(present[name], listed[name], verified):
                return f"{name} differs from the file that was fetched"
        return None
    finally:
        if verified != known:  # remembered for the next start; when that fails, the files are hashed again then
            part = memory.with_name(f".verified.{os.getpid()}.part")
            try:
                part.write_text(json.dumps(verified), encoding="utf-8")
                os.replace(part, memory)
            except OSError:
                part.unlink(missing_ok=True)


def _kit_cache_of(path: Path) -> Path | None:
    """The kit cache that `path` lies in (the kit's own folder, or a folder holding a manifest), else None."""
    path, own = Path(path).resolve(), kit_cache_dir()
    return next((folder for folder in (path, *path.parents) if folder == own or (folder / MANIFEST_NAME).is_file()),
                None)


# ------------------------------------------------------------- availability


def why_unreachable(host: str, timeout: float) -> str | None:
    """None if a TCP connection to host:443 opens within `timeout` (name lookup included), else why not."""
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
        except OSError as err:
            found["error"] = err

    worker = threading.Thread(target=lookup, daemon=True)  # getaddrinfo itself has no time limit
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return f"its name did not resolve within {timeout:g} s (no network?)"
    if "error" in found:
        return "its name could not be resolved (no network?)"
    family, kind, proto, _, address = found["addresses"][0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
        return None
    except TimeoutError:
        return f"it did not answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)


def _unpublished(source: str) -> str | None:
    """For an ultralytics weights name that is no file here: why, if ultralytics publishes no asset of that name."""
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    name = Path(source).name
    if name in GITHUB_ASSETS_NAMES:
        return None
    published = (asset for asset in GITHUB_ASSETS_NAMES if asset.endswith(".pt"))
    return f"ultralytics publishes no weights called {name}, and there is no such file here{_closest(name, published)}"


def _held_models(hub: Path) -> list[str]:
    """The ids of the Hugging Face models a hub-cache folder holds a snapshot of."""
    return sorted(repo.name[len("models--"):].replace("--", "/", 1) for repo in hub.glob("models--*")
                  if _hf_snapshot(repo) is not None)


def _why_missing(source: Any) -> str | None:
    """For weights that are not cached, a reason that no network can fix: a name the library does not publish, or a
    Hugging Face model missing from a kit cache the kit switched offline. None otherwise."""
    kind = _kind(source)
    if kind == "ultralytics":
        return _unpublished(source)
    if kind != "huggingface":
        return None
    from huggingface_hub import constants

    hub = Path(constants.HF_HUB_CACHE)
    cache = _kit_cache_of(hub)
    if cache is None or not constants.HF_HUB_OFFLINE:
        return None
    held = _held_models(hub)
    if source == SIGLIP_BASE:
        fix = "add it with `make weights WITH_BASE=1` on a connected machine, then copy the cache again"
    else:
        fix = (f"check the name{_closest(source, held).replace('it publishes', 'it holds')}; to download other "
               "models, set HF_HUB_OFFLINE=0 before the setup cell")
    return f"{source} is not in the kit cache at {cache}, which holds {', '.join(held) or 'no model'}: {fix}"


def _download_folder(source: Any) -> tuple[Path, str]:
    """Where the library would download these weights to, and what to do when that folder cannot be written."""
    kind = _kind(source)
    if kind == "torchvision":
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints", "set TORCH_HOME to a folder you can write"
    if kind == "ultralytics":  # ultralytics saves a weights file named without a folder in the working folder
        return Path(source).absolute().parent, "run from a folder you can write, or copy the weights file here"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE), "set HF_HOME to a folder you can write"


def _unwritable(folder: Path) -> bool:
    """True when `folder`, or the nearest folder above it that exists, cannot be written by this process."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return not os.access(existing, os.W_OK)


def _cannot_download_into(source: Any) -> str | None:
    """Why the library could not save these weights where it would download them (a read-only folder), or None."""
    folder, fix = _download_folder(source)
    if not _unwritable(folder):
        return None
    cache = _kit_cache_of(folder)
    if cache is not None:
        fix = (f"the kit cache at {cache} is read-only: add the model to it with `make weights` where it was made, "
               "or set CVKIT_CACHE to a writable copy")
    return f"{weights_name(source)} is not cached and cannot be saved in {folder}, which cannot be written: {fix}"


def locate_weights(source: Any, timeout: float = 5.0) -> Path | None:
    """Say where the weights will come from and return their cached path (None: to be downloaded).

    Weights in a kit cache are checked against its manifest first (before anything loads them). Raises a one-line
    KitError when they differ from it, when the library publishes no weights of that name, or when they are neither
    cached nor downloadable (no network, a kit cache that lacks them, a folder that cannot be written).
    """
    name = weights_name(source)
    path = cached_weights(source)
    if path is not None:
        cache = _kit_cache_of(path)
        if cache is not None and (problem := manifest_problem(source, cache)) is not None:
            raise KitError(
                f"{name} in the kit cache at {cache} does not match the cache's manifest ({problem}); nothing was "
                "loaded: copy the cache again from where `make weights` made it, or run `make weights` there again"
            )
        print(f"{name}: cached at {path}" + (" (its files match the cache's manifest)" if cache is not None else ""))
        return path
    reason = _why_missing(source) or _cannot_download_into(source)
    if reason is not None:
        raise KitError(reason)
    host = weights_host(source)
    offline = [key for key in ("HF_HUB_OFFLINE", "YOLO_OFFLINE") if os.environ.get(key, "").lower() in ("1", "true")]
    if _kind(source) == "huggingface" and "HF_HUB_OFFLINE" in offline:
        reason = "HF_HUB_OFFLINE is set (the kit sets it when a weight cache is in use or there is no network)"
    else:
        reason = why_unreachable(host, timeout)
    if reason is not None:
        raise KitError(
            f"{name} is not cached and cannot be downloaded from {host}: {reason}. "
            "Run `make weights` on a connected machine, or copy its .cache/ folder here (see README)."
        )
    print(f"{name}: not cached yet, will be downloaded from {host} on first load")
    return None


# ------------------------------------------------------------- load errors


def _damage(source: Any, path: Path) -> str | None:
    """What is wrong with cached weights at `path` (a file or a model folder), or None if they read correctly."""
    kind = _kind(source)
    try:
        if kind == "torchvision":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif kind == "ultralytics":
            with zipfile.ZipFile(path) as archive:  # a torch checkpoint is a zip archive with checksums
                bad = archive.testzip()
            if bad is not None:
                return f"{bad} inside it fails its checksum"
        else:
            from safetensors import safe_open

            for config in path.glob("*.json"):
                json.loads(config.read_text(encoding="utf-8"))
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            if not weights:
                return "it holds no weights file (an interrupted download?)"
            for file in weights:
                if file.suffix == ".bin":  # a torch checkpoint: a zip archive, whose directory sits at its very end
                    zipfile.ZipFile(file).close()
                else:
                    with safe_open(str(file), framework="pt"):
                        pass
    except Exception as err:  # whatever the reader raises, the file does not read
        return _first_line(err)
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160].strip() if text else type(err).__name__


@contextmanager
def explain_oom(hint: str | None = None) -> Iterator[None]:
    """Turn CUDA out-of-memory inside the block into a one-line KitError that says what to change."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        torch.cuda.empty_cache()
        advice = hint or "use a smaller batch (half of it, say), then run the cell again"
        raise KitError(f"the GPU ran out of memory: {advice}") from err


@contextmanager
def explain_load_errors(source: Any) -> Iterator[None]:
    """Turn a failed load of these weights into one KitError line when a missing or damaged file caused it.

    Every other error (a typo in the cell, a wrong argument) passes through unchanged.
    """
    name = weights_name(source)
    with explain_oom(f"free memory (Runtime > Restart session) or use a smaller model than {name}"):
        try:
            yield
        except KitError:
            raise
        except Exception as err:
            path = cached_weights(source)
            if path is None:
                if not isinstance(err, OSError):  # network failures are OSErrors in all three libraries
                    raise
                reason = _why_missing(source) or (
                    _cannot_download_into(source) if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else None)
                if reason is not None:
                    raise KitError(reason) from err
                raise KitError(
                    f"{name} could not be downloaded ({_first_line(err)}); check the network, or copy a prepared "
                    "cache here (see README)"
                ) from err
            problem = _damage(source, path)
            if problem is None:
                raise
            if _kind(source) == "huggingface":
                path = next((p for p in path.parents if p.name.startswith("models--")), path)
            raise KitError(
                f"the cached {name} at {path} is damaged or incomplete ({problem}); delete it and run the cell "
                "again to download it afresh"
            ) from err
