"""The offline classroom: `make weights` fills one cache folder and writes its manifest, and the kit points every
library at it, checks a model's files against the manifest before loading them, and says what is wrong in one line.

use_kit_cache is tested in fresh processes, as a notebook's kernel or `make demo` calls it: the libraries read its
settings once, when first imported.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cvkit
import pytest
from cvkit import weights as kit_weights
from standins import copy_to_kit_cache

ROOT = Path(__file__).resolve().parents[1]
NONET = ROOT / "tests" / "nonet"
LIBRARY_VARS = ("TORCH_HOME", "HF_HOME", "YOLO_CONFIG_DIR", "HF_HUB_OFFLINE", "YOLO_OFFLINE", "ULTRALYTICS_SAFE_LOAD",
                "YOLO_AUTOINSTALL", "CVKIT_CACHE", "XDG_CACHE_HOME")
EVERY_MODEL = [*kit_weights.LAB_WEIGHTS.values(), *(source for more in kit_weights.MORE_WEIGHTS.values() for source in more)]
SO400M, CLIP = "google/siglip2-so400m-patch14-384", "openai/clip-vit-base-patch32"


@pytest.fixture(autouse=True)
def own_user_folder(tmp_path, monkeypatch):
    """The kit's per-user folder (verified files, ultralytics settings) in this test's folder, not the real home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


@pytest.fixture(scope="module")
def _made_kit_cache(tmp_path_factory) -> Path:
    cache = copy_to_kit_cache(tmp_path_factory.mktemp("made") / "cache", keep_marker=False)
    kit_weights.write_manifest(cache, EVERY_MODEL)
    return cache


@pytest.fixture
def kit_cache(tmp_path, _made_kit_cache) -> Path:
    """A kit cache as `make weights` leaves it: every model (the stand-ins, passing for real ones) and the manifest.
    Its files are hard links to one copy made for the module: a test that changes a file in place first gives it a
    copy of its own (_own_copy)."""
    return Path(shutil.copytree(_made_kit_cache, tmp_path / "cache", symlinks=True, copy_function=os.link))


def _own_copy(file: Path) -> Path:
    """Replace a hard link of kit_cache by a copy of its own, with its times."""
    copy = file.with_name(file.name + ".copy")
    shutil.copy2(file, copy)
    copy.replace(file)
    return file


def _fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This run's environment without the library settings the session set: a user's shell, offline (guarded)."""
    env = {key: value for key, value in os.environ.items() if key not in LIBRARY_VARS}
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(_empty(tmp_path / "tmp")), **extra)
    return env


def _empty(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _python(code: str, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _use_kit_cache(tmp_path: Path, cache: Path, probe: str | None = "no probe", **env: str) -> dict[str, str]:
    """What use_kit_cache(cache) sets in a fresh process. `probe`: what the network probe answers (None: the host is
    reachable, a text: why not); 'no probe' fails the call if the network is probed at all."""
    answer = ("def probe(host, timeout): raise SystemExit(f'probed {host}')" if probe == "no probe"
              else f"def probe(host, timeout): return {probe!r}")
    code = (f"import json, sys, cvkit\nfrom cvkit import weights\n{answer}\nweights.why_unreachable = probe\n"
            "print(json.dumps(weights.use_kit_cache(sys.argv[1])))")
    result = _python(code, _fresh_env(tmp_path, **env), tmp_path, str(cache))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _fetch(cache: Path, *args: str) -> subprocess.CompletedProcess:
    """`make weights` (scripts/fetch_weights.py) into `cache`, in this process: what it returned and printed."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        returncode = _fetch_weights_module().main(["--cache", str(cache), *args])
    return subprocess.CompletedProcess("fetch_weights", returncode, stdout.getvalue(), stderr.getvalue())


def _fetch_weights_module():
    spec = importlib.util.spec_from_file_location("fetch_weights", ROOT / "scripts" / "fetch_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _contents(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _manifest(cache: Path) -> dict:
    return json.loads((cache / kit_weights.MANIFEST_NAME).read_text())["models"]


def _code_running_checkpoint(path: Path, marker: Path) -> Path:
    """A torch checkpoint (a zip archive holding a pickle, as a .pt file is) whose unpickling creates `marker`."""

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"model": RunsCode()}, protocol=2))
        archive.writestr("archive/version", "3\n")
    return path


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The KitError a child process printed as `KitError: ...` (its last line of output)."""
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines and lines[-1].startswith("KitError: "), result.stdout[-2000:] + result.stderr[-2000:]
    return lines[-1][len("KitError: "):]


LOCATE = """
import sys, cvkit
cvkit.setup_notebook()
try:
    cvkit.locate_weights(sys.argv[1])
