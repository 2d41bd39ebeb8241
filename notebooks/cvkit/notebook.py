"""What a notebook's setup cell calls once the kit is imported."""

from __future__ import annotations

from .errors import use_short_errors
from .weights import use_kit_cache

__all__ = ["setup_notebook"]


def setup_notebook() -> None:
    """Show the kit's errors as one line and point the libraries at the kit's weight cache, if there is one."""
    use_short_errors()
    use_kit_cache()
