"""`make demo` in an offline classroom: started as a user starts it, it loads every tab's model from the kit cache.

The demo runs in a fresh process whose environment is a user's (PATH, a home folder) plus CVKIT_CACHE pointing at a
cache laid out as `make weights` leaves it (this run's stand-ins passing for real weights, and the manifest), with
the network refused (tests/nonet). The test session's own settings (HF_HOME, TORCH_HOME, ...) are not passed on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cvkit
import httpx
import pytest
from standins import copy_to_kit_cache

ROOT = Path(__file__).resolve().parents[1]
NONET = ROOT / "tests" / "nonet"
EVERY_MODEL = [*cvkit.weights.LAB_WEIGHTS.values(), *(source for more in cvkit.weights.MORE_WEIGHTS.values() for source in more)]
TABS = {"classify": "ResNet18_Weights.IMAGENET1K_V1", "detect": "yolo11n.pt",
        "zero-shot": "google/siglip2-so400m-patch14-384"}


@pytest.fixture(scope="module")
def kit_cache(tmp_path_factory) -> Path:
    cache = copy_to_kit_cache(tmp_path_factory.mktemp("offline") / "cache", keep_marker=False)
    cvkit.weights.write_manifest(cache, EVERY_MODEL)
    return cache


def user_env(folder: Path, **extra: str) -> dict[str, str]:
    """A user's environment: PATH, a home and a temporary folder of its own, the kit (PYTHONPATH) and the network
    guard, whose refusals go to folder/network.log."""
    for name in ("home", "tmp"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(folder / "home"), "TMPDIR": str(folder / "tmp"),
            "PYTHONPATH": os.pathsep.join([str(NONET), str(ROOT / "notebooks")]),
            "CVKIT_NET_LOG": str(folder / "network.log"), **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, api_name: str) -> list:
    """Call one of the page's events through Gradio's HTTP API, as the page does; return its outputs."""
    event = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": []}, timeout=30).json()["event_id"]
    with httpx.stream("GET", f"{url}gradio_api/call/{api_name}/{event}", timeout=300) as answer:
        lines = list(answer.iter_lines())
    kinds = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    data = [line.split(": ", 1)[1] for line in lines if line.startswith("data: ")]
    assert kinds[-1] == "complete", lines
    return json.loads(data[-1])


def test_importing_the_demo_imports_no_library_that_reads_its_settings_at_import(tmp_path):
    code = ("import sys, cvkit.demo\n"
            "print([m for m in ('gradio', 'huggingface_hub', 'transformers', 'ultralytics') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], env=user_env(tmp_path), cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr[-2000:]


def test_make_demo_in_a_clean_environment_loads_every_tab_from_the_kit_cache_offline(kit_cache, tmp_path):
    port = free_port()
    env = user_env(tmp_path, CVKIT_CACHE=str(kit_cache))
    server = subprocess.Popen([sys.executable, "-m", "cvkit.demo", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url, statuses = f"http://127.0.0.1:{port}/", {}
    try:
        stop = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < stop:
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for tab in TABS:
            statuses[tab] = call(url, f"status_{tab.replace('-', '_')}")[0]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        output = server.communicate(timeout=30)[0]
    assert (f"Using the kit's weight cache at {kit_cache} (HF_HOME, HF_HUB_OFFLINE, TORCH_HOME, YOLO_CONFIG_DIR, "
            "YOLO_OFFLINE)") in output.splitlines(), output[-3000:]
    for tab, source in TABS.items():
        assert statuses[tab].startswith(f"`{source}` ready"), (tab, statuses[tab], output[-3000:])
        assert f"{source}: cached at {cvkit.weights.weights_in_cache(source, kit_cache)}" in output, output[-3000:]
    assert output.count("(its files match the cache's manifest)") == 3
    assert not (tmp_path / "network.log").exists(), (tmp_path / "network.log").read_text()
