"""The book layer: run chapters with papermill, and the helpers each chapter calls.

Nothing else in :mod:`tsgen` imports this package. The runner (papermill) is
imported on first use, so ``from tsgen.book import Chapter`` stays light.
"""

from .chapter import Chapter, git_commit, results_dir
from .references import references
from .style import use_book_style
from .tables import format_mean_std, mean_std, summarize

_RUNNER = (
    "check_parameters",
    "execute",
    "load_profile",
    "notebook_parameters",
    "run_notebooks",
)

__all__ = [
    "Chapter",
    "format_mean_std",
    "git_commit",
    "mean_std",
    "references",
    "results_dir",
    "summarize",
    "use_book_style",
    *_RUNNER,
]


def __getattr__(name):
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
