"""Run all in Colab never waits on a person: the browser capture gives up by itself, and the notebooks ask for no camera;
the student edition that students run there fails only in its exercise cells, and its checks say "not yet".

Colab is faked as the setup cells' tests fake it: a `google.colab` module, and IPython's own transformer turning `!`
and `%` lines into calls (here of a shell that runs nothing). One thing more: `google.colab.output.eval_js` runs its
JavaScript in headless Chromium (the browser fixture of test_demo_browser.py), in a page whose camera permission prompt
is never answered (getUserMedia's promise never settles), and returns None once its `timeout_sec` has passed, as
Colab's does. Each notebook's student edition runs in full, once, in this process (stand-in models).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cvkit
import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from test_demo_browser import browser  # noqa: F401  (the module's Chromium: it skips or fails as that module says)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGE = "http://127.0.0.1:9/colab"  # served by the test itself; 127.0.0.1 is a secure origin, as Colab's is
STUB = ("<!doctype html><html><body><script>window.google = {colab: {output: {setIframeHeight: () => {}}}};"
        "</script></body></html>")
NEVER_ANSWERED = "navigator.mediaDevices.getUserMedia = () => new Promise(() => {});"
UNBOUNDED_WAIT_S = 20.0  # where eval_js is given no timeout_sec, Colab would wait for ever: the fake gives up then

pytestmark = [
    pytest.mark.usefixtures("pil_open_left_as_found"),  # the notebooks import ultralytics
    pytest.mark.standins("resnet", "yolo", "fasterrcnn", "siglip", "clip"),  # every notebook's models
]


@contextlib.contextmanager
def colab_page(browser):  # noqa: F811
    """A page standing in for Colab's output frame, its camera prompt never answered."""
    context = browser.new_context()
    context.add_init_script(NEVER_ANSWERED)
    context.route(PAGE, lambda route: route.fulfill(body=STUB, content_type="text/html"))
    page = context.new_page()
    page.goto(PAGE)
    try:
        yield page
    finally:
        context.close()


