"""Check that a venv is Colab's runtime: its Python and every installed package that the constraints file names.

Usage: VENV/bin/python .ci/check_colab_versions.py .ci/colab-constraints.txt  (exit 1, listing each difference)
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

COLAB_PYTHON = (3, 13)  # googlecolab/backend-info, os-info-gpu.txt of 2026-08-19


def pinned(constraints: Path) -> dict[str, str]:
    """The `name==version` lines of a constraints file, by name."""
    lines = (line.split("#", 1)[0].strip() for line in constraints.read_text().splitlines())
    return dict(line.split("==", 1) for line in lines if "==" in line)


def differences(pins: dict[str, str]) -> list[str]:
    """One line for each installed package whose version is not the pinned one, and for a Python that is not Colab's."""
    found = [] if sys.version_info[:2] == COLAB_PYTHON else [f"python {sys.version.split()[0]} (Colab: 3.13)"]
    for name, wanted in pins.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            continue
        if re.sub(r"\+.*", "", have) != wanted:
            found.append(f"{name} {have} (Colab: {wanted})")
    return found


def main(argv: list[str]) -> int:
    pins = pinned(Path(argv[1]))
    found = differences(pins)
    for line in found:
        print("not Colab's version:", line, file=sys.stderr)
    if not found:
        print(f"Python {sys.version.split()[0]} and every installed package of {len(pins)} pins at Colab's version")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
