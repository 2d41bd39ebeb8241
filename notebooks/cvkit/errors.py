"""Errors the user can fix, shown as one line in IPython instead of a traceback."""

from __future__ import annotations

import re
import sys

__all__ = ["KitError", "use_short_errors"]


class KitError(Exception):
    """A problem the user can fix; notebooks show its message in one line."""


def use_short_errors() -> None:
    """Show a KitError, and PyTorch's device and dtype mix-ups, as one line in IPython instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def show(shell, etype, value, tb, tb_offset=None):
        line = str(value) if issubclass(etype, KitError) else _explain_torch_error(str(value))
        if line is None:  # a RuntimeError the kit cannot explain: the usual traceback
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return
        print(f"{etype.__name__}: {line}", file=sys.stderr)

    shell.set_custom_exc((KitError, RuntimeError), show)


def _explain_torch_error(message: str) -> str | None:
    """One line on what to change for PyTorch's commonest beginner errors, or None for any other error."""
    types = re.search(r"Input type \((\S+)\) and (?:weight|bias) type \((\S+)\) should be the same", message)
    if "Expected all tensors to be on the same device" in message or (
        types and ("cuda" in types[1]) != ("cuda" in types[2])
    ):
        return "the model and its input are on different devices: move the input there with .to(device)"
    if types or "must have the same dtype" in message:
        return "the input's number format differs from the model's: convert it with .to(device=device, dtype=dtype)"
    if "selected index k out of range" in message:
        return "k is larger than the number of classes: torch.topk can return at most one entry per column"
    return None
