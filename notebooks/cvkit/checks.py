"""The one line an exercise check prints: correct, or what is still wrong."""

from __future__ import annotations

__all__ = ["report_check"]


def report_check(exercise: int | str, problem: str | None) -> bool:
    """Print "Exercise N: correct" when `problem` is None, else "Exercise N: not yet - <problem>"; True when correct."""
    if problem is None:
        print(f"Exercise {exercise}: correct")
        return True
    print(f"Exercise {exercise}: not yet - {problem}")
    return False
