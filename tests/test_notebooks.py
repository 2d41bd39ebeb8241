"""The committed notebooks: without outputs, each linked from the README and opening with its Colab and Kaggle badges,
each ending as a handout does (summary, exercises, and for a lab a questionnaire); `make colab` finds the repository.

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
