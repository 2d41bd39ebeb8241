"""`make run` (scripts/run_notebooks.py) stops at once, in a few lines, when weights can be neither found nor fetched;
`make lab` starts JupyterLab, also as root."""

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


def test_make_lab_starts_jupyterlab_also_as_root(tmp_path):
    """`make lab` adds --allow-root where the user is root (a container, a cloud VM), where Jupyter refuses otherwise."""
    import selectors
    import time

    server = subprocess.Popen(["make", "-s", "lab", "LAB_ARGS=--no-browser --ServerApp.port=0 --ServerApp.ip=127.0.0.1"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_DATA_DIR=str(tmp_path)),
                              start_new_session=True)
    output, started = "", False
    try:
        watch = selectors.DefaultSelector()
        watch.register(server.stdout, selectors.EVENT_READ)
        stop = time.monotonic() + 120
        while not started and server.poll() is None and time.monotonic() < stop:
            if watch.select(timeout=1):
                line = server.stdout.readline()
                output += line
                started = "is running at" in line
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert started, output[-2000:]
