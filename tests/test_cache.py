"""The offline classroom: `make weights` fills one cache folder, and the kit points every library at it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cvkit
import pytest
from cvkit import weights as kit_weights
from standins import copy_to_kit_cache

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_VARS = ("TORCH_HOME", "HF_HOME", "YOLO_CONFIG_DIR", "HF_HUB_OFFLINE", "YOLO_OFFLINE")


@pytest.fixture
def clean_env(monkeypatch):
    for key in LIBRARY_VARS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _no_probe(host, timeout):
    raise AssertionError(f"probed {host}")


def _fetch(cache: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_weights.py"), "--cache", str(cache), *args],
                          capture_output=True, text=True, timeout=300)


def _contents(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_use_kit_cache_without_a_cache_changes_nothing(tmp_path, clean_env):
    assert cvkit.use_kit_cache(tmp_path / "nothing") == {}
    assert not any(key in os.environ for key in LIBRARY_VARS)


def test_use_kit_cache_points_torch_and_hugging_face_into_the_cache(tmp_path, clean_env):
    (tmp_path / "torch").mkdir()
    clean_env.setattr(kit_weights, "why_unreachable", lambda host, timeout: None)
    applied = cvkit.use_kit_cache(tmp_path)
    assert applied == {"TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "huggingface")}


def test_use_kit_cache_leaves_variables_the_user_set(tmp_path, clean_env):
    (tmp_path / "torch").mkdir()
    clean_env.setenv("TORCH_HOME", "/somewhere/else")
    clean_env.setattr(kit_weights, "why_unreachable", lambda host, timeout: None)
    assert "TORCH_HOME" not in cvkit.use_kit_cache(tmp_path)
    assert os.environ["TORCH_HOME"] == "/somewhere/else"


def test_use_kit_cache_with_every_lab_cached_goes_offline_without_probing_the_network(tmp_path, clean_env):
    cache = copy_to_kit_cache(tmp_path / "cache", keep_marker=False)
    clean_env.setattr(kit_weights, "why_unreachable", _no_probe)
    applied = cvkit.use_kit_cache(cache)
    assert applied["HF_HUB_OFFLINE"] == applied["YOLO_OFFLINE"] == "1"


def test_use_kit_cache_with_a_model_missing_and_no_network_goes_offline(tmp_path, clean_env):
    (tmp_path / "huggingface").mkdir()
    clean_env.setattr(kit_weights, "why_unreachable", lambda host, timeout: "no network")
    applied = cvkit.use_kit_cache(tmp_path)
    assert applied["HF_HUB_OFFLINE"] == applied["YOLO_OFFLINE"] == "1"


def test_use_kit_cache_with_a_model_missing_and_the_network_up_stays_online(tmp_path, clean_env):
    (tmp_path / "huggingface").mkdir()
    clean_env.setattr(kit_weights, "why_unreachable", lambda host, timeout: None)
    assert "HF_HUB_OFFLINE" not in cvkit.use_kit_cache(tmp_path)


def test_use_kit_cache_writes_nothing_inside_the_cache(tmp_path, clean_env):
    cache = copy_to_kit_cache(tmp_path / "cache", keep_marker=False)
    before = _contents(cache)
    clean_env.setattr(kit_weights, "why_unreachable", _no_probe)
    cvkit.use_kit_cache(cache)
    assert _contents(cache) == before


def test_each_library_finds_the_weights_where_the_kit_cache_keeps_them(tmp_path, clean_env):
    cache = copy_to_kit_cache(tmp_path / "cache", keep_marker=False)
    code = ("import json, sys, cvkit; cvkit.use_kit_cache(sys.argv[1]); "
            "print(json.dumps({s: str(cvkit.cached_weights(s)) for s in cvkit.LAB_WEIGHTS.values()}))")
    result = subprocess.run([sys.executable, "-c", code, str(cache)], env=dict(os.environ), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for source, path in found.items():
        expected = cvkit.weights_in_cache(source, cache)
        assert path == str(expected) or Path(path).parent.parent == expected, (source, path)


def test_cvkit_cache_with_a_tilde_means_the_home_folder(monkeypatch):
    monkeypatch.setenv("CVKIT_CACHE", "~/cvkit-cache")
    assert cvkit.kit_cache_dir() == Path.home().resolve() / "cvkit-cache"


def test_a_name_lookup_that_hangs_is_cut_off_by_the_timeout(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: time.sleep(3))
    assert "did not resolve within 0.2 s" in cvkit.why_unreachable("example.org", timeout=0.2)


def test_fetch_weights_offline_names_each_missing_model_and_its_host(tmp_path, offline_attempts):
    result = _fetch(tmp_path / "cache")
    assert result.returncode == 1
    for source, host in [("ResNet18_Weights.IMAGENET1K_V1", "download.pytorch.org"), ("yolo11n.pt", "github.com"),
                         ("google/siglip2-so400m-patch14-384", "huggingface.co"),
                         ("ResNet50_Weights.IMAGENET1K_V2", "download.pytorch.org"), ("yolo11s.pt", "github.com"),
                         ("FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1", "download.pytorch.org"),
                         ("openai/clip-vit-base-patch32", "huggingface.co")]:
        assert f"{source}: cannot reach {host}" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == []
    assert len(offline_attempts()) == 3  # one refused look-up per host, no retries


def test_fetch_weights_downloads_nothing_already_complete(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[2, 3], keep_marker=False)
    result = _fetch(cache)
    assert "yolo11n.pt: already in the cache" in result.stdout
    assert "google/siglip2-so400m-patch14-384: already in the cache" in result.stdout
    assert "yolo11s.pt: already in the cache" in result.stdout
    assert "openai/clip-vit-base-patch32: already in the cache" in result.stdout
    assert [a.split(": ", 1)[1] for a in offline_attempts()] == ["name lookup of download.pytorch.org"]  # ResNets


def test_fetch_weights_replaces_a_resnet_file_whose_checksum_does_not_match(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[1], keep_marker=False)  # random weights: hash cannot match
    result = _fetch(cache)
    assert "removing the damaged copy" in result.stdout and "checksum does not match" in result.stdout
    assert cvkit.cache_problem("ResNet18_Weights.IMAGENET1K_V1", cache) == "missing"


def test_fetch_weights_with_base_offline_adds_one_line_for_the_smaller_model(tmp_path, offline_attempts):
    result = _fetch(tmp_path, "--with-base")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "google/siglip2-base-patch16-224: cannot reach huggingface.co" in result.stderr


def test_use_kit_cache_probes_nothing_when_offline_mode_is_already_chosen(tmp_path, clean_env):
    (tmp_path / "huggingface").mkdir()
    clean_env.setenv("HF_HUB_OFFLINE", "1")
    clean_env.setenv("YOLO_OFFLINE", "1")
    clean_env.setattr(kit_weights, "why_unreachable", _no_probe)
    assert "HF_HUB_OFFLINE" not in cvkit.use_kit_cache(tmp_path)
