"""The book's headline numbers: what each chapter wrote (published numbers: :mod:`tsgen.book.references`).

Chapters call :meth:`tsgen.book.Chapter.save_results`, which writes
``<chapter>.<profile>.json`` (rows, notes, provenance) to
:func:`~tsgen.book.chapter.results_dir`. ``book/results`` holds the committed
files: the default profile's are the references that ``make test`` compares
every run with (refreshed by ``make notebooks``), the other profiles'
(``*.gpu.json``) were committed by whoever ran them. A book run writes its own
files beside its executed chapters (``book/chapters/results``), and the results
chapter shows them over the committed ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .chapter import results_dir

# Which system each chapter belongs to (the book's four systems plus data and metrics).
SYSTEMS = {
    "01_data": "Data",
    "02_ttt_refactoring": "TTT imputer",
    "03_ttt_imputation": "TTT imputer",
    "04_adaptation_engines": "Test-time-training engines",
    "05_ttm_glucose": "TTM glucose forecasting",
    "06_delay_embedding": "Irregular-to-regular generation",
    "07_irregular_generation": "Irregular-to-regular generation",
    "08_generation_ablations": "Irregular-to-regular generation",
    "09_metrics": "Generation metrics",
}


COMMITTED = Path(__file__).resolve().parents[2] / "book" / "results"
# the book's profiles, from the smoke run to the paper's scale
PROFILES = ("default", "reference", "gpu")


def load_results(directory: str | Path | None = None) -> dict[tuple[str, str], dict]:
    """Results files keyed by ``(chapter, profile)``: ``directory``'s, or this run's over the committed ones.

    With no ``directory``: the committed files of ``book/results``, then those
    of :func:`results_dir` (this run's), which replace a committed file of the
    same chapter and profile.
    """
    if directory is not None:
        return _read_results(Path(directory))
    records = _read_results(COMMITTED)
    if results_dir().resolve() != COMMITTED and results_dir().exists():
        records.update(_read_results(results_dir()))
    return records


def _read_results(directory: Path) -> dict[tuple[str, str], dict]:
    records = {}
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text())
        missing = {"chapter", "profile", "rows", "provenance"} - set(record)
        if missing:
            raise ValueError(
                f"{path} is not a results file: it lacks {sorted(missing)}"
            )
        records[record["chapter"], record["profile"]] = record
    return records


def provenance_row(record: dict) -> dict:
    """Where a results file came from, in one line of a table."""
    p = record["provenance"]
    return {
        "chapter": record["chapter"],
        "profile": record["profile"],
        "system": SYSTEMS.get(record["chapter"], "other"),
        "device": p.get("device"),
        "commit": p.get("git commit"),
        "date (UTC)": p.get("started (UTC)"),
        "rows": len(record["rows"]),
        "notes": record.get("notes", ""),
    }


def rows_frame(record: dict) -> pd.DataFrame:
    """A results file's rows as a DataFrame, with its profile as the first column."""
    frame = pd.DataFrame(record["rows"])
    frame.insert(0, "profile", record["profile"])
    return frame


def profile_runs(
    chapter: str,
    profile: str | None = None,
    rows: pd.DataFrame | None = None,
    directory: str | Path | None = None,
) -> dict[str, pd.DataFrame]:
    """A chapter's results rows per profile, from its results files (:func:`load_results`).

    Ordered as :data:`PROFILES`, then any other profile by name. ``rows`` (this
    run's table) replace the file of ``profile``, so a chapter can set its own
    run beside the others before or without saving it.
    """
    runs = {
        name: pd.DataFrame(record["rows"])
        for (stem, name), record in load_results(directory).items()
        if stem == chapter
    }
    if rows is not None:
        if profile is None:
            raise ValueError("profile_runs: rows need the profile they ran at")
        runs[profile] = rows
    rank = {name: i for i, name in enumerate(PROFILES)}
    return {
        name: runs[name]
        for name in sorted(runs, key=lambda n: (rank.get(n, len(rank)), n))
    }
