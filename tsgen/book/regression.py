"""A chapter's headline numbers against its committed reference, within declared tolerances.

``make test`` executes every chapter (once; see :mod:`tsgen.book.runner`) and
compares each results file it wrote with the committed one in ``book/results``
(:data:`tsgen.book.results.COMMITTED`). Text must match exactly (it names the
rows); every number must lie within the tolerance that
``book/results/tolerances.yaml`` declares for its chapter and column, with the
reason. Three kinds of rule::

    exact: true           deterministic quantities (shapes, counts, missing rates)
    rel: 1e-6             |got - expected| <= rel * |expected| (+ abs)
    spread: "mae std"     |got - expected| <= k * that row's "mae std" (+ abs):
    k: 3                  the seed-to-seed spread the chapter itself measured
    checked: false        not compared (wall-clock timings: machine and load move them)

A column a chapter writes but the file does not declare is itself a failure,
so no number goes unchecked by accident.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

TOLERANCES = "tolerances.yaml"


@dataclass(frozen=True)
class Tolerance:
    """How far one column may move: ``rel``ative, ``k`` times a ``spread`` column, plus ``abs``."""

    checked: bool = True
    exact: bool = False
    rel: float = 0.0
    abs: float = 0.0
    spread: str | None = None
    k: float = 3.0
    why: str = ""

    def allowed(self, expected: float, row: dict) -> float:
        if self.exact:
            return 0.0
        bound = self.abs + self.rel * abs(expected)
        if self.spread is not None:
            width = row.get(self.spread)
            if not isinstance(width, (int, float)):
                raise ValueError(
                    f"spread column {self.spread!r} is missing or not a number"
                )
            bound += self.k * abs(width)
        return bound

    def describe(self, expected: float, row: dict) -> str:
        if self.exact:
            return "exact"
        parts = [f"rel {self.rel:g}"] if self.rel else []
        if self.spread is not None:
            parts.append(f"{self.k:g} x {self.spread} ({row.get(self.spread)})")
        if self.abs:
            parts.append(f"abs {self.abs:g}")
        return f"±{self.allowed(expected, row):.4g} = " + " + ".join(parts)


def read_tolerances(path: str | Path) -> dict[str, dict[str, Tolerance]]:
    """``{chapter: {column: Tolerance}}`` from a tolerances file; an unknown key is an error naming it."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) or {}
    tolerances = {}
    for chapter, columns in raw.items():
        tolerances[chapter] = {}
        for column, rule in (columns or {}).items():
            try:
                tolerances[chapter][column] = Tolerance(**rule)
            except TypeError as err:
                raise ValueError(f"{path}: {chapter} / {column}: {err}") from None
            if not tolerances[chapter][column].why:
                raise ValueError(f"{path}: {chapter} / {column} does not say why")
    return tolerances


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _label(row: dict, index: int, tolerances: dict[str, Tolerance]) -> str:
    """The row by what names it: its text columns and its exact ones (parameters, shapes)."""
    keys = [
        f"{k}={v}"
        for k, v in row.items()
        if isinstance(v, str) or (k in tolerances and tolerances[k].exact)
    ]
    return f"row {index} ({', '.join(keys)})" if keys else f"row {index}"


def compare(
    reference: dict, obtained: dict, tolerances: dict[str, Tolerance]
) -> list[str]:
    """Every difference between two results records of one chapter, beyond ``tolerances``.

    Each message names the chapter, the row (by its text columns), the column,
    the expected and obtained values and the tolerance. Returns ``[]`` when
    the two agree.
    """
    chapter = reference["chapter"]
    expected_rows, obtained_rows = reference["rows"], obtained["rows"]
    if len(expected_rows) != len(obtained_rows):
        return [
            f"{chapter}: {len(obtained_rows)} rows obtained, "
            f"{len(expected_rows)} expected"
        ]
    problems = []
    for index, (want, got) in enumerate(zip(expected_rows, obtained_rows, strict=True)):
        where = f"{chapter}, {_label(want, index, tolerances)}"
        if set(want) != set(got):
            problems.append(
                f"{where}: columns {sorted(got)} obtained, {sorted(want)} expected"
            )
            continue
        for column, expected in want.items():
            value = got[column]
            if not (_is_number(expected) and _is_number(value)):
                if value != expected:
                    problems.append(
                        f"{where}, column {column!r}: expected {expected!r}, got {value!r}"
                    )
                continue
            rule = tolerances.get(column)
            if rule is None:
                problems.append(
                    f"{where}, column {column!r}: no tolerance declared in {TOLERANCES}"
                )
                continue
            if not rule.checked or (math.isnan(expected) and math.isnan(value)):
                continue
            allowed = rule.allowed(expected, want)
            if not (abs(value - expected) <= allowed or math.isclose(value, expected)):
                problems.append(
                    f"{where}, column {column!r}: expected {expected!r}, got {value!r}, "
                    f"difference {abs(value - expected):.4g} > tolerance "
                    f"{rule.describe(expected, want)} ({rule.why})"
                )
    return problems


def read_record(path: str | Path) -> dict:
    """A results file, with an error that names it when it is missing or not JSON."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
