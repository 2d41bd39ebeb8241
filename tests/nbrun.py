"""Execute a lab notebook from the tests, as committed or with some of its code changed as a student doing an exercise
would, and inspect its variables with code run after its last cell."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute_with(name: str, replace: dict[str, str], timeout: int = 600, then: str | None = None):
    """Run notebooks/<name> in its own folder after replacing each key by its value in the code cells; return it.

    Each key must occur in the code exactly once, so that a test cannot pass because the notebook changed under it.
    `then`: the source of a code cell run after the notebook's own, to save or inspect its variables (its output is
    the last cell's of the returned notebook).
    A failing cell raises nbclient's CellExecutionError, naming the cell and the error.
    """
    import nbformat
    from nbclient import NotebookClient

    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for old, new in replace.items():
        hits = [cell for cell in code if old in cell.source]
        count = sum(cell.source.count(old) for cell in hits)
        assert count == 1, f"{name}: expected {old!r} once in the code cells, found it {count} times"
        hits[0].source = hits[0].source.replace(old, new)
    if then is not None:
        nb.cells.append(nbformat.v4.new_code_cell(then))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def kept_run_path(name: str, then: str) -> Path:
    """Where nbval's run of notebooks/<name>, followed by `then`, is kept for the tests of this test run."""
    digest = hashlib.sha256(then.encode()).hexdigest()[:16]
    return Path(os.environ["CVKIT_STANDINS_ROOT"]) / "kept-runs" / f"{Path(name).stem}-{digest}.ipynb"


def executed(name: str, then: str):
    """notebooks/<name> run as committed, then `then` in its kernel: nbval's run of this test run where it ran it to
    the end (a test module asks for that with `pytest.mark.notebook_run(name, then)`, see conftest.py), else a run of
    its own (execute_with)."""
    import nbformat

    kept = kept_run_path(name, then)
    if kept.is_file():
        return nbformat.read(kept, as_version=4)
    return execute_with(name, {}, then=then)
