"""make student (scripts/make_student.py): the student edition is the instructor's without solutions, answers or outputs."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from make_student import EditionError, main, student_edition
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LABS = [path for path in NOTEBOOKS if path.name < "04"]  # Labs 1-3; 04 and 05 have fewer exercises

TITLE = ("# Lab 9: Test\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/09_test.ipynb)")
HEADING = ("### Exercise 2: Your own top-5 (about 10 min)\nFind the five most probable classes of the first image.\n\n"
           "<details><summary>Hint</summary>Use torch.topk.</details>")
EXERCISE = ("my_top5 = None  # your answer: a list of 5 class names\n### BEGIN SOLUTION\n"
            "my_top5 = [categories[i] for i in probs[0].topk(5).indices]\n### END SOLUTION")
TODO = ('# TODO: Find the five most probable classes of the first image.\n'
        'raise NotImplementedError("Exercise 2: replace this line with your solution")')
QUESTIONS = ("## Questionnaire\n\n1. What does softmax return?\n<!-- BEGIN ANSWER -->\n"
             "*Answer:* probabilities that sum to one.\n<!-- END ANSWER -->\n2. Why residual blocks?\n"
             "<!-- BEGIN ANSWER -->\n*Answer:* so that a block can learn the identity.\n<!-- END ANSWER -->")


def _instructor() -> nbformat.NotebookNode:
    """A small instructor edition: title, setup with output, exercise heading, exercise, check, questionnaire."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "colab": {"gpuType": "T4", "provenance": []}})
    nb.cells = [
        new_markdown_cell(TITLE, id="title"),
        new_code_cell("import cvkit", id="setup", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="ready\n")]),
        new_markdown_cell(HEADING, id="heading"),
        new_code_cell(EXERCISE, id="exercise", metadata={"tags": ["exercise"]}, execution_count=2,
                      outputs=[new_output("execute_result", data={"text/plain": "['tabby']"}, execution_count=2)]),
        new_code_cell("cvkit.check_top5(my_top5, probs, categories)", id="check", metadata={"tags": ["check"]},
                      execution_count=3, outputs=[new_output("stream", name="stdout", text="Exercise 2: correct\n")]),
        new_markdown_cell(QUESTIONS, id="questions"),
    ]
    return nb


def _with_cell(cell, before=HEADING) -> nbformat.NotebookNode:
    """A notebook of the markdown `before` (none when None) and `cell`, to try one malformed cell."""
    cells = [new_markdown_cell(before, id="heading")] if before is not None else []
    nb = new_notebook()
    nb.cells = [*cells, cell]
    return nb


def _exercise(source: str):
    return new_code_cell(source, id="exercise", metadata={"tags": ["exercise"]})


def test_a_solution_block_becomes_a_todo_with_the_exercise_goal_and_a_raise():
    student = student_edition(_instructor(), "lab.ipynb")
    assert student.cells[3].source == "my_top5 = None  # your answer: a list of 5 class names\n" + TODO


def test_a_your_code_comment_above_a_block_is_its_goal():
    nb = _with_cell(_exercise("edges = None\n# YOUR CODE: convolve the image with a Sobel kernel\n"
                              "### BEGIN SOLUTION\nedges = conv(image)\n### END SOLUTION\n"))
    assert student_edition(nb).cells[1].source == (
        "edges = None\n# YOUR CODE: convolve the image with a Sobel kernel\n"
        "# TODO: convolve the image with a Sobel kernel\n"
        'raise NotImplementedError("Exercise 2: replace this line with your solution")\n')


def test_every_block_of_a_cell_is_replaced_at_its_own_indentation():
    nb = _with_cell(_exercise("def iou(a, b):\n    # YOUR CODE: the intersection\n    ### BEGIN SOLUTION\n"
                              "    inter = area(a & b)\n    ### END SOLUTION\n    ### BEGIN SOLUTION\n"
                              "    return inter / area(a | b)\n    ### END SOLUTION"))
    assert student_edition(nb).cells[1].source == (
        "def iou(a, b):\n    # YOUR CODE: the intersection\n    # TODO: the intersection\n"
        '    raise NotImplementedError("Exercise 2: replace this line with your solution")\n'
        "    # TODO: Find the five most probable classes of the first image.\n"
        '    raise NotImplementedError("Exercise 2: replace this line with your solution")')