def fake_colab(page, monkeypatch) -> list:
    """Fake Colab whose eval_js runs in `page`; returns the list of its calls as (script, timeout_sec, seconds)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    calls = []

    def eval_js(script, ignore_result=False, timeout_sec=None):
        start = time.monotonic()
        page.evaluate("script => { window.reply = undefined; Promise.resolve(eval(script))"
                      ".then((value) => { window.reply = {value}; }); }", script)
        try:
            handle = page.wait_for_function("() => window.reply", timeout=1000 * (timeout_sec or UNBOUNDED_WAIT_S))
            answer = handle.json_value()["value"]
        except PlaywrightTimeout:
            if timeout_sec is None:
                raise AssertionError(f"eval_js without timeout_sec, no answer in {UNBOUNDED_WAIT_S} s: "
                                     "in Colab this would wait for ever") from None
            answer = None  # Colab's eval_js: None once timeout_sec has passed
        calls.append((script, timeout_sec, time.monotonic() - start))
        return answer

    def display(*objects, **kwargs):
        for shown in objects:
            if type(shown).__name__ == "Javascript":  # Colab runs it in the output frame
                page.add_script_tag(content=shown.data)

    output = ModuleType("google.colab.output")
    output.eval_js = eval_js
    colab = ModuleType("google.colab")
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr("IPython.display.display", display)
    return calls


@pytest.fixture
def page(browser):  # noqa: F811
    with colab_page(browser) as page:
        yield page


@pytest.fixture
def colab(page, monkeypatch):
    return fake_colab(page, monkeypatch)


def test_colab_camera_frame_gives_up_in_its_time_when_the_permission_prompt_is_never_answered(colab, capsys):
    start = time.monotonic()
    assert cvkit.colab_camera_frame(timeout_s=1) is None
    seconds = time.monotonic() - start
    [(_, timeout_sec, _)] = colab
    assert timeout_sec is not None and seconds < timeout_sec  # Python's own limit, not reached:
    assert capsys.readouterr().out == (  # the page gave up by itself, at its deadline
        "colab_camera_frame: no photo: no camera within 1 s (the browser did not get permission to use it).\n")


def test_a_camera_allowed_after_the_deadline_is_switched_off(page):
    page.evaluate("""() => {
        window.late = [];
        const track = {readyState: 'live', stop() { this.readyState = 'ended'; }};
        navigator.mediaDevices.getUserMedia = () => new Promise((resolve) => setTimeout(() => {
            window.late.push(track);
            resolve({getTracks: () => [track]});
        }, 300));
    }""")
    page.add_script_tag(content=cvkit.camera._TAKE_PHOTO_JS)
    assert page.evaluate("() => takePhoto(0.8, 100)").startswith("error:no camera within 0 s")
    page.wait_for_function("() => window.late.length === 1", timeout=5000)
    assert page.evaluate("() => window.late[0].readyState") == "ended"


# ------------------------------------------------------------- Run all, as in Colab
# What students open in Colab is the student edition (make student): its Run all is the one executed here.


def run_all_like_colab(nb, folder: Path, monkeypatch) -> list[dict]:
    """Execute every code cell of the notebook `nb` in one namespace, in `folder`, as Colab's IPython would (`!` and `%`
    lines recorded, not run); for each code cell its tags, what it printed and its error as (type name, message)."""
    shell = SimpleNamespace(system=lambda command: None, run_line_magic=lambda name, line: None)
    from IPython.display import display

    namespace = {"__name__": "__main__", "get_ipython": lambda: shell, "display": display}
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    ran = []
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # a setup cell may add to it
    environ = os.environ.copy()  # the setup cell's use of the kit's cache sets variables for the rest of the process
    for index, cell in enumerate(cells):
        code = compile(TransformerManager().transform_cell(cell.source), f"code cell {index + 1}", "exec")
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                exec(code, namespace)
        except Exception as err:  # every cell's error is reported, and the run goes on, as with Colab's Run all
            error = (type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        ran.append({"tags": cell.metadata.get("tags", []), "printed": printed.getvalue(), "error": error})
    os.environ.clear()
    os.environ.update(environ)
    app = namespace.get("app")
    if hasattr(app, "close"):
        app.close()  # the live demo's server
    import matplotlib.pyplot as plt

    plt.close("all")
    return ran


@pytest.fixture(scope="module")
def colab_run(request, browser):  # noqa: F811
    """A notebook's student edition run in fake Colab, once: (its cells run, the eval_js calls)."""
    from make_student import student_edition

    path = request.param
    student = student_edition(nbformat.read(path, as_version=4), path.name)
    with colab_page(browser) as page, pytest.MonkeyPatch.context() as monkeypatch:
        calls = fake_colab(page, monkeypatch)
        return run_all_like_colab(student, path.parent, monkeypatch), list(calls)


@pytest.mark.parametrize("colab_run", NOTEBOOKS, ids=lambda p: p.name, indirect=True)
def test_run_all_in_colab_fails_only_in_the_exercise_cells_each_asking_for_its_solution(colab_run):
    ran, _ = colab_run
    exercises = [cell["error"] for cell in ran if "exercise" in cell["tags"]]
    assert len(exercises) >= 2 and all(error is not None and error[0] == "NotImplementedError"
                                       and re.fullmatch(r"Exercise \w+: replace this line with your solution", error[1])
                                       for error in exercises), exercises
    assert [(i + 1, cell["error"]) for i, cell in enumerate(ran) if cell["error"] and "exercise" not in cell["tags"]] == []


@pytest.mark.parametrize("colab_run", NOTEBOOKS, ids=lambda p: p.name, indirect=True)
def test_run_all_in_colab_has_every_check_say_not_yet_without_an_answer(colab_run):
    ran, _ = colab_run
    checks = [cell["printed"] for cell in ran if "check" in cell["tags"]]
    assert checks and all(re.search(r"^Exercise \w+: not yet - \S", printed, re.MULTILINE)
                          and not re.search(r"^Exercise \w+: correct$", printed, re.MULTILINE) for printed in checks), checks


@pytest.mark.parametrize("colab_run", NOTEBOOKS, ids=lambda p: p.name, indirect=True)
def test_run_all_in_colab_asks_for_no_camera_with_the_switches_as_committed(colab_run):
    _, calls = colab_run
    assert [(script, timeout_sec, round(seconds, 1)) for script, timeout_sec, seconds in calls] == []
