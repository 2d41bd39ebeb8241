"""Test set-up for the whole suite, notebooks included.

Before anything runs, stand-in models (real architectures, random weights) are written into a temporary copy of
each library's cache, the libraries are told to stay offline, and every process of the run (pytest and nbval's
kernels, which inherit this environment) refuses and logs any connection beyond this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NONET = ROOT / "tests" / "nonet"


def pytest_configure(config):
    if hasattr(config, "workerinput") or os.environ.get("CVKIT_STANDINS_ROOT"):
        return
    root = Path(tempfile.mkdtemp(prefix="cvkit-test-"))
    config.cvkit_root = root
    offline = {
        "CVKIT_REAL_CACHE": os.environ.get("CVKIT_CACHE") or str(ROOT / ".cache"),  # for the real-weights tier
        "CVKIT_STANDINS_ROOT": str(root),
        "CVKIT_NET_LOG": str(root / "network-attempts.log"),
        "CVKIT_CACHE": str(root / "cvkit-cache"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "YOLO_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(NONET), os.environ.get("PYTHONPATH")])),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    os.environ.update(offline)
    from nonet import netguard  # noqa: F401  (guards this process; kernels get it through sitecustomize)

    # Build the stand-ins in a child process, so that no library here reads its cache settings before they are set.
    build = subprocess.run(
        [sys.executable, "-c", "import json, sys; from standins import install_all; "
         "print(json.dumps(install_all(__import__('pathlib').Path(sys.argv[1]))))", str(root)],
        cwd=ROOT / "tests", capture_output=True, text=True,
    )
    if build.returncode != 0:
        raise pytest.UsageError("could not build the stand-in models:\n" + build.stderr[-3000:])
    os.environ.update(json.loads(build.stdout.strip().splitlines()[-1]))


def pytest_sessionfinish(session, exitstatus):
    root = getattr(session.config, "cvkit_root", None)
    if root is None:
        return
    log = root / "network-attempts.log"
    if log.exists() and log.read_text().strip():
        print("\nNetwork attempts during the tests (all refused):\n" + log.read_text(), file=sys.stderr)
        session.exitstatus = 1
    shutil.rmtree(root, ignore_errors=True)


_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] = _NOTEBOOK_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("notebook execution time (stand-in models)")
        for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{seconds:6.1f} s  {path}")


@pytest.fixture
def offline_attempts():
    """For tests of what happens offline: a function listing the (refused) network attempts made since the test
    began, which the run then does not count as a failure (every other attempt does)."""
    log = Path(os.environ["CVKIT_NET_LOG"])
    before = log.read_text() if log.exists() else ""

    def attempts() -> list[str]:
        return (log.read_text() if log.exists() else "")[len(before):].splitlines()

    yield attempts
    log.write_text(before)


@pytest.fixture(scope="module")
def pil_open_left_as_found():
    """For modules that import ultralytics, which replaces PIL.Image.open for the whole process: put back what was
    there afterwards, so later test modules see plain Pillow."""
    from PIL import Image

    found = Image.open
    yield
    Image.open = found
