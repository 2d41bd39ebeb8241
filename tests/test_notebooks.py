"""The committed notebooks: clean, Colab- and Kaggle-ready, with setup cells that install only what the platform lacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_HAS = {  # googlecolab/backend-info, pip-freeze.gpu.txt (see shared notes): what the setup cells must not replace
    "torch": "2.11.0", "torchvision": "0.26.0", "numpy": "2.1.3", "pillow": "11.3.0", "matplotlib": "3.10.0",
    "transformers": "5.15.0", "opencv-python": "5.0.0.93", "ipykernel": "6.17.1", "pandas": "2.2.3",
}


def _cells(path: Path, kind: str = "code") -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def _run_setup_cell(path: Path, monkeypatch, platform: str | None, repo: str = "uni-cv/lab-kit", cloned: bool = True):
    """Execute the notebook's setup cell as IPython would on `platform`, recording its shell and magic commands."""
    calls: list[tuple[str, str]] = []
    namespace: dict = {"__name__": "__main__"}
    shell = SimpleNamespace(system=lambda cmd: calls.append(("!", cmd.format(**namespace))),  # IPython expands {names}
                            run_line_magic=lambda name, line: calls.append((name, line.format(**namespace))))
    namespace["get_ipython"] = lambda: shell
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    if platform == "colab":
        monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    elif platform == "kaggle":
        monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(("chdir", path)))
    monkeypatch.setattr(os.path, "isdir", lambda path: cloned and any(cmd == "!" for cmd, _ in calls))
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = TransformerManager().transform_cell(_cells(path)[0].replace('"OWNER/REPO"', f'"{repo}"', 1))
    exec(compile(code, str(path), "exec"), namespace)
    return calls


def test_there_are_three_labs_the_closing_notebook_and_the_live_demo():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_on_a_local_machine_runs_no_command(path, monkeypatch):
    assert _run_setup_cell(path, monkeypatch, platform=None) == []


@pytest.mark.parametrize("platform, home", [("colab", "/content"), ("kaggle", "/kaggle/working")])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_on_a_platform_clones_the_kit_and_imports_it_from_there(path, platform, home, monkeypatch):
    calls = _run_setup_cell(path, monkeypatch, platform)
    assert calls[0] == ("!", f"git clone -q --depth 1 https://github.com/uni-cv/lab-kit {home}/cv-lab-kit")
    assert calls[-1] == ("chdir", f"{home}/cv-lab-kit/notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_visibly_and_nothing_colab_already_has(path, monkeypatch):
    installs = [line for name, line in _run_setup_cell(path, monkeypatch, "colab") if name == "pip"]
    assert len(installs) == 1 and installs[0].startswith("install ")
    for arg in re.findall(r'"[^"]+"|\S+', installs[0])[1:]:
        if arg.startswith("-"):
            continue
        requirement = Requirement(arg.strip('"'))
        has = COLAB_HAS.get(requirement.name.lower())
        assert has is None or requirement.specifier.contains(has), f"{arg} would replace Colab's {requirement.name} {has}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_of_an_unstamped_kit_says_in_one_line_what_to_do(path, monkeypatch):
    with pytest.raises(UsageError, match=r"^set REPO in this cell to the kit's GitHub repository") as info:
        _run_setup_cell(path, monkeypatch, "colab", repo="OWNER/REPO")
    assert "\n" not in str(info.value)


def test_setup_cell_says_so_when_the_clone_fails(monkeypatch):
    with pytest.raises(UsageError, match=r"could not clone github.com/uni-cv/lab-kit"):
        _run_setup_cell(NOTEBOOKS[0], monkeypatch, "kaggle", cloned=False)


def test_stamp_rewrites_colab_and_kaggle_badges_and_the_repo_constant():
    from stamp_colab import stamp

    text = _cells(NOTEBOOKS[0], "markdown")[0] + "\n" + _cells(NOTEBOOKS[0])[0]
    stamped = stamp(text, "uni-cv/lab-kit")
    assert stamped.count("OWNER/REPO") == 1 and 'REPO == "OWNER/REPO"' in stamped  # the unstamped-kit check stays
    assert "colab.research.google.com/github/uni-cv/lab-kit/blob/main/notebooks/" in stamped
    assert "src=https://github.com/uni-cv/lab-kit/blob/main/notebooks/" in stamped
    assert 'REPO = "uni-cv/lab-kit"' in stamped
    assert stamp(stamped, "other/kit") == stamp(text, "other/kit")


@pytest.mark.parametrize("url", ["git@github.com:uni-cv/lab-kit.git", "https://github.com/uni-cv/lab-kit.git",
                                 "https://github.com/uni-cv/lab-kit"])
def test_make_colab_takes_the_repository_from_the_origin_remote(url, monkeypatch):
    import stamp_colab

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=0, stdout=url + "\n"))
    assert stamp_colab.repo_from_git() == "uni-cv/lab-kit"
