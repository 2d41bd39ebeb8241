"""The real-weights tier (`pytest -m realweights`), and offline tests of its skip logic and machinery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from realweights import real_env, real_weights_or_reason
from standins import copy_to_kit_cache

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "realweights.py"
REAL_CACHE = Path(os.environ["CVKIT_REAL_CACHE"])


def _run_check(labs: list[int], cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, labs)], env=real_env(cache),
                          cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=1800)


@pytest.mark.realweights
@pytest.mark.parametrize("lab", [1, 2, 3])
def test_real_weights_meet_the_manifests_expectations(lab):
    reason = real_weights_or_reason(lab, REAL_CACHE)
    if reason is not None:
        pytest.skip(reason)
    result = _run_check([lab], REAL_CACHE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_real_tier_without_weights_skips_saying_how_to_get_them(tmp_path):
    reason = real_weights_or_reason(1, tmp_path)
    assert reason.startswith("no real ResNet18_Weights.IMAGENET1K_V1 in") and "make weights" in reason


def test_real_tier_refuses_a_stand_in(tmp_path):
    assert "stand-in with random weights" in real_weights_or_reason(1, copy_to_kit_cache(tmp_path, [1]))


def test_real_tier_accepts_weights_without_the_stand_in_marker(tmp_path):
    assert real_weights_or_reason(1, copy_to_kit_cache(tmp_path, [1], keep_marker=False)) is None


def test_real_env_points_every_library_at_the_given_cache_offline(tmp_path):
    env = real_env(tmp_path)
    assert env["TORCH_HOME"] == str(tmp_path / "torch") and env["HF_HOME"] == str(tmp_path / "huggingface")
    assert "YOLO_CONFIG_DIR" not in env and env["CVKIT_CACHE"] == str(tmp_path)  # use_kit_cache sets it
    assert env["HF_HUB_OFFLINE"] == env["YOLO_OFFLINE"] == "1" and "CVKIT_STANDINS_ROOT" not in env


@pytest.fixture(scope="module")
def posing_check(tmp_path_factory) -> subprocess.CompletedProcess:
    """The real tier's check of every lab, in one child process, on the stand-ins posing as the real weights."""
    return _run_check([1, 2, 3], copy_to_kit_cache(tmp_path_factory.mktemp("posing"), keep_marker=False))


def test_real_tier_check_of_random_weights_fails_without_a_traceback(posing_check):
    assert posing_check.returncode == 1, posing_check.stdout[-3000:] + posing_check.stderr[-3000:]
    assert "Traceback" not in posing_check.stderr


@pytest.mark.parametrize("lab", [1, 2, 3])
def test_real_tier_check_runs_each_lab_and_names_its_unmet_expectations(lab, posing_check):
    misses = [line for line in posing_check.stdout.splitlines() if line.startswith(f"MISS lab {lab}: ")]
    assert misses, posing_check.stdout[-3000:] + posing_check.stderr[-3000:]
