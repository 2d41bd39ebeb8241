"""`make run` (scripts/run_notebooks.py): it stops at once, in a few lines, when weights can be neither found nor fetched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_run_offline_without_weights_stops_before_running_anything(tmp_path, offline_attempts):
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"),
               YOLO_CONFIG_DIR=str(tmp_path / "yolo"), CVKIT_CACHE=str(tmp_path / "cache"))
    env.pop("HF_HUB_OFFLINE")
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), "--out", str(tmp_path / "build")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Cannot run the labs: their pretrained weights are missing."
    assert [line.split(":")[0] for line in lines[1:]] == ["lab 1", "lab 2", "lab 3"]
    assert all("cannot be downloaded from" in line for line in lines[1:]) and "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists()
    assert len(offline_attempts()) == 3
