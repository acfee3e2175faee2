"""The executed chapters against what is committed: printed text, and numbers within tolerances.

``make test-chapters`` executes every chapter into ``book/chapters`` first (a
chapter whose executed copy is up to date is not executed again: ``make book``
reuses the same copies). Two checks per chapter:

* the cells tagged ``check-output`` print the same text as the stored
  outputs in ``notebooks/``, with every decimal number masked: text, shapes and
  counts are machine-independent, decimals are left to the next check;
* the results file the run wrote (``book/chapters/results``) matches the
  committed reference (``book/results``) within the tolerances declared, with
  their reasons, in ``book/results/tolerances.yaml``.

Refresh both references after a deliberate change with ``make notebooks``.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest

from tsgen.book.regression import TOLERANCES, compare, read_record, read_tolerances

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = Path(os.environ.get("TSGEN_EXECUTED_DIR", ROOT / "book" / "chapters"))
REFERENCES = ROOT / "book" / "results"
STEMS = [p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
CHECKED = "check-output"
DECIMAL = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+[eE][-+]?\d+|\bnan\b|\binf\b")


def executed(stem: str) -> nbformat.NotebookNode:
    path = EXECUTED / f"{stem}.ipynb"
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `make chapters` first")
    return nbformat.read(path, as_version=4)


def printed(cell) -> str:
    """The text a cell shows (streams and plain-text results), decimals masked."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return DECIMAL.sub("#.#", "".join(parts))


def checked_cells(notebook) -> list:
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and CHECKED in cell.metadata.get("tags", [])
        and "injected-parameters" not in cell.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("stem", STEMS)
def test_checked_outputs_print_the_stored_text(stem):
    stored = checked_cells(nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4))
    ran = checked_cells(executed(stem))
    assert len(ran) == len(stored), f"{stem}: checked cells differ in number"
    for index, (want, got) in enumerate(zip(stored, ran, strict=True)):
        assert got.source == want.source, (
            f"{stem}: checked cell {index} differs from notebooks/{stem}.ipynb: "
            "the executed copy is stale (run `make chapters`)"
        )
        assert printed(got) == printed(want), (
            f"{stem}, checked cell {index} (starting {want.source[:60]!r}) printed "
            "other text than its stored output (decimals masked)"
        )


TOLERANCE_RULES = read_tolerances(REFERENCES / TOLERANCES)


@pytest.mark.parametrize(
    "stem", [s for s in STEMS if (REFERENCES / f"{s}.default.json").exists()]
)
def test_headline_numbers_within_tolerance_of_the_reference(stem):
    reference = read_record(REFERENCES / f"{stem}.default.json")
    obtained = read_record(EXECUTED / "results" / f"{stem}.default.json")
    problems = compare(reference, obtained, TOLERANCE_RULES.get(stem, {}))
    assert not problems, "\n".join(
        [f"{len(problems)} number(s) moved beyond their tolerance:"] + problems
    )


def test_every_chapter_that_saves_results_has_a_reference():
    saving = [
        stem
        for stem in STEMS
        if any(
            cell.cell_type == "code" and "save_results(" in cell.source
            for cell in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells
        )
    ]
    missing = [s for s in saving if not (REFERENCES / f"{s}.default.json").exists()]
    assert not missing, (
        f"no committed reference in book/results for {missing}: "
        "run `make notebooks` and commit book/results/*.default.json"
    )
