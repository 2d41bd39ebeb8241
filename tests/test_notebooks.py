"""The committed notebooks: clean, Colab-ready, and a setup cell that installs only what Colab lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_HAS = {"torch", "torchvision", "numpy", "pillow", "matplotlib", "transformers", "opencv-python", "ipykernel"}
sys.path.insert(0, str(ROOT / "scripts"))


def _cells(path: Path, kind: str = "code") -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def _run_setup_cell(path: Path, monkeypatch, colab: bool) -> list[list[str]]:
    """Execute the notebook's first code cell, recording instead of running its commands."""
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(list(cmd)) or SimpleNamespace(returncode=0))
    monkeypatch.setattr(os, "chdir", lambda path: None)
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    exec(compile(_cells(path)[0], str(path), "exec"), {"__name__": "__main__"})
    return calls


def test_there_are_three_labs():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert dirty == [], f"cells {dirty} carry outputs: outputs made with stand-in models would mislead students"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_and_colab_badge(path):
    first = _cells(path, "markdown")[0]
    assert first.startswith("# Lab ")
    assert f"colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/{path.name}" in first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_summary_and_exercises(path):
    text = "\n".join(_cells(path, "markdown")[-2:])
    assert "## Summary" in text and "## Exercises" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_outside_colab_runs_no_command(path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert _run_setup_cell(path, monkeypatch, colab=False) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_in_colab_clones_the_kit_and_installs_only_what_colab_lacks(path, monkeypatch):
    calls = _run_setup_cell(path, monkeypatch, colab=True)
    assert calls[0][:2] == ["git", "clone"] and "https://github.com/OWNER/REPO" in calls[0]
    installed = [arg.split("=")[0].split("<")[0].split(">")[0].lower()
                 for cmd in calls[1:] if "install" in cmd for arg in cmd[cmd.index("install") + 1:] if not arg.startswith("-")]
    assert not set(installed) & COLAB_HAS, f"reinstalls what Colab has: {installed}"


def test_stamp_colab_rewrites_badges_and_repo_constant():
    from stamp_colab import stamp

    text = _cells(NOTEBOOKS[0], "markdown")[0] + "\n" + _cells(NOTEBOOKS[0])[0]
    stamped = stamp(text, "uni-cv/lab-kit")
    assert "OWNER/REPO" not in stamped
    assert "github/uni-cv/lab-kit/blob/main/notebooks/" in stamped and 'REPO = "uni-cv/lab-kit"' in stamped
    assert stamp(stamped, "other/kit") == stamp(text, "other/kit")
