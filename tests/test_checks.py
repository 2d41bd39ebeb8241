"""report_check: the line every exercise check prints."""

from cvkit.checks import report_check


def test_a_correct_answer_says_correct_and_returns_true(capsys):
    assert report_check(3, None) is True
    assert capsys.readouterr().out == "Exercise 3: correct\n"


def test_a_wrong_answer_says_not_yet_with_the_problem_and_returns_false(capsys):
    assert report_check("2b", "my_iou is still None: compute it in the cell above") is False
    assert capsys.readouterr().out == "Exercise 2b: not yet - my_iou is still None: compute it in the cell above\n"
