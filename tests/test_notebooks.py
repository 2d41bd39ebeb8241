"""The committed notebooks: without outputs, each linked from the README and opening with its Colab and Kaggle badges,
each ending as a handout does (summary, exercises, and for a lab a questionnaire); a lab's core fits a class hour and
what follows it is marked going further; student cells keep at most three asserts; `make colab` finds the repository.

The setup cells and what they install are specified in test_install.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path, kind: str = "code") -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def test_the_readme_links_every_notebook_and_only_notebooks_that_exist():
    linked = set(re.findall(r"notebooks/([0-9][0-9]_\w+\.ipynb)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert linked == {path.name for path in NOTEBOOKS} != set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert dirty == [], f"cells {dirty} carry outputs: outputs made with stand-in models would mislead students"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_and_colab_and_kaggle_badges(path):
    first = _cells(path, "markdown")[0]
    assert first.startswith("# Lab ")
    assert f"colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/{path.name}" in first
    assert f"kaggle.com/kernels/welcome?src=https://github.com/OWNER/REPO/blob/main/notebooks/{path.name}" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_summary_exercises_and_a_questionnaire(path):
    headings = [line for cell in _cells(path, "markdown") for line in cell.splitlines() if line.startswith("## ")]
    ending = ["## Summary", "## Exercises", "## Questionnaire"]
    assert headings[-len(ending):] == ending


@pytest.mark.parametrize("url", ["git@github.com:uni-cv/lab-kit.git", "https://github.com/uni-cv/lab-kit.git",
                                 "https://github.com/uni-cv/lab-kit"])
def test_make_colab_takes_the_repository_from_the_origin_remote(url, monkeypatch):
    import stamp_colab

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=0, stdout=url + "\n"))
    assert stamp_colab.repo_from_git() == "uni-cv/lab-kit"


# ------------------------------------------------------------------ the hour in class

LABS = [path for path in NOTEBOOKS if path.name < "04"]
GOING_FURTHER = re.compile(r"(?m)^#{2,3} .*going further", re.IGNORECASE)


def _words(markdown: str) -> int:
    """Words as a reader counts them: link targets and table rules left out."""
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", re.sub(r"\]\([^)]*\)", "]", markdown)))


def _core(path: Path) -> tuple[list[str], list[str]]:
    """The code cells and markdown text of a lab's core: everything before its first 'going further' heading."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code, text = [], []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        marked = GOING_FURTHER.search(source) if cell["cell_type"] == "markdown" else None
        if marked:
            text.append(source[:marked.start()])
            break
        (code if cell["cell_type"] == "code" else text).append(source)
    return code, text


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_the_core_of_a_lab_fits_a_class_hour_in_15_code_cells_and_about_1800_words(path):
    code, text = _core(path)
    assert code and code[0].startswith("# Setup") and len(code) <= 15, f"{len(code)} code cells in the core"
    assert sum(_words(piece) for piece in text) <= 1900


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_every_section_after_a_labs_core_is_marked_going_further(path):
    headings = re.findall(r"(?m)^## \d+\. .*$", "\n".join(_cells(path, "markdown")))
    first = next(i for i, heading in enumerate(headings) if GOING_FURTHER.match(heading))
    assert 5 <= first < len(headings) and all(GOING_FURTHER.match(heading) for heading in headings[first:])


def _student_code(path: Path) -> list[str]:
    """The code of every cell but the setup cell, as IPython runs it, without the exercises' solution blocks."""
    from IPython.core.inputtransformer2 import TransformerManager

    solutions = re.compile(r"(?ms)^[ \t]*### BEGIN SOLUTION$.*?^[ \t]*### END SOLUTION$")
    return [TransformerManager().transform_cell(solutions.sub("", cell)) for cell in _cells(path)[1:]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_cells_hold_at_most_three_asserts_each_saying_what_it_shows(path):
    import ast

    asserts = [node for code in _student_code(path) for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Assert)]
    assert len(asserts) <= 3, "what the test run must verify belongs in the tests, not in the student's cells"
    assert all(isinstance(node.msg, ast.Constant | ast.JoinedStr) for node in asserts), "each says what went wrong"
