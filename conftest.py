"""Test set-up for the whole suite, notebooks included.

At start-up the libraries are pointed at a temporary folder for the run's stand-in models (real architectures,
random weights), told to stay offline, and every process of the run (pytest, its workers, nbval's kernels and any
subprocess: they inherit this environment) refuses and logs any connection beyond this machine. Each family of
stand-ins is built when the first test that needs it starts (`@pytest.mark.standins(...)`; a notebook needs the
models it loads), once per run, whichever worker comes first. The run fails if any process tried to reach the
network outside a test that expects it (the `offline_attempts` fixture).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NONET = ROOT / "tests" / "nonet"

# The stand-in families each notebook loads (tests/standins/); a notebook not listed here gets every family.
NOTEBOOK_STANDINS = {
    "01_image_classification.ipynb": ("resnet",),
    "02_object_detection.ipynb": ("yolo", "fasterrcnn"),
    "03_zero_shot_classification.ipynb": ("siglip", "clip"),
    "04_one_photo_three_models.ipynb": ("resnet", "yolo", "siglip"),
    "05_live_demo.ipynb": ("resnet", "yolo", "siglip"),
}
# The notebook each of these test modules inspects as committed (pytest.mark.notebook_run): it reads nbval's run.
INSPECTS = {
    "tests/test_classify.py": "notebooks/01_image_classification.ipynb",
    "tests/test_detect_notebook.py": "notebooks/02_object_detection.ipynb",
    "tests/test_zeroshot.py": "notebooks/03_zero_shot_classification.ipynb",
    "tests/test_one_photo.py": "notebooks/04_one_photo_three_models.ipynb",
    "tests/test_live_demo_notebook.py": "notebooks/05_live_demo.ipynb",
}

# The units of work that take 5 s or more (see unit_of_work), longest first (from 40 s down, on 2 cores, December
# 2026): handed out in this order, before the short ones, so that no worker is left running a long one at the end
# while the other has nothing to do.
LONGEST_FIRST = [
    "tests/test_cache.py", "notebooks/02_object_detection.ipynb", "notebooks/01_image_classification.ipynb",
    "tests/test_demo_browser.py", "notebooks/03_zero_shot_classification.ipynb", "tests/test_colab_camera.py",
    "tests/test_realweights.py", "tests/test_detect.py", "notebooks/04_one_photo_three_models.ipynb",
    "notebooks/05_live_demo.ipynb", "tests/test_demo.py", "tests/test_demo_offline.py",
    "tests/test_run_notebooks.py", "tests/test_network_guard.py", "tests/test_bench.py",
]


def pytest_configure(config):
    if hasattr(config, "workerinput") or os.environ.get("CVKIT_STANDINS_ROOT"):
        return  # an xdist worker, or a pytest run inside a test: the environment is set already
    from standins import environment

    root = Path(tempfile.mkdtemp(prefix="cvkit-test-"))
    config.cvkit_root = root
    (root / "network").mkdir()
    os.environ.update({
        "CVKIT_REAL_CACHE": os.environ.get("CVKIT_CACHE") or str(ROOT / ".cache"),  # for the real-weights tier
        "CVKIT_STANDINS_ROOT": str(root),
        "CVKIT_NET_LOG_DIR": str(root / "network"),
        "CVKIT_CACHE": str(root / "cvkit-cache"),
        "XDG_CACHE_HOME": str(root / "user-cache"),  # the kit's per-user files (verified hashes, ultralytics settings)
        "GRADIO_TEMP_DIR": str(root / "gradio"),  # the demo tests' uploads
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(NONET), os.environ.get("PYTHONPATH")])),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        **environment(root),
    })
    if config.getoption("numprocesses", None):
        # Workers already keep every core busy: a second torch thread per process (workers, kernels, subprocesses)
        # would only wait for a core, and OpenMP's waiting threads spin, which costs the run several times the CPU.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.pop("CVKIT_NET_LOG", None)  # a log file named by hand would take every process's attempts
    sys.path.insert(0, str(NONET))
    import netguard  # the others get it through sitecustomize

    netguard.guard()


def pytest_xdist_auto_num_workers(config):
    """With `-n auto`, no more workers than files named (--dist loadfile runs a file in one worker), none for one;
    xdist's own count for directories."""
    named = {arg.split("::", 1)[0] for arg in config.args}
    if all(Path(config.invocation_params.dir, path).is_file() for path in named):
        return min(len(named), os.cpu_count() or 1) if len(named) > 1 else 0
    return None


def standin_families(item) -> tuple[str, ...]:
    """The stand-in families a test needs: its `standins` markers (`pytestmark` of its module), or its notebook's
    entry above."""
    from standins import FAMILIES

    marks = list(item.iter_markers("standins"))
    if marks:
        return tuple(family for mark in marks for family in mark.args)
    if item.path.suffix == ".ipynb":
        return NOTEBOOK_STANDINS.get(item.path.name, FAMILIES)
    return ()


def _file_of(item) -> str:
    """The file of a test item, relative to the rootdir, as its node id names it."""
    return item.nodeid.split("::", 1)[0]


