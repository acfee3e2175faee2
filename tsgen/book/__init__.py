"""The book machinery: run chapters with papermill, and the helpers each chapter calls.

The runner (papermill) is imported on first use, so models and metrics that
only need :func:`resolve_device` or :func:`seed_everything` stay light.
"""

from .chapter import Chapter, git_commit, resolve_device, results_dir, seed_everything

_RUNNER = ("check_parameters", "execute", "load_profile", "notebook_parameters", "run_notebooks")

__all__ = ["Chapter", "git_commit", "resolve_device", "results_dir", "seed_everything", *_RUNNER]


def __getattr__(name):
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
