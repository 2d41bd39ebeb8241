"""The offline classroom: `make weights` fills one cache folder, and the kit points every library at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _fetch(cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_weights.py"), "--cache", str(cache)],
                          capture_output=True, text=True, timeout=300)


def test_use_kit_cache_without_a_cache_changes_nothing(tmp_path, clean_env):
    assert cvkit.use_kit_cache(tmp_path / "nothing") == {}
    assert not any(key in os.environ for key in LIBRARY_VARS)


def test_use_kit_cache_points_torch_hugging_face_and_ultralytics_at_the_cache(tmp_path, clean_env):
    (tmp_path / "torch").mkdir()
    clean_env.setattr(kit_weights, "_reachable", lambda host, timeout: None)
    applied = cvkit.use_kit_cache(tmp_path)
    assert applied == {"TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "huggingface"),
                       "YOLO_CONFIG_DIR": str(tmp_path / "ultralytics")}
    assert os.environ["TORCH_HOME"] == str(tmp_path / "torch")


def test_use_kit_cache_leaves_variables_the_user_set(tmp_path, clean_env):
    (tmp_path / "torch").mkdir()
    clean_env.setenv("TORCH_HOME", "/somewhere/else")
    clean_env.setattr(kit_weights, "_reachable", lambda host, timeout: None)
    assert "TORCH_HOME" not in cvkit.use_kit_cache(tmp_path)
    assert os.environ["TORCH_HOME"] == "/somewhere/else"


def test_use_kit_cache_without_network_switches_the_libraries_offline(tmp_path, clean_env):
    (tmp_path / "huggingface").mkdir()
    clean_env.setattr(kit_weights, "_reachable", lambda host, timeout: "no network")
    applied = cvkit.use_kit_cache(tmp_path)
    assert applied["HF_HUB_OFFLINE"] == applied["YOLO_OFFLINE"] == "1"


def test_use_kit_cache_repoints_ultralytics_at_a_cache_copied_elsewhere(tmp_path, clean_env):
    settings = tmp_path / "ultralytics" / "Ultralytics" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"weights_dir": "/old/machine/.cache/ultralytics/weights", "sync": False}))
    clean_env.setattr(kit_weights, "_reachable", lambda host, timeout: None)
    cvkit.use_kit_cache(tmp_path)
    values = json.loads(settings.read_text())
    assert values == {"weights_dir": str(tmp_path / "ultralytics" / "weights"), "sync": False}


@pytest.mark.parametrize("lab", [1, 2, 3])
def test_cache_status_tells_missing_stand_in_and_real_apart(tmp_path, lab):
    assert cvkit.cache_status(lab, tmp_path / "a") == ("missing", None)
    status, path = cvkit.cache_status(lab, copy_to_kit_cache(tmp_path / "b", [lab]))
    assert status == "stand-in" and path.exists()
    status, path = cvkit.cache_status(lab, copy_to_kit_cache(tmp_path / "c", [lab], keep_marker=False))
    assert status == "real" and path.exists()


def test_fetch_weights_offline_names_each_missing_model_and_its_host(tmp_path, offline_attempts):
    result = _fetch(tmp_path / "cache")
    assert result.returncode == 1
    for host in ("download.pytorch.org", "github.com", "huggingface.co"):
        assert f"cannot reach {host}" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == []
    assert len(offline_attempts()) == 3  # one refused look-up per host, no retries


def test_fetch_weights_never_keeps_a_stand_in(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache")
    result = _fetch(cache)
    assert result.stdout.count("removing the stand-in") == 3
    assert [cvkit.cache_status(lab, cache)[0] for lab in (1, 2, 3)] == ["missing"] * 3


def test_fetch_weights_downloads_nothing_already_complete(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[2, 3], keep_marker=False)
    result = _fetch(cache)
    assert "YOLO11n weights (yolo11n.pt): already in the cache" in result.stdout
    assert "google/siglip2-so400m-patch14-384): already in the cache" in result.stdout
    assert [a.split(": ", 1)[1] for a in offline_attempts()] == ["name lookup of download.pytorch.org"]


def test_fetch_weights_treats_a_resnet_file_with_the_wrong_hash_as_damaged(tmp_path, offline_attempts):
    cache = copy_to_kit_cache(tmp_path / "cache", labs=[1], keep_marker=False)  # random weights: hash cannot match
    result = _fetch(cache)
    assert "removing the damaged copy" in result.stdout
    assert cvkit.cache_status(1, cache) == ("missing", None)


def test_fetch_weights_with_base_offline_adds_one_line_for_the_smaller_model(tmp_path, offline_attempts):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_weights.py"), "--cache", str(tmp_path),
                             "--with-base"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "google/siglip2-base-patch16-224: cannot reach huggingface.co" in result.stderr
