"""Write the GitHub repository (owner/name) into the notebooks' Colab badges and setup cells, and the README."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BADGE = re.compile(r"(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+(/blob/)")
CONSTANT = re.compile(r'(REPO = \\?")[\w.-]+/[\w.-]+(\\?")')


def stamp(text: str, repo: str) -> str:
    """Replace every badge's owner/name and the setup cell's REPO constant by `repo`."""
    return CONSTANT.sub(rf"\g<1>{repo}\g<2>", BADGE.sub(rf"\g<1>{repo}\g<2>", text))


def main(repo: str) -> int:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        print(f"REPO must look like owner/name, not {repo!r}", file=sys.stderr)
        return 2
    for path in [ROOT / "README.md", *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        text = path.read_text(encoding="utf-8")
        new = stamp(text, repo)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"stamped {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
