"""Execute every lab notebook headless into build/ (executed .ipynb and HTML), printing each one's wall time.

Before running anything it checks that each lab's weights are cached (and, in a kit cache, match its manifest) or
can be downloaded, and stops with one short message per missing or differing model otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NEEDS_LABS = {4: (1, 2, 3), 5: (1, 2, 3)}  # notebooks 04 and 05 use the models of labs 1, 2 and 3


def preflight(labs: list[int]) -> list[str]:
    """One message per lab whose weights are neither cached nor reachable, or differ from the kit cache's manifest."""
    import cvkit

    cvkit.weights.use_kit_cache()  # the kernels inherit what it sets
    problems = []
    for lab in labs:
        try:
            cvkit.locate_weights(cvkit.weights.LAB_WEIGHTS[lab])
        except cvkit.KitError as err:
            problems.append(f"lab {lab}: {err}")
    return problems


def execute(path: Path, out_dir: Path, timeout: int) -> float:
    """Run one notebook in its own folder; write the executed copy and its HTML to out_dir; return seconds."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    finally:
        elapsed = time.perf_counter() - start
        nbformat.write(nb, out_dir / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args()

    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    numbers = {int(p.name[:2]) for p in paths if p.name[:2].isdigit()}
    labs = sorted({lab for n in numbers for lab in NEEDS_LABS.get(n, (n,))})
    problems = preflight(labs)
    if problems:
        print("\nCannot run the labs: their pretrained weights are missing.", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1

    from nbclient.exceptions import CellExecutionError

    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in paths:
        try:
            seconds = execute(path, args.out, args.timeout)
            print(f"{path.name}: ok in {seconds:.1f} s -> {args.out / path.name}")
        except CellExecutionError as err:
            failed += 1
            last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            print(f"{path.name}: FAILED ({last}); see {args.out / path.with_suffix('.html').name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