def test_the_goal_is_the_whole_first_paragraph_under_the_nearest_exercise_heading():
    heading = ("### Exercise 1: Warm-up (about 5 min)\nNot this one.\n\n### Exercise 3b: Threshold (about 10 min)\n"
               "Lower `conf` until a false box appears,\nthen explain it.\n<details><summary>Hint</summary>x</details>")
    nb = _with_cell(_exercise("### BEGIN SOLUTION\nresults = model(images, conf=0.05)\n### END SOLUTION"), heading)
    assert student_edition(nb).cells[1].source == (
        "# TODO: Lower `conf` until a false box appears, then explain it.\n"
        'raise NotImplementedError("Exercise 3b: replace this line with your solution")')


def test_exercise_cells_get_the_raises_exception_tag_and_keep_their_own():
    student = student_edition(_instructor(), "lab.ipynb")
    assert [cell.metadata.get("tags") for cell in student.cells] == [
        None, None, None, ["exercise", "raises-exception"], ["check"], None]


def test_answer_blocks_are_removed_from_markdown_with_their_marker_lines():
    student = student_edition(_instructor(), "lab.ipynb")
    assert student.cells[5].source == "## Questionnaire\n\n1. What does softmax return?\n2. Why residual blocks?"


def test_an_answer_within_a_line_is_removed_with_its_markers_and_nothing_else():
    nb = _with_cell(new_markdown_cell("1. Is AlexNet deeper? <!-- BEGIN ANSWER -->*Answer:* no.<!-- END ANSWER --> Why?"))
    assert student_edition(nb).cells[1].source == "1. Is AlexNet deeper?  Why?"


def test_outputs_and_execution_counts_are_cleared():
    student = student_edition(_instructor(), "lab.ipynb")
    code = [cell for cell in student.cells if cell.cell_type == "code"]
    assert [(cell.outputs, cell.execution_count) for cell in code] == [([], None)] * 3


def test_everything_but_solutions_answers_tags_and_outputs_is_unchanged():
    instructor = _instructor()
    student = student_edition(instructor, "lab.ipynb")
    expected = copy.deepcopy(instructor)
    for cell in expected.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    changed = {3, 5}
    assert [i for i, (a, b) in enumerate(zip(expected.cells, student.cells)) if a != b] == sorted(changed)
    assert [(c.id, c.cell_type) for c in student.cells] == [(c.id, c.cell_type) for c in instructor.cells]
    assert student.metadata == instructor.metadata
    assert (student.nbformat, student.nbformat_minor) == (instructor.nbformat, instructor.nbformat_minor)


def test_the_instructor_notebook_given_is_left_unchanged():
    instructor = _instructor()
    before = copy.deepcopy(instructor)
    student_edition(instructor, "lab.ipynb")
    assert instructor == before


MALFORMED = {
    "begin without end": (_exercise("x = None\n### BEGIN SOLUTION\nx = 1"),
                          "### BEGIN SOLUTION without a ### END SOLUTION after it"),
    "end without begin": (_exercise("x = None\nx = 1\n### END SOLUTION"),
                          "### END SOLUTION without a ### BEGIN SOLUTION before it"),
    "nested solutions": (_exercise("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### END SOLUTION"),
                         "### BEGIN SOLUTION inside another solution block (nested markers)"),
    "marker not alone on its line": (_exercise("### BEGIN SOLUTION\nx = 1  ### END SOLUTION"),
                                     "a solution marker must stand alone on its line"),
    "solution in an untagged code cell": (new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", id="exercise"),
                                          "a solution marker outside a code cell tagged exercise"),
    "solution in markdown": (new_markdown_cell("### BEGIN SOLUTION\nx\n### END SOLUTION", id="exercise"),
                             "a solution marker outside a code cell tagged exercise"),
    "exercise without markers": (_exercise("x = None\nx = 1"), "the cell is tagged exercise but holds no ### BEGIN SOLUTION"),
    "exercise tag on markdown": (new_markdown_cell("x", id="exercise", metadata={"tags": ["exercise"]}),
                                 "a markdown cell is tagged exercise; only code cells can be"),
    "answer begin without end": (new_markdown_cell("1. Q?\n<!-- BEGIN ANSWER -->\nA.", id="exercise"),
                                 "<!-- BEGIN ANSWER --> without an <!-- END ANSWER --> after it"),
    "answer end without begin": (new_markdown_cell("1. Q?\nA.\n<!-- END ANSWER -->", id="exercise"),
                                 "<!-- END ANSWER --> without a <!-- BEGIN ANSWER --> before it"),
    "nested answers": (new_markdown_cell("<!-- BEGIN ANSWER -->\n<!-- BEGIN ANSWER -->\nA.\n<!-- END ANSWER -->\n"
                                         "<!-- END ANSWER -->", id="exercise"),
                       "<!-- BEGIN ANSWER --> inside another answer block (nested markers)"),
    "misspelt answer marker": (new_markdown_cell("<!-- BEGIN ANSWERS -->\nA.\n<!-- END ANSWER -->", id="exercise"),
                               "an answer marker must be written <!-- BEGIN ANSWER --> or <!-- END ANSWER -->"),
    "answer in a code cell": (new_code_cell("# <!-- BEGIN ANSWER -->\nx = 1\n# <!-- END ANSWER -->", id="exercise"),
                              "an answer marker outside a markdown cell"),
}


