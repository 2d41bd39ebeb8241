"""Write the student edition to build/student/: a repository to publish as it is, without solutions or answers.

`make student [REPO=owner/name] [BRANCH=name]`. The tree holds the notebooks (student edition) in notebooks/, the
helpers package notebooks/cvkit/, data/, labels/, requirements.txt, pyproject.toml (so that `pip install` of the
repository installs cvkit) and a README for students (scripts/student_readme.md); nothing else: no tests, scripts or
instructor notes, which hold solutions. An --out folder outside build/ must be new or empty; build/student is replaced.

The committed notebooks/[0-9][0-9]_*.ipynb are the instructor edition; for each one this writes a notebook of the same
name in which

- every solution block of a code cell tagged `exercise`, from a line `### BEGIN SOLUTION` to a line `### END SOLUTION`
  (both included; each marker alone on its line, at any indentation), becomes two lines at the BEGIN marker's indentation:
      # TODO: <goal>
      raise NotImplementedError("Exercise N: replace this line with your solution")
  and the cell gets the tag `raises-exception` as well, so that nbval and nbclient run on past it;
- every `<!-- BEGIN ANSWER -->` ... `<!-- END ANSWER -->` block of a markdown cell is removed, markers included; a marker
  that stands alone on its line takes its whole line with it;
- every code cell's outputs and execution count are cleared.
Everything else (badges, setup cells, text, code, cell ids, tags, metadata) is copied unchanged.

N is the name after "Exercise" in the nearest heading `### Exercise N: <title> (about M min)` (any heading level) in the
markdown cells above the exercise cell. The goal of a block is the text of the last `# YOUR CODE: <goal>` comment line
between the previous block (or the start of the cell) and the block's BEGIN line, when there is one; otherwise the
exercise's goal: the first paragraph after that heading in the heading's cell, its lines joined by single spaces, ending
at a blank line, a line starting with `<details` or another heading. (`# your answer: ...` comments on the answer
variables stay where they are and are not used as goals.)

These stop the script with one line naming the notebook and the cell, exit code 2, and nothing written: unbalanced or
nested markers; a solution marker that is not alone on its line or is outside a code cell tagged `exercise`; an answer
marker outside a markdown cell, or "BEGIN/END ANSWER" written in any other way; a cell tagged `exercise` that is not code
or holds no solution block; an exercise cell with no `### Exercise N:` heading above it, or a block with no goal.

The setup cells install the kit from the repository named in their `git+https://github.com/owner/name` line:
`--repo owner/name` stamps the student edition's badges and setup cells with another repository (scripts/stamp_colab.py's
`stamp`), `--branch NAME` points its badges at that branch and makes its setup cells install from that branch.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
from pathlib import Path

import nbformat
from stamp_colab import stamp

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"
STUDENT_README = ROOT / "scripts" / "student_readme.md"
KIT = ["notebooks/cvkit", "data", "labels", "requirements.txt", "pyproject.toml"]  # copied as they are
NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

SOLUTION_WORDS = re.compile(r"(BEGIN|END) SOLUTION")
SOLUTION_LINE = re.compile(r"[ \t]*### (BEGIN|END) SOLUTION[ \t]*")
ANSWER_WORDS = re.compile(r"(BEGIN|END) ANSWER")
ANSWER_MARKER = re.compile(r"<!--[ \t]*(BEGIN|END) ANSWER[ \t]*-->")
HEADING = re.compile(r"^#+[ \t]+Exercise[ \t]+(\w+)[ \t]*:.*$", re.MULTILINE)
YOUR_CODE = re.compile(r"[ \t]*#[ \t]*YOUR CODE:[ \t]*(.*?)\s*")
BADGE_BRANCH = re.compile(r"((?:colab\.research\.google\.com/github|src=https://github\.com)/[\w.-]+/[\w.-]+/blob/)[\w.-]+/")
INSTALL_FROM = re.compile(r"(git\+https://github\.com/[\w-]+/[\w.-]+?)(@[\w.-]+)?(?=\")")
REPO_NAME = re.compile(r"[\w.-]+/[\w.-]+")
BRANCH_NAME = re.compile(r"\w[\w.-]*")


class EditionError(ValueError):
    """A notebook the student edition cannot be made from, with a one-line reason."""


def _where(name: str, index: int, cell) -> str:
    """`<notebook>, cell <n> (id <id>)`, counting cells from 1."""
    cell_id = cell.get("id")
    return f"{name}, cell {index + 1}" + (f" (id {cell_id})" if cell_id else "")


def exercise_goal(markdown: str) -> tuple[str, str | None]:
    """(N, goal) of the last `### Exercise N:` heading in `markdown`: the first paragraph after it, or None."""
    heading = list(HEADING.finditer(markdown))[-1]
    paragraph: list[str] = []
    for line in markdown[heading.end():].splitlines()[1:]:
        text = line.strip()
        if not text and not paragraph:
            continue
        if not text or text.startswith(("<details", "#")):
            break
        paragraph.append(text)
    return heading[1], " ".join(paragraph) or None


def replace_solutions(source: str, number: str, goal: str | None, where: str) -> str:
    """`source` with each solution block replaced by a TODO line and a raise of NotImplementedError."""
    out: list[str] = []
    inside, blocks, your_code = False, 0, None
    for line in source.splitlines(keepends=True):
        if SOLUTION_WORDS.search(line):
            marker = SOLUTION_LINE.fullmatch(line.rstrip("\r\n"))
            if marker is None:
                raise EditionError(f"{where}: a solution marker must stand alone on its line, not {line.strip()!r}")
            if marker[1] == "BEGIN":
                if inside:
                    raise EditionError(f"{where}: ### BEGIN SOLUTION inside another solution block (nested markers)")
                todo = your_code or goal
                if not todo:
                    raise EditionError(f"{where}: no goal for the TODO line: write a line of goal under the "
                                       f"exercise's heading or a '# YOUR CODE: <goal>' line above the block")
                indent = line[: len(line) - len(line.lstrip())]
                out += [f"{indent}# TODO: {todo}\n",
                        f'{indent}raise NotImplementedError("Exercise {number}: replace this line with your solution")\n']
                inside, blocks, your_code = True, blocks + 1, None
            elif not inside:
                raise EditionError(f"{where}: ### END SOLUTION without a ### BEGIN SOLUTION before it")
            else:
                inside = False
            continue
        if not inside:
            comment = YOUR_CODE.fullmatch(line)
            if comment and comment[1]:
                your_code = comment[1]
            out.append(line)
    if inside:
        raise EditionError(f"{where}: ### BEGIN SOLUTION without a ### END SOLUTION after it")
    if not blocks:
        raise EditionError(f"{where}: the cell is tagged exercise but holds no ### BEGIN SOLUTION ... ### END SOLUTION block")
    text = "".join(out)
    return text[:-1] if text.endswith("\n") and not source.endswith("\n") else text


def remove_answers(source: str, where: str) -> str:
    """`source` without its `<!-- BEGIN ANSWER -->` ... `<!-- END ANSWER -->` blocks."""
    markers = list(ANSWER_MARKER.finditer(source))
    if len(ANSWER_WORDS.findall(source)) != len(markers):
        raise EditionError(f"{where}: an answer marker must be written <!-- BEGIN ANSWER --> or <!-- END ANSWER -->")
    if not markers:
        return source
    kept: list[str] = []
    keep_from, start = 0, None
    for marker in markers:
        if marker[1] == "BEGIN":
            if start is not None:
                raise EditionError(f"{where}: <!-- BEGIN ANSWER --> inside another answer block (nested markers)")
            start = marker.start()
            line_start = source.rfind("\n", 0, start) + 1
            if not source[line_start:start].strip():
                start = line_start
            kept.append(source[keep_from:start])
        else:
            if start is None:
                raise EditionError(f"{where}: <!-- END ANSWER --> without a <!-- BEGIN ANSWER --> before it")
            end = marker.end()
            line_end = source.find("\n", end)
            line_end = len(source) if line_end == -1 else line_end + 1
            keep_from, start = (line_end if not source[end:line_end].strip() else end), None
    if start is not None:
        raise EditionError(f"{where}: <!-- BEGIN ANSWER --> without an <!-- END ANSWER --> after it")
    text = "".join(kept) + source[keep_from:]
    return text if source.endswith("\n") else text.rstrip("\n")


def stamp_edition(nb, name: str, repo: str | None, branch: str | None) -> None:
    """Stamp `repo` into the badges and setup cells of `nb`, and make them open and install from `branch`."""
    if repo is not None:
        if not REPO_NAME.fullmatch(repo):
            raise EditionError(f"--repo must look like owner/name, not {repo!r}")
        for cell in nb.cells:
            cell.source = stamp(cell.source, repo)
        if not any(f"git+https://github.com/{repo}" in cell.source for cell in nb.cells if cell.cell_type == "code"):
            raise EditionError(f"{name}: no setup cell line installing the kit from git+https://github.com/... to stamp")
    if branch is not None:
        if not BRANCH_NAME.fullmatch(branch):
            raise EditionError(f"--branch must be a branch name of letters, digits, '_', '.' and '-', not {branch!r}")
        badges = installs = 0
        for cell in nb.cells:
            cell.source, found = BADGE_BRANCH.subn(rf"\g<1>{branch}/", cell.source)
            badges += found
            if cell.cell_type == "code":
                cell.source, found = INSTALL_FROM.subn(rf"\g<1>@{branch}", cell.source)
                installs += found
        if not badges or not installs:
            missing = "Colab or Kaggle badge" if not badges else "setup cell line installing git+https://github.com/..."
            raise EditionError(f"{name}: no {missing} to point at branch {branch}")


def student_edition(nb, name: str = "notebook", repo: str | None = None, branch: str | None = None):
    """The student edition of the instructor's notebook `nb` (left unchanged); raises EditionError naming `name`'s cell."""
    nb = copy.deepcopy(nb)
    heading: tuple[str, str | None] | None = None
    for index, cell in enumerate(nb.cells):
        where = _where(name, index, cell)
        tags = cell.get("metadata", {}).get("tags", [])
        is_exercise = "exercise" in tags
        if is_exercise and cell.cell_type != "code":
            raise EditionError(f"{where}: a {cell.cell_type} cell is tagged exercise; only code cells can be")
        if SOLUTION_WORDS.search(cell.source) and not is_exercise:
            raise EditionError(f"{where}: a solution marker outside a code cell tagged exercise")
        if cell.cell_type == "markdown":
            if HEADING.search(cell.source):
                heading = exercise_goal(cell.source)
            cell.source = remove_answers(cell.source, where)
        elif ANSWER_WORDS.search(cell.source):
            raise EditionError(f"{where}: an answer marker outside a markdown cell")
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if is_exercise:
            if heading is None:
                raise EditionError(f"{where}: an exercise cell with no '### Exercise N: <title>' heading above it")
            cell.source = replace_solutions(cell.source, *heading, where)
            if "raises-exception" not in tags:
                cell.metadata["tags"] = [*tags, "raises-exception"]
    stamp_edition(nb, name, repo, branch)
    return nb


def student_readme(repo: str | None, branch: str | None) -> str:
    """The students' README, its badges stamped like the notebooks'."""
    text = STUDENT_README.read_text(encoding="utf-8")
    text = stamp(text, repo) if repo is not None else text
    return BADGE_BRANCH.sub(rf"\g<1>{branch}/", text) if branch is not None else text


def check_out(out: Path, paths: list[Path]) -> None:
    """Raise EditionError where `out` cannot take the student edition without overwriting what it should not."""
    instructor = {ROOT, *(path.resolve().parent for path in paths)}
    if out.resolve() in instructor or (out / "notebooks").resolve() in instructor:
        raise EditionError(f"--out {out} holds the instructor edition: write the student edition elsewhere")
    replaceable = BUILD.resolve() in out.resolve().parents  # a folder inside build/
    if out.exists() and not replaceable and (not out.is_dir() or any(out.iterdir())):
        raise EditionError(f"--out {out} is not an empty folder: give a new one (only folders in build/ are replaced)")


def write_tree(out: Path, editions: list, readme: str) -> None:
    """Write the student repository to `out`: the notebooks of `editions`, the kit's files and `readme`."""
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    for name in KIT:
        source, target = ROOT / name, out / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=NOT_COPIED)
        else:
            shutil.copy2(source, target)
    (out / "README.md").write_text(readme, encoding="utf-8")
    for name, nb in editions:
        nbformat.write(nb, out / "notebooks" / name)


def main(argv: list[str] | None = None) -> int:
    """Write the student repository, or print one line and return 2 when a notebook or --out will not do."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]_*.ipynb")
    parser.add_argument("--out", type=Path, default=BUILD / "student", help="default: build/student")
    parser.add_argument("--repo", help="owner/name of the GitHub repository the student edition's setup cells clone")
    parser.add_argument("--branch", help="the branch of that repository its badges open and its setup cells clone")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    editions = []
    try:
        if not paths:
            raise EditionError(f"no notebooks to convert in {NOTEBOOKS}")
        check_out(args.out, paths)
        for path in paths:
            try:
                nb = nbformat.read(path, as_version=4)
            except (OSError, ValueError) as err:
                raise EditionError(f"{path.name}: cannot read it as a notebook ({err})") from None
            editions.append((path.name, student_edition(nb, path.name, args.repo, args.branch)))
    except EditionError as err:
        print(f"make_student: {err}", file=sys.stderr)
        return 2
    write_tree(args.out, editions, student_readme(args.repo, args.branch))
    print(f"wrote the student edition to {args.out}: {len(editions)} notebooks, the kit, data, labels and a README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
