"""What every chapter does around its own content: pick a device, set the plot style, show provenance.

A chapter never seeds global generators: every call into :mod:`tsgen` takes
its seed explicitly (``chapter.seed`` or ``chapter.seed + i``), so a chapter's
numbers do not depend on what ran before them in the kernel.
"""

from __future__ import annotations

import datetime as dt
import html
import inspect
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import tsgen
from tsgen.runtime import DEVICE_CHECK_ENV, check_seed, resolve_device

from .style import use_book_style

# Names IPython puts in a kernel's namespace; they are not chapter parameters.
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}
REQUIRED = ("seed", "device")
# The runner tells a chapter which profile it runs under (unset: the defaults).
PROFILE_ENV = "TSGEN_PROFILE"
RESULTS_ENV = "TSGEN_RESULTS_DIR"
# DEVICE_CHECK_ENV (TSGEN_DEVICE_CHECK=1, set by `make test-gpu-profile`): the kernel
# checks that no CPU tensor meets one on the chapter's device (see tsgen.book.devices).


def results_dir() -> Path:
    """Where chapters write their headline numbers: ``$TSGEN_RESULTS_DIR`` or ``book/results``."""
    default = Path(tsgen.__file__).resolve().parent.parent / "book" / "results"
    return Path(os.environ.get(RESULTS_ENV, default))


def git_commit() -> str:
    """The commit of the tsgen checkout, with ``-dirty`` if tracked files changed; ``unknown`` outside git."""
    repo = Path(tsgen.__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


@dataclass
class Chapter:
    """The run of one chapter: its parameters, device and clock.

    Create it with :meth:`begin` right after the parameters cell, and call
    :meth:`provenance` in the last cell. ``begin`` resolves ``device``, applies
    the book's plot style, and sets torch's CPU threads when the chapter has a
    ``torch_threads`` parameter (0 keeps torch's default).
    """

    parameters: dict
    device: str
    started: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc)
    )
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    @classmethod
    def begin(cls, namespace: dict) -> Chapter:
        """Collect the parameters from the notebook's ``globals()``; resolve the device.

        Modules, callables, private names and UPPER_CASE constants (what the
        setup cell imports) are not parameters.
        """
        parameters = {
            name: value
            for name, value in namespace.items()
            if not name.startswith("_")
            and not name.isupper()
            and name not in _KERNEL_NAMES
            and not inspect.ismodule(value)
            and not callable(value)
        }
        missing = [name for name in REQUIRED if name not in parameters]
        if missing:
            raise ValueError(
                f"the parameters cell must define {missing} "
                "(every chapter has seed and device)"
            )
        check_seed(parameters["seed"])
        threads = parameters.get("torch_threads", 0)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        use_book_style()
        if os.environ.get(DEVICE_CHECK_ENV) == "1":
            from .devices import enable

            enable()
        return cls(
            parameters=parameters, device=resolve_device(str(parameters["device"]))
        )

    @property
    def seed(self) -> int:
        return int(self.parameters["seed"])

    def provenance_table(self) -> dict[str, str]:
        import torch

        device = self.device
        if device.startswith("cuda"):
            device += f" ({torch.cuda.get_device_name(torch.device(device))})"
        return {
            "parameters": ", ".join(f"{k}={v!r}" for k, v in self.parameters.items()),
            "tsgen": tsgen.__version__,
            "git commit": git_commit(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "device": device,
            "started (UTC)": self.started.strftime("%Y-%m-%d %H:%M:%S"),
            "wall time": f"{time.perf_counter() - self._clock:.1f} s",
        }

    @property
    def profile(self) -> str:
        return os.environ.get(PROFILE_ENV, "default")

    def save_results(self, name: str, rows, notes: str = "") -> None:
        """Write a chapter's headline numbers to ``book/results/<name>.<profile>.json``.

        ``rows`` is a DataFrame or a list of dicts (one row per number or per
        configuration); the file also holds the profile and the provenance table,
        so the results chapter can say where each row came from.
        """
        if hasattr(rows, "to_dict"):
            rows = (
                rows.reset_index().to_dict("records")
                if _has_named_index(rows)
                else rows.to_dict("records")
            )
        rows = [{str(k): _plain(v) for k, v in dict(row).items()} for row in rows]
        if not rows:
            raise ValueError("save_results needs at least one row")
        record = {
            "chapter": name,
            "profile": self.profile,
            "notes": notes,
            "provenance": self.provenance_table(),
            "rows": rows,
        }
        path = results_dir() / f"{name}.{self.profile}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")

    def provenance(self) -> Provenance:
        """How this chapter was produced; shows as a table in the notebook and the book."""
        return Provenance(self.provenance_table())


def _has_named_index(frame) -> bool:
    return any(name is not None for name in getattr(frame.index, "names", [None]))


def _plain(value):
    """JSON-ready scalars: NumPy numbers become Python numbers, NaN null, ±inf and anything else a string."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if value != value else str(value)
    return (
        value
        if isinstance(value, (int, float, str, bool)) or value is None
        else str(value)
    )


class Provenance(dict):
    """A provenance table: HTML in a notebook, aligned text anywhere else."""

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self.items()
        )
        return f'<table class="provenance"><caption>Provenance</caption>{rows}</table>'

    def __repr__(self) -> str:
        width = max(map(len, self))
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.items())