def unit_of_work(path: str) -> str:
    """The unit of work (under `--dist loadfile`) of a test file, given relative to the repository: the file, but a
    notebook and the test module that inspects its run (INSPECTS) are one, so that the module runs after nbval's run
    of the notebook, in the same worker, and reads it."""
    return INSPECTS.get(path, path)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` by unit_of_work, handed out in the order of the collection (pytest_collection_modifyitems:
    the longest first), not xdist's (the most tests first)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class UnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(super()._split_scope(nodeid))

    config.option.loadscopereorder = False
    return UnitScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Let the tests that inspect a notebook run as committed (`pytest.mark.notebook_run(notebook, then)`) read
    nbval's run instead of running the notebook again: after its last cell, an item of its own runs `then` in nbval's
    kernel and keeps the notebook with its outputs where `nbrun.executed` finds it. The notebooks run first."""
    nbval = sys.modules.get("nbval.plugin")  # not loaded with `-p no:nbval`: then there are no notebook cells
    notebook_cell = nbval.IPyNbCell if nbval else ()
    cells: dict[str, list] = {}
    for item in items:
        if isinstance(item, notebook_cell):
            cells.setdefault(item.path.name, []).append(item)
    inspected: dict[str, dict[str, list[str]]] = {}  # notebook -> then -> the modules that ask for it
    for item in items:
        mark = item.get_closest_marker("notebook_run")
        if mark is None:
            continue
        name, then = mark.args
        module = _file_of(item)
        if INSPECTS.get(module) != f"notebooks/{name}":
            raise pytest.UsageError(f"{module} inspects notebooks/{name}: say so in INSPECTS in conftest.py")
        modules = inspected.setdefault(name, {}).setdefault(then, [])
        if item.path.name not in modules:
            modules.append(item.path.name)
    notebooks = [item for name, found in cells.items() for item in [
        *found, *(kept_run(found, then, modules) for then, modules in inspected.get(name, {}).items())]]
    items[:] = notebooks + [item for item in items if not isinstance(item, notebook_cell)]
    units = [unit_of_work(_file_of(item)) for item in items]
    rank = {unit: LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST) for unit in units}
    items[:] = [item for _, item in sorted(zip(units, items, strict=True), key=lambda pair: rank[pair[0]])]


def kept_run(cells: list, then: str, modules: list[str]):
    """The item that keeps nbval's run of a notebook (its `cells`) for the test `modules` that inspect it."""
    from collections import defaultdict

    import nbformat

    return _kept_run_class().from_parent(
        cells[-1].parent, name=f"Cell {len(cells)}: kept for {', '.join(modules)}", cell_num=len(cells),
        cell=nbformat.v4.new_code_cell(then), options=defaultdict(bool, check=False), cells=cells, then=then)


@functools.cache
def _kept_run_class():
    import copy

    import nbformat
    from nbval.plugin import IPyNbCell

    class KeptRun(IPyNbCell):
        """After a notebook's last cell under nbval: run `then` in the same kernel, and keep the notebook, each cell
        with the outputs of this run, for the tests that inspect it (nbrun.executed)."""

        def __init__(self, *, cells, then, **kwargs):
            super().__init__(**kwargs)
            self.cells, self.then = cells, then

        def runtest(self):
            from nbrun import kept_run_path

            stopped = next((c.name for c in self.cells if c.test_outputs is None
                            or any(out.get("output_type") == "error" for out in c.test_outputs)), None)
            if stopped is not None:
                pytest.skip(f"nbval's run failed at {stopped}: the tests that inspect the notebook run it themselves")
            super().runtest()
            nb = copy.deepcopy(self.parent.nb)
            for cell, item in zip((c for c in nb.cells if c.cell_type == "code"), self.cells, strict=True):
                cell.outputs = item.test_outputs
            nb.cells.append(nbformat.v4.new_code_cell(self.then, outputs=self.test_outputs))
            path = kept_run_path(self.path.name, self.then)
            path.parent.mkdir(exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.partial")
            nbformat.write(nb, partial)
            partial.replace(path)

    return KeptRun


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Build the stand-ins the test needs before its fixtures (and a notebook's kernel) start."""
    from standins import ensure

    ensure(*standin_families(item))


def pytest_sessionfinish(session, exitstatus):
    root = getattr(session.config, "cvkit_root", None)
    if root is None:
        return
    from netguard import unexpected_attempts

    unexpected = unexpected_attempts(root / "network")
    if unexpected:
        print("\nNetwork attempts that no test expected (all refused):\n" + "\n".join(unexpected), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
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
def offline_attempts(request):
    """For tests of what happens offline: a function listing the (refused) network attempts made so far by this test
    and the processes it started (each `pid N: what`); the run does not count them as a failure."""
    from netguard import attempts_of, expect_attempts

    expect_attempts(request.node.nodeid)
    return lambda: attempts_of(request.node.nodeid)


@pytest.fixture(scope="module")
def pil_open_left_as_found():
    """For modules that import ultralytics, which replaces PIL.Image.open for the whole process: put back what was
    there afterwards, so later test modules see plain Pillow."""
    from PIL import Image

    found = Image.open
    yield
    Image.open = found
