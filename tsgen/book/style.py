"""The book's plot style, in one place (applied by :meth:`tsgen.book.Chapter.begin`)."""

from __future__ import annotations

BOOK_STYLE = {"figure.dpi": 80, "axes.spines.top": False, "axes.spines.right": False}


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib's rcParams."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(BOOK_STYLE)
