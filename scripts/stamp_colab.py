"""Write the kit's GitHub repository (owner/name) into the notebooks' Colab and Kaggle badges and setup cells (the
`%pip install "cvkit @ git+https://github.com/owner/name"` line).

`make colab REPO=owner/name`, or `make colab` to take it from `git remote get-url origin`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BADGE = re.compile(r"((?:colab\.research\.google\.com/github|src=https://github\.com)/)[\w.-]+/[\w.-]+(/blob/)")
INSTALL = re.compile(r"(git\+https://github\.com/)[\w-]+/[\w.-]+?(?=@|\\?\")")
REMOTE = re.compile(r"github\.com[:/]([\w.-]+/[\w.-]+?)(?:\.git)?/?$")


def stamp(text: str, repo: str) -> str:
    """Replace every badge's owner/name and the repository the setup cells install the kit from by `repo`."""
    return INSTALL.sub(rf"\g<1>{repo}", BADGE.sub(rf"\g<1>{repo}\g<2>", text))


def repo_from_git() -> str | None:
    """owner/name of the `origin` remote when it is on GitHub, else None."""
    result = subprocess.run(["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True, text=True)
    match = REMOTE.search(result.stdout.strip()) if result.returncode == 0 else None
    return match.group(1) if match else None


def main(argv: list[str]) -> int:
    repo = argv[0] if argv else repo_from_git()
    if repo is None:
        print("no GitHub remote named origin: use make colab REPO=owner/name", file=sys.stderr)
        return 2
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        print(f"REPO must look like owner/name, not {repo!r}", file=sys.stderr)
        return 2
    for path in [ROOT / "README.md", *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        text = path.read_text(encoding="utf-8")
        new = stamp(text, repo)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"stamped {path.relative_to(ROOT)} with {repo}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
