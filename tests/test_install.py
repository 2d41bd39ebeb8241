"""Installing the kit: the setup cells' one `%pip install`, what it brings to Colab, the wheel's data, and a package
of small modules with no import circle that exports what the notebooks use."""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "notebooks" / "cvkit"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line of a requirements or constraints file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(re.match(r"([\w.-]+)==([\w.+-]+)", line).groups() for line in lines if re.match(r"[\w.-]+==", line))


COLAB = {name.lower(): version for name, version in _pins(ROOT / ".ci" / "colab-constraints.txt").items()}
TESTED = {name.lower(): version for name, version in _pins(ROOT / "requirements.txt").items()}


def _setup_cell(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def _run_setup_cell(path: Path, kit_installed: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """Execute the setup cell as IPython would, with or without the kit installed: its magics, and what it called."""
    from IPython.core.inputtransformer2 import TransformerManager

    magics: list[tuple[str, str]] = []
    called: list[str] = []
    installed = {"done": kit_installed}
    fake_kit = SimpleNamespace(setup_notebook=lambda: called.append("setup_notebook"))

    def pip(name: str, line: str) -> None:
        magics.append((name, line))
        installed["done"] = True

    def import_(name, *args, **kwargs):
        if name == "cvkit":
            if not installed["done"]:
                raise ModuleNotFoundError("No module named 'cvkit'", name="cvkit")
            return fake_kit
        return builtins.__import__(name, *args, **kwargs)

    namespace = {"__builtins__": {**vars(builtins), "__import__": import_},
                 "get_ipython": lambda: SimpleNamespace(run_line_magic=pip)}
    exec(compile(TransformerManager().transform_cell(_setup_cell(path)), str(path), "exec"), namespace)
    return magics, called


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_where_the_kit_is_installed_installs_nothing_and_sets_up(path):
    assert _run_setup_cell(path, kit_installed=True) == ([], ["setup_notebook"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_without_the_kit_installs_it_from_the_repository_in_one_visible_pip(path):
    magics, called = _run_setup_cell(path, kit_installed=False)
    extra = "[demo]" if path.name.startswith("05") else ""
    assert magics == [("pip", f'install -q "cvkit{extra} @ git+https://github.com/OWNER/REPO"')]
    assert called == ["setup_notebook"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_is_short_enough_to_read(path):
    code = [line for line in _setup_cell(path).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 6, code


def _dependencies() -> list[Requirement]:
    extras = [dep for deps in PROJECT.get("optional-dependencies", {}).values() for dep in deps]
    return [Requirement(dep) for dep in [*PROJECT["dependencies"], *extras]]


@pytest.mark.parametrize("requirement", [r for r in _dependencies() if r.name.lower() in COLAB], ids=str)
def test_installing_the_kit_in_colab_keeps_the_version_colab_has(requirement):
    has = COLAB[requirement.name.lower()]
    assert requirement.specifier.contains(has), f"{requirement} would replace Colab's {requirement.name} {has}"


@pytest.mark.parametrize("requirement", [r for r in _dependencies() if r.name.lower() not in COLAB], ids=str)
def test_what_colab_lacks_comes_at_the_tested_version(requirement):
    tested = TESTED[requirement.name.lower()]
    assert str(requirement.specifier) == f"=={tested}", f"{requirement}: the tests ran on {tested}"


def test_torch_is_a_dependency_colab_keeps():
    assert "torch" in {r.name for r in _dependencies()} and "torch" in COLAB


def test_an_installed_wheel_finds_its_images_labels_and_a_cache_outside_itself(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                    str(ROOT)], check=True, timeout=120, capture_output=True)
    wheel = next((tmp_path / "dist").glob("cvkit-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, timeout=120, capture_output=True)
    probe = (
        "import json, cvkit, cvkit.env\n"
        "paths = [s.path for lab in (1, 2, 3) for s in cvkit.sample_images(lab)]\n"
        "print(json.dumps({'kit': cvkit.__file__, 'images': [str(p) for p in paths],\n"
        "  'missing': [str(p) for p in paths if not p.is_file()], 'labels': len(cvkit.read_labels('imagenet_classes.txt')),\n"
        "  'sets': sorted(cvkit.read_class_sets()), 'cache': str(cvkit.env.kit_cache_dir())}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "CVKIT_CACHE"}
    env.update(PYTHONPATH=str(tmp_path / "site"), HOME=str(tmp_path / "home"), XDG_CACHE_HOME="")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    site = tmp_path / "site"
    assert Path(found["kit"]).is_relative_to(site)
    assert found["images"] and found["missing"] == []
    assert not [p for p in found["images"] if Path(p).is_relative_to(ROOT / "data")]
    assert any(Path(p).is_relative_to(site / "cvkit" / "data" / "images") for p in found["images"])
    assert found["labels"] == 1000 and found["sets"] == ["expressions", "seasons", "subjects"]
    assert found["cache"] == str(tmp_path / "home" / ".cache" / "cvkit")


def _kit_imports(path: Path) -> set[str]:
    """The cvkit modules that `path` imports, at the top or inside functions (`from .x import ...`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
            and node.module}


def test_no_module_of_cvkit_imports_one_that_imports_it_back():
    graph = {path.stem: _kit_imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(name == target or (name not in seen and reaches(name, target, seen | {name}))
                   for name in graph.get(start, ()))

    circles = sorted(name for name in graph if reaches(name, name, {name}))
    assert circles == [], f"modules in an import circle: {circles}"


def test_every_module_cvkit_imports_from_exists():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    missing = {f"{path.name} imports .{name}" for path in PACKAGE.glob("*.py") for name in _kit_imports(path)
               if name.split(".")[0] not in modules}
    assert sorted(missing) == []


def test_cvkit_exports_what_the_notebooks_use_and_nothing_they_do_not():
    import cvkit

    used = {name for path in NOTEBOOKS for name in re.findall(r"\bcvkit\.(\w+)", path.read_text(encoding="utf-8"))}
    used -= {"demo"}  # a module, imported by name (`from cvkit import demo`)
    assert sorted(used - set(cvkit.__all__)) == []
    assert sorted(set(cvkit.__all__) - used - {"KitError"}) == []
    assert all(hasattr(cvkit, name) for name in cvkit.__all__)


def test_importing_cvkit_imports_no_library_that_reads_its_settings_at_import():
    code = "import sys, cvkit; print([m for m in ('torch', 'huggingface_hub', 'transformers', 'ultralytics', 'gradio') " \
           "if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_stamp_writes_the_repository_into_badges_and_the_install_line():
    from stamp_colab import stamp

    text = NOTEBOOKS[0].read_text(encoding="utf-8")
    stamped = stamp(text, "uni-cv/lab-kit")
    assert "OWNER/REPO" not in stamped
    assert "colab.research.google.com/github/uni-cv/lab-kit/blob/main/notebooks/" in stamped
    assert "src=https://github.com/uni-cv/lab-kit/blob/main/notebooks/" in stamped
    assert '\\"cvkit @ git+https://github.com/uni-cv/lab-kit\\"' in stamped
    assert stamp(stamped, "other/kit") == stamp(text, "other/kit")
