"""The book machinery: run chapters with papermill, and the helpers each chapter calls."""

from .chapter import Chapter, git_commit, resolve_device, seed_everything
from .runner import check_parameters, execute, load_profile, notebook_parameters, run_notebooks

__all__ = [
    "Chapter",
    "check_parameters",
    "execute",
    "git_commit",
    "load_profile",
    "notebook_parameters",
    "resolve_device",
    "run_notebooks",
    "seed_everything",
]