except cvkit.KitError as err:
    print(f"KitError: {err}")
    raise SystemExit(1)
"""


# ------------------------------------------------------------------ pointing the libraries at the cache


def test_use_kit_cache_without_a_cache_sets_only_ultralytics_safe_loading_and_no_auto_install(tmp_path):
    assert _use_kit_cache(tmp_path, tmp_path / "nothing") == {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}


def test_use_kit_cache_points_torch_and_hugging_face_into_the_cache(tmp_path):
    (tmp_path / "torch").mkdir()
    applied = _use_kit_cache(tmp_path, tmp_path, probe=None)
    assert applied["TORCH_HOME"] == str(tmp_path / "torch") and applied["HF_HOME"] == str(tmp_path / "huggingface")


def test_use_kit_cache_leaves_variables_the_user_set(tmp_path):
    (tmp_path / "torch").mkdir()
    assert "TORCH_HOME" not in _use_kit_cache(tmp_path, tmp_path, probe=None, TORCH_HOME="/somewhere/else")


def test_use_kit_cache_with_every_lab_cached_goes_offline_without_probing_the_network(tmp_path, kit_cache):
    applied = _use_kit_cache(tmp_path, kit_cache)
    assert applied["HF_HUB_OFFLINE"] == applied["YOLO_OFFLINE"] == "1"


def test_use_kit_cache_does_not_switch_a_library_offline_that_the_user_pointed_elsewhere(tmp_path, kit_cache):
    applied = _use_kit_cache(tmp_path, kit_cache, HF_HOME=str(tmp_path / "my-hf"),
                             YOLO_CONFIG_DIR=str(tmp_path / "my-yolo"))
    assert "HF_HUB_OFFLINE" not in applied and "YOLO_OFFLINE" not in applied
    assert applied["TORCH_HOME"] == str(kit_cache / "torch")


def test_use_kit_cache_with_a_model_missing_and_no_network_goes_offline(tmp_path):
    (tmp_path / "huggingface").mkdir()
    assert _use_kit_cache(tmp_path, tmp_path, probe="no network")["HF_HUB_OFFLINE"] == "1"


def test_use_kit_cache_with_a_model_missing_and_the_network_up_stays_online(tmp_path):
    (tmp_path / "huggingface").mkdir()
    assert "HF_HUB_OFFLINE" not in _use_kit_cache(tmp_path, tmp_path, probe=None)


def test_use_kit_cache_probes_nothing_when_offline_mode_is_already_chosen(tmp_path):
    (tmp_path / "huggingface").mkdir()
    (tmp_path / "ultralytics").mkdir()
    assert "HF_HUB_OFFLINE" not in _use_kit_cache(tmp_path, tmp_path, HF_HUB_OFFLINE="1", YOLO_OFFLINE="1")


def test_use_kit_cache_writes_nothing_inside_the_cache(tmp_path, kit_cache):
    before = _contents(kit_cache)
    _use_kit_cache(tmp_path, kit_cache)
    assert _contents(kit_cache) == before


def test_each_library_finds_the_weights_where_the_kit_cache_keeps_them(tmp_path, kit_cache):
    code = ("import json, sys, cvkit.weights as kit_weights; kit_weights.use_kit_cache(sys.argv[1]); "
            "print(json.dumps({s: str(kit_weights.cached_weights(s)) for s in kit_weights.LAB_WEIGHTS.values()}))")
    result = _python(code, _fresh_env(tmp_path), tmp_path, str(kit_cache))
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for source, path in found.items():
        expected = kit_weights.weights_in_cache(source, kit_cache)
        assert path == str(expected) or Path(path).parent.parent == expected, (source, path)


def test_use_kit_cache_refuses_when_huggingface_hub_was_imported_with_other_settings(tmp_path, kit_cache):
    code = "import huggingface_hub.constants, cvkit, cvkit.weights as kit_weights\ntry:\n    kit_weights.use_kit_cache()\nexcept cvkit.KitError as err:\n" \
           "    print(f'KitError: {err}')"
    result = _python(code, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path)
    assert _one_line_error(result).startswith("huggingface_hub was imported before cvkit.setup_notebook()")
    assert "restart the kernel" in result.stdout


def test_use_kit_cache_refuses_when_ultralytics_was_imported_with_its_own_settings(tmp_path, kit_cache):
    code = "import ultralytics, cvkit, cvkit.weights as kit_weights\ntry:\n    kit_weights.use_kit_cache()\nexcept cvkit.KitError as err:\n" \
           "    print(f'KitError: {err}')"
    result = _python(code, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache), YOLO_OFFLINE="1"), tmp_path)
    assert _one_line_error(result).startswith("ultralytics was imported before cvkit.setup_notebook()")


def test_use_kit_cache_says_when_ultralytics_was_imported_without_its_safe_loading(tmp_path):
    code = "import ultralytics, cvkit\ncvkit.setup_notebook()"
    result = _python(code, _fresh_env(tmp_path, CVKIT_CACHE=str(tmp_path / "none"), YOLO_OFFLINE="1"), tmp_path)
    assert result.stdout.splitlines()[-1].startswith("Note: ultralytics was imported before cvkit.setup_notebook(), "
                                                     "so until the kernel restarts it loads checkpoints without its "
                                                     "safe loading")


def test_use_kit_cache_called_again_after_the_libraries_loaded_with_its_settings_is_fine(tmp_path, kit_cache):
    code = ("import cvkit, cvkit.weights\ncvkit.setup_notebook()\nimport huggingface_hub.constants, ultralytics\n"
            "print('again:', cvkit.weights.use_kit_cache())")
    result = _python(code, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path)
    assert result.returncode == 0 and "again: {}" in result.stdout, result.stderr[-2000:]


def test_ultralytics_settings_live_in_a_folder_only_the_user_can_write_and_nothing_goes_to_the_temp_folder(
        tmp_path, kit_cache):
    code = ("import os, cvkit\ncvkit.setup_notebook()\nfrom ultralytics import YOLO\nYOLO('yolo11n.pt')\n"
            "print('config:', os.environ['YOLO_CONFIG_DIR'])")
    env = _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache))
    result = _python(code, env, tmp_path)
    config = Path(result.stdout.split("config: ")[-1].strip())
    user_folder = tmp_path / "home" / ".cache" / "cvkit"
    assert user_folder in config.parents, result.stdout + result.stderr[-2000:]
    assert stat.S_IMODE(user_folder.stat().st_mode) == 0o700
    assert json.loads((config / "Ultralytics" / "settings.json").read_text())["weights_dir"] == \
        str(kit_cache / "ultralytics" / "weights")
    assert list(Path(env["TMPDIR"]).iterdir()) == []


def test_the_user_folder_is_made_private_when_it_was_not(tmp_path):
    folder = tmp_path / "user-cache" / "cvkit"
    folder.mkdir(parents=True, mode=0o777)
    folder.chmod(0o777)
    assert kit_weights._user_dir() == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_cvkit_cache_with_a_tilde_means_the_home_folder(monkeypatch):
    monkeypatch.setenv("CVKIT_CACHE", "~/cvkit-cache")
    assert cvkit.env.kit_cache_dir() == Path.home().resolve() / "cvkit-cache"


def test_a_name_lookup_that_hangs_is_cut_off_by_the_timeout(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(3))
    assert "did not resolve within 0.2 s" in kit_weights.why_unreachable("example.org", timeout=0.2)


# ------------------------------------------------------------------ the manifest


def test_the_manifest_lists_every_file_of_each_model_with_its_size_and_sha256(kit_cache):
    models = _manifest(kit_cache)
    assert set(models) == set(EVERY_MODEL)
    for source in EVERY_MODEL:
        files = kit_weights.model_files(source, kit_cache)
        assert files and set(models[source]["files"]) == {f.relative_to(kit_cache).as_posix() for f in files}
        for file in files:
            entry = models[source]["files"][file.relative_to(kit_cache).as_posix()]
            assert entry == {"size": file.stat().st_size, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}


def test_the_manifest_records_each_hugging_face_models_revision(kit_cache):
    for source in (SO400M, CLIP):
        commit = (kit_weights.weights_in_cache(source, kit_cache) / "refs" / "main").read_text().strip()
        assert _manifest(kit_cache)[source]["revision"] == commit


def test_the_manifest_covers_the_fonts_ultralytics_draws_with(kit_cache):
    assert "ultralytics/Ultralytics/Arial.ttf" in _manifest(kit_cache)["yolo11n.pt"]["files"]


def test_weights_that_match_the_manifest_are_located_in_the_cache(tmp_path, kit_cache):
    result = _python(LOCATE, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path, "yolo11n.pt")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert f"yolo11n.pt: cached at {kit_cache / 'ultralytics' / 'weights' / 'yolo11n.pt'} (its files match" \
        in result.stdout


def test_a_tampered_yolo_checkpoint_is_refused_in_one_line_before_anything_unpickles_it(tmp_path, kit_cache):
    marker = tmp_path / "the-pickle-ran"
    weights = kit_cache / "ultralytics" / "weights" / "yolo11n.pt"
    weights.unlink()
    _code_running_checkpoint(weights, marker)
    code = LOCATE + "from ultralytics import YOLO\nYOLO(sys.argv[1])\n"  # the lab's cell: locate, then load
    result = _python(code, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path, "yolo11n.pt")
    message = _one_line_error(result)
    assert message.startswith(f"yolo11n.pt in the kit cache at {kit_cache} does not match the cache's manifest "
                              "(ultralytics/weights/yolo11n.pt differs from the file that was fetched)")
    assert "copy the cache again" in message and "Traceback" not in result.stderr
    assert not marker.exists()


def test_yolo_checkpoints_load_with_ultralytics_safe_loading_so_a_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "the-pickle-ran"
    evil = _code_running_checkpoint(tmp_path / "evil.pt", marker)
    code = ("import sys, cvkit\ncvkit.setup_notebook()\nfrom ultralytics import YOLO\n"
            "try:\n    YOLO(sys.argv[1])\nexcept Exception as err:\n    print('refused:', type(err).__name__)")
    result = _python(code, _fresh_env(tmp_path, YOLO_OFFLINE="1"), tmp_path, str(evil))
    assert "refused: " in result.stdout, result.stdout + result.stderr[-2000:]
    assert not marker.exists()


def test_a_file_not_in_the_manifest_is_refused(tmp_path, kit_cache):
    folder = next((kit_cache / "huggingface" / "hub" / "models--openai--clip-vit-base-patch32" / "snapshots").iterdir())
    (folder / "extra.bin").write_bytes(b"not fetched by make weights")
    result = _python(LOCATE, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path, CLIP)
    assert "extra.bin is not in weights-manifest.json" in _one_line_error(result)


def test_a_cache_without_a_manifest_says_to_run_make_weights_again(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[2], keep_marker=False)
    result = _python(LOCATE, _fresh_env(tmp_path, CVKIT_CACHE=str(cache)), tmp_path, "yolo11n.pt")
    message = _one_line_error(result)
    assert "the cache has no readable weights-manifest.json" in message and "run `make weights`" in message


def test_a_file_verified_once_is_not_hashed_again_until_it_changes(kit_cache, monkeypatch):
    hashed = []
    real_sha256 = kit_weights._sha256
    monkeypatch.setattr(kit_weights, "_sha256", lambda path: hashed.append(path.name) or real_sha256(path))
    weights = _own_copy(kit_cache / "ultralytics" / "weights" / "yolo11n.pt")
    before = _contents(kit_cache)
    assert kit_weights.manifest_problem("yolo11n.pt", kit_cache) is None and "yolo11n.pt" in hashed
    hashed.clear()
    assert kit_weights.manifest_problem("yolo11n.pt", kit_cache) is None and hashed == []
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert kit_weights.manifest_problem("yolo11n.pt", kit_cache) is None and hashed == ["yolo11n.pt"]
    assert _contents(kit_cache) == before  # remembered in the user's own folder, not in the cache
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "cvkit" / "verified.json").is_file()


def test_a_changed_file_of_the_same_size_and_time_as_a_verified_one_is_hashed_again(kit_cache):
    weights = _own_copy(kit_cache / "ultralytics" / "weights" / "yolo11n.pt")
    assert kit_weights.manifest_problem("yolo11n.pt", kit_cache) is None
    info = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))  # size and mtime as before; ctime tells
    assert kit_weights.manifest_problem("yolo11n.pt", kit_cache) == \
        "ultralytics/weights/yolo11n.pt differs from the file that was fetched"


# ------------------------------------------------------------------ messages that name the real mistake


def test_a_hugging_face_model_the_kit_cache_lacks_says_so_and_how_to_add_it(tmp_path, kit_cache, offline_attempts):
    result = _python(LOCATE, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path, kit_weights.SIGLIP_BASE)
    assert _one_line_error(result) == (
        f"{kit_weights.SIGLIP_BASE} is not in the kit cache at {kit_cache}, which holds {SO400M}, {CLIP}: add it with "
        "`make weights WITH_BASE=1` on a connected machine, then copy the cache again")
    assert offline_attempts() == []


def test_another_hugging_face_id_the_kit_cache_lacks_gets_the_closest_it_holds(tmp_path, kit_cache):
    result = _python(LOCATE, _fresh_env(tmp_path, CVKIT_CACHE=str(kit_cache)), tmp_path, "openai/clip-vit-base-patch16")
    message = _one_line_error(result)
    assert message.startswith("openai/clip-vit-base-patch16 is not in the kit cache at")
    assert f"check the name (the closest it holds: {CLIP}" in message


def _read_only(folder: Path, code: str, env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh process that sees `folder` read-only: for root (whom permissions do not stop) through a
    read-only bind mount in a mount namespace of its own, else by taking away the write permission."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")] if not path.is_symlink()}
        for path in modes:
            path.chmod(stat.S_IMODE(modes[path]) & ~0o222)
        try:
            return _python(code, env, cwd, *args)
        finally:
            for path, mode in modes.items():
                path.chmod(stat.S_IMODE(mode))
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "sh", "-c", remount, str(folder), "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"root here cannot make a read-only mount (unshare -m): {probe.stderr.decode()[:200]}")
    return subprocess.run(["unshare", "-m", "sh", "-c", remount, str(folder), sys.executable, "-c", code, *args],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_model_missing_from_a_read_only_cache_says_the_cache_cannot_be_written(tmp_path):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[3], keep_marker=False)  # no ResNet-18 in it
    kit_weights.write_manifest(cache, EVERY_MODEL)
    code = ("import sys, cvkit\nfrom cvkit import weights\nweights.why_unreachable = lambda host, timeout: None\n"
            + LOCATE.split("\n", 2)[2])  # the network is up: only the folder stops the download
    result = _read_only(cache, code, _fresh_env(tmp_path, CVKIT_CACHE=str(cache)), tmp_path,
                        "ResNet18_Weights.IMAGENET1K_V1")
    assert _one_line_error(result) == (
        f"ResNet18_Weights.IMAGENET1K_V1 is not cached and cannot be saved in {cache / 'torch' / 'hub' / 'checkpoints'}"
        f", which cannot be written: the kit cache at {cache} is read-only: add the model to it with `make weights` "
        "where it was made, or set CVKIT_CACHE to a writable copy")


def test_a_read_only_torch_home_says_so_and_what_to_set(tmp_path):
    torch_home = _empty(tmp_path / "torch-home")
    code = ("import sys, cvkit\nfrom cvkit import weights\nweights.why_unreachable = lambda host, timeout: None\n"
            + LOCATE.split("\n", 2)[2])
    result = _read_only(torch_home, code, _fresh_env(tmp_path, TORCH_HOME=str(torch_home)), tmp_path,
                        "ResNet18_Weights.IMAGENET1K_V1")
    assert _one_line_error(result) == (
        f"ResNet18_Weights.IMAGENET1K_V1 is not cached and cannot be saved in {torch_home / 'hub' / 'checkpoints'}, "
        "which cannot be written: set TORCH_HOME to a folder you can write")


# ------------------------------------------------------------------ make weights


def test_fetch_weights_offline_names_each_missing_model_and_its_host(tmp_path, offline_attempts):
    result = _fetch(tmp_path / "cache")
    assert result.returncode == 1
    for source, host in [("ResNet18_Weights.IMAGENET1K_V1", "download.pytorch.org"), ("yolo11n.pt", "github.com"),
                         (SO400M, "huggingface.co"),
                         ("ResNet50_Weights.IMAGENET1K_V2", "download.pytorch.org"), ("yolo11s.pt", "github.com"),
                         ("FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1", "download.pytorch.org"),
                         (CLIP, "huggingface.co")]:
        assert f"{source}: cannot reach {host}" in result.stderr
    assert "Traceback" not in result.stderr
    assert _manifest(tmp_path / "cache") == {}  # a manifest of nothing: no weights beside it
    assert len(offline_attempts()) == 3  # one refused look-up per host, no retries


def test_fetch_weights_downloads_nothing_already_complete_and_lists_it_in_the_manifest(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[2, 3], keep_marker=False)
    result = _fetch(cache)
    for source in ("yolo11n.pt", SO400M, "yolo11s.pt", CLIP):
        assert f"{source}: already in the cache" in result.stdout
    assert [a.split(": ", 1)[1] for a in offline_attempts()] == ["name lookup of download.pytorch.org"]  # ResNets
    assert set(_manifest(cache)) == {"yolo11n.pt", "yolo11s.pt", SO400M, CLIP}
    assert f"Manifest: {cache / kit_weights.MANIFEST_NAME}" in result.stdout


def test_fetch_weights_fetches_again_a_file_that_differs_from_the_manifest(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[2], keep_marker=False)
    kit_weights.write_manifest(cache, ["yolo11n.pt"])
    weights = cache / "ultralytics" / "weights" / "yolo11n.pt"
    with zipfile.ZipFile(weights, "a") as archive:  # still a readable checkpoint, but not the one fetched
        archive.writestr("archive/extra", "added later")
    result = _fetch(cache)
    assert "yolo11n.pt: removing the damaged copy" in result.stdout and "differs from the file that was fetched" \
        in result.stdout
    assert "yolo11n.pt" not in _manifest(cache)


def test_fetch_weights_replaces_a_resnet_file_whose_checksum_does_not_match_its_name(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[1], keep_marker=False)  # random weights: hash cannot match
    result = _fetch(cache)
    assert "removing the damaged copy" in result.stdout and "checksum does not match" in result.stdout
    assert kit_weights.cache_problem("ResNet18_Weights.IMAGENET1K_V1", cache) == "missing"
    assert "ResNet18_Weights.IMAGENET1K_V1" not in _manifest(cache)


def test_fetch_weights_with_base_offline_adds_one_line_for_the_smaller_model(tmp_path, offline_attempts):
    result = _fetch(tmp_path, "--with-base")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{kit_weights.SIGLIP_BASE}: cannot reach huggingface.co" in result.stderr


def test_fetch_weights_says_in_one_line_when_the_file_system_cannot_hold_files_over_4_gb(tmp_path, monkeypatch):
    fetch_weights = _fetch_weights_module()

    def too_large(source, cache):
        try:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
        except OSError as err:
            raise RuntimeError("the download broke off") from err  # as a library wraps the file system's error

    monkeypatch.setattr(fetch_weights, "fetch_huggingface", too_large)
    problem = fetch_weights.fetch(SO400M, tmp_path, {"huggingface.co": None})
    assert problem == (f"{SO400M}: the cache's file system cannot hold files over 4 GB (FAT32?): SigLIP 2 so400m's "
                       "weights are one file of about 4.5 GB; use a drive formatted exFAT or ext4")


def test_fetch_weights_fetches_only_the_files_transformers_loads():
    clip_files = [".gitattributes", "README.md", "config.json", "flax_model.msgpack", "merges.txt", "model.safetensors",
                  "preprocessor_config.json", "pytorch_model.bin", "special_tokens_map.json", "tf_model.h5",
                  "tokenizer.json", "tokenizer_config.json", "vocab.json"]
    wanted = _fetch_weights_module().files_to_fetch(clip_files)
    assert "model.safetensors" in wanted and "tokenizer.json" in wanted and "config.json" in wanted
    assert not {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"} & set(wanted)


def test_fetch_weights_keeps_pickled_weights_where_a_repository_has_no_safetensors():
    assert "pytorch_model.bin" in _fetch_weights_module().files_to_fetch(["config.json", "pytorch_model.bin"])


def test_every_torchvision_file_the_kit_fetches_carries_its_sha256_prefix_in_its_name():
    from torchvision.models import get_weight

    for source in (s for s in EVERY_MODEL if "_Weights." in s):
        assert re.fullmatch(r"\w+-[0-9a-f]{8,}\.pth", Path(get_weight(source).url).name), source