@pytest.mark.parametrize("cell, problem", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_cell_gives_one_line_naming_notebook_cell_and_problem(cell, problem):
    with pytest.raises(EditionError) as err:
        student_edition(_with_cell(cell), "09_test.ipynb")
    assert str(err.value).startswith(f"09_test.ipynb, cell 2 (id exercise): {problem}")
    assert "\n" not in str(err.value)


def test_an_exercise_cell_with_no_exercise_heading_above_it_is_an_error():
    nb = _with_cell(_exercise("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), before="## Exercises\nTry these.")
    with pytest.raises(EditionError, match=r"^09_test.ipynb, cell 2 \(id exercise\): an exercise cell with no "):
        student_edition(nb, "09_test.ipynb")


def test_a_block_with_no_goal_is_an_error():
    nb = _with_cell(_exercise("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
                    before="### Exercise 4: Open task (about 20 min)\n<details><summary>Hint</summary>x</details>")
    with pytest.raises(EditionError, match=r"^09_test.ipynb, cell 2 \(id exercise\): no goal for the TODO line"):
        student_edition(nb, "09_test.ipynb")


def _setup_cells() -> list:
    """The first two cells (title with badges, setup) of the first real lab."""
    return nbformat.read(LABS[0], as_version=4).cells[:2]


def test_repo_stamps_the_real_badges_and_setup_cell():
    nb = _instructor()
    nb.cells[:2] = _setup_cells()
    student = student_edition(nb, LABS[0].name, repo="course/cv-labs")
    assert f"colab.research.google.com/github/course/cv-labs/blob/main/notebooks/{LABS[0].name}" in student.cells[0].source
    assert f"src=https://github.com/course/cv-labs/blob/main/notebooks/{LABS[0].name}" in student.cells[0].source
    assert 'git+https://github.com/course/cv-labs"' in student.cells[1].source


def test_branch_makes_the_real_badges_open_and_the_setup_cell_install_from_that_branch():
    nb = _instructor()
    nb.cells[:2] = _setup_cells()
    student = student_edition(nb, LABS[0].name, branch="student")
    assert f"colab.research.google.com/github/OWNER/REPO/blob/student/notebooks/{LABS[0].name}" in student.cells[0].source
    assert f"src=https://github.com/OWNER/REPO/blob/student/notebooks/{LABS[0].name}" in student.cells[0].source
    assert 'git+https://github.com/OWNER/REPO@student"' in student.cells[1].source


def test_branch_with_no_install_line_to_stamp_is_an_error():
    with pytest.raises(EditionError, match=r"^09_test.ipynb: no setup cell line installing git\+https://github\.com/"):
        student_edition(_instructor(), "09_test.ipynb", branch="student")


def _write(folder: Path, name: str, nb) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return folder / name


def test_make_student_writes_each_notebook_under_its_name_in_notebooks_and_no_other(tmp_path, capsys):
    first, second = _write(tmp_path / "nb", "01_a.ipynb", _instructor()), _write(tmp_path / "nb", "02_b.ipynb", _instructor())
    (tmp_path / "nb" / "helpers.py").write_text("x = 1\n")
    assert main([str(first), str(second), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out" / "notebooks").glob("*.ipynb")) == ["01_a.ipynb", "02_b.ipynb"]
    assert nbformat.read(tmp_path / "out" / "notebooks" / "02_b.ipynb", as_version=4) == student_edition(_instructor())


def test_a_notebook_with_nothing_to_remove_is_written_byte_for_byte(tmp_path):
    nb = _instructor()
    nb.cells = [nb.cells[0], nb.cells[2]]
    path = _write(tmp_path / "nb", "01_a.ipynb", nb)
    assert main([str(path), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "notebooks" / "01_a.ipynb").read_bytes() == path.read_bytes()


def test_make_student_stops_with_one_line_and_exit_2_and_writes_nothing_for_a_malformed_notebook(tmp_path, capsys):
    good = _write(tmp_path / "nb", "01_a.ipynb", _instructor())
    bad = _write(tmp_path / "nb", "02_b.ipynb", _with_cell(_exercise("x = None\nx = 1")))
    assert main([str(good), str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("make_student: 02_b.ipynb, cell 2 (id exercise): ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_make_student_refuses_to_write_over_the_instructor_edition(tmp_path, capsys):
    path = _write(tmp_path / "nb", "01_a.ipynb", _instructor())
    before = path.read_bytes()
    assert main([str(path), "--out", str(tmp_path / "nb")]) == 2
    assert "holds the instructor edition" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_make_student_replaces_a_folder_inside_build_as_a_whole(tmp_path, monkeypatch):
    import make_student

    monkeypatch.setattr(make_student, "BUILD", tmp_path / "build")
    out = tmp_path / "build" / "student"
    out.mkdir(parents=True)
    (out / "stale.ipynb").write_text("{}")
    assert main([str(_write(tmp_path / "nb", "01_a.ipynb", _instructor())), "--out", str(out)]) == 0
    assert not (out / "stale.ipynb").exists() and (out / "notebooks" / "01_a.ipynb").exists()


def test_make_student_refuses_a_folder_outside_build_that_is_not_empty(tmp_path, capsys):
    path = _write(tmp_path / "nb", "01_a.ipynb", _instructor())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main([str(path), "--out", str(tmp_path / "mine")]) == 2
    assert capsys.readouterr().err.startswith("make_student: --out ") and (tmp_path / "mine" / "notes.txt").exists()


# The real labs: the student edition of each one, made once and executed once (the expensive part) for all its tests.

def _exercise_cells(nb) -> list:
    return [cell for cell in nb.cells if "exercise" in cell.metadata.get("tags", [])]


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def _marked_lines(nb) -> tuple[set[str], set[str], set[str]]:
    """(lines inside solution blocks, inside answer blocks, outside both) of an instructor edition, read independently."""
    solutions, answers, outside = set(), set(), set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            pieces = re.split(r"<!--\s*(?:BEGIN|END) ANSWER\s*-->", cell.source)
            for i, piece in enumerate(pieces):
                (answers if i % 2 else outside).update(_lines(piece))
            continue
        inside = False
        for line in cell.source.splitlines():
            if line.strip() in ("### BEGIN SOLUTION", "### END SOLUTION"):
                inside = line.strip() == "### BEGIN SOLUTION"
            elif line.strip():
                (solutions if inside else outside).add(line.strip())
    return solutions, answers, outside


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=lambda path: path.name)
def lab(request):
    """(instructor edition, student edition) of one notebook (test_colab_camera.py runs each student edition)."""
    instructor = nbformat.read(request.param, as_version=4)
    return instructor, student_edition(instructor, request.param.name)


@pytest.mark.parametrize("path", LABS, ids=lambda path: path.name)
def test_each_lab_has_at_least_four_exercise_cells(path):
    assert len(_exercise_cells(nbformat.read(path, as_version=4))) >= 4


def test_the_closing_notebook_and_the_live_demo_have_exercise_and_check_cells():
    for path in NOTEBOOKS[3:]:
        nb = nbformat.read(path, as_version=4)
        assert len(_exercise_cells(nb)) >= 2, path.name
        assert [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])], path.name


def test_no_solution_or_answer_text_leaks_into_the_student_edition(lab):
    instructor, student = lab
    solutions, answers, outside = _marked_lines(instructor)
    assert solutions - outside and answers - outside, "no solution or no answer lines to look for"
    student_lines = set().union(*(_lines(cell.source) for cell in student.cells))
    assert sorted((solutions | answers) - outside & student_lines) == []
    assert not any(re.search(r"(BEGIN|END) (SOLUTION|ANSWER)", cell.source) for cell in student.cells)


# The whole student repository, as `make student` writes it: what it holds, and that nothing in it gives answers away.

STUDENT_REPO = "course/cv-labs-students"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("published") / "student"
    assert main(["--out", str(out), "--repo", STUDENT_REPO]) == 0
    return out


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_the_student_tree_holds_the_notebooks_the_kit_data_labels_and_a_readme_and_nothing_else(tree):
    kit = {f"notebooks/cvkit/{path.name}" for path in (ROOT / "notebooks" / "cvkit").glob("*.py")}
    data = {str(path.relative_to(ROOT)) for folder in ("data", "labels") for path in (ROOT / folder).rglob("*")
            if path.is_file()}
    notebooks = {f"notebooks/{path.name}" for path in NOTEBOOKS}
    assert _files(tree) == sorted(kit | data | notebooks | {"README.md", "requirements.txt", "pyproject.toml"})


def test_the_student_readme_is_the_students_and_its_badges_open_their_repository(tree):
    readme = (tree / "README.md").read_text(encoding="utf-8")
    assert "## For instructors" not in readme and "make student" not in readme
    for path in NOTEBOOKS:
        assert f"colab.research.google.com/github/{STUDENT_REPO}/blob/main/notebooks/{path.name}" in readme
    assert "OWNER/REPO" not in readme


def test_the_student_notebooks_are_stamped_for_the_students_repository(tree):
    for path in NOTEBOOKS:
        nb = nbformat.read(tree / "notebooks" / path.name, as_version=4)
        assert f"colab.research.google.com/github/{STUDENT_REPO}/blob/main/notebooks/{path.name}" in nb.cells[0].source
        assert f"git+https://github.com/{STUDENT_REPO}" in nb.cells[1].source and "OWNER/REPO" not in nb.cells[1].source


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _needles() -> set[str]:
    """Every solution block and every answer block of the instructor notebooks, whitespace normalised, and the
    markers."""
    blocks = set()
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            found = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.DOTALL)
            found += re.findall(r"<!-- BEGIN ANSWER -->(.*?)<!-- END ANSWER -->", cell.source, re.DOTALL)
            blocks |= {_normalised(block) for block in found if block.strip()}
    return blocks | {"BEGIN SOLUTION", "END SOLUTION", "BEGIN ANSWER", "END ANSWER"}


def _text(path: Path) -> str:
    """What a reader of the file sees: a notebook's cell sources and outputs, any other file's bytes as text."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n".join([cell.source for cell in nb.cells]
                         + [str(output) for cell in nb.cells for output in cell.get("outputs", [])])
    return path.read_bytes().decode("utf-8", errors="replace")


def test_no_file_of_the_student_tree_holds_solution_or_answer_text(tree):
    needles = _needles()
    assert len(needles) > 50, "too few solutions and answers to look for"
    leaks = {str(path.relative_to(tree)): sorted(needle[:60] for needle in needles if needle in text)
             for path in sorted(tree.rglob("*")) if path.is_file() for text in [_normalised(_text(path))]}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_no_file_of_the_student_tree_holds_a_line_of_a_solution(tree):
    own = set()  # the solutions' lines that appear nowhere else in the instructor notebooks
    for path in NOTEBOOKS:
        solutions, _, outside = _marked_lines(nbformat.read(path, as_version=4))
        own |= {line for line in solutions - outside if len(line) >= 40}
    assert len(own) > 20, "too few solution lines to look for"
    leaks = {str(path.relative_to(tree)): sorted(line for line in own if line in lines)
             for path in sorted(tree.rglob("*")) if path.is_file() for lines in [_lines(_text(path))]}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_the_student_tree_builds_a_wheel_of_the_kit_with_its_data_and_labels(tree, tmp_path):
    import subprocess
    import sys
    import zipfile

    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "--wheel-dir", str(tmp_path), str(tree)], capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("cvkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"cvkit/{path.name}" for path in (ROOT / "notebooks" / "cvkit").glob("*.py")} <= names
    assert {f"cvkit/{path.relative_to(ROOT)}" for folder in ("data", "labels") for path in (ROOT / folder).rglob("*")
            if path.is_file()} <= names
