import json

import pytest

from tsgen.book.regression import Tolerance, compare, read_record, read_tolerances


def record(rows):
    return {"chapter": "03_demo", "profile": "default", "rows": rows}


REFERENCE = record(
    [
        {"data": "stock", "windows": 345, "mae mean": 0.20, "mae std": 0.01},
        {"data": "energy", "windows": 700, "mae mean": 0.40, "mae std": 0.05},
    ]
)
RULES = {
    "windows": Tolerance(exact=True, why="data shapes are deterministic"),
    "mae mean": Tolerance(spread="mae std", k=2, why="seed-to-seed spread"),
    "mae std": Tolerance(rel=0.5, why="a std over 3 seeds is itself noisy"),
}


def test_numbers_within_their_tolerance_pass():
    moved = record([dict(r) for r in REFERENCE["rows"]])
    moved["rows"][0]["mae mean"] = 0.219  # within 2 x 0.01
    moved["rows"][1]["mae std"] = 0.07  # within 50 %
    assert compare(REFERENCE, moved, RULES) == []


def test_a_failure_names_chapter_row_column_expected_got_and_tolerance():
    moved = record([dict(r) for r in REFERENCE["rows"]])
    moved["rows"][1]["mae mean"] = 0.55
    moved["rows"][0]["windows"] = 346
    problems = compare(REFERENCE, moved, RULES)
    assert problems == [
        "03_demo, row 0 (data=stock, windows=345), column 'windows': expected 345, got 346, "
        "difference 1 > tolerance exact (data shapes are deterministic)",
        "03_demo, row 1 (data=energy, windows=700), column 'mae mean': expected 0.4, "
        "got 0.55, "
        "difference 0.15 > tolerance ±0.1 = 2 x mae std (0.05) "
        "(seed-to-seed spread)",
    ]


def test_text_rows_and_undeclared_columns_are_failures():
    moved = record([dict(r) for r in REFERENCE["rows"]])
    moved["rows"][0]["data"] = "sines"
    assert (
        "column 'data': expected 'stock', got 'sines'"
        in compare(REFERENCE, moved, RULES)[0]
    )
    assert "no tolerance declared" in compare(REFERENCE, REFERENCE, {})[0]
    assert compare(REFERENCE, record(REFERENCE["rows"][:1]), RULES) == [
        "03_demo: 1 rows obtained, 2 expected"
    ]


def test_unchecked_columns_and_matching_nans_pass():
    rules = {
        "seconds": Tolerance(checked=False, why="wall-clock time"),
        "mae": Tolerance(rel=0.1, why="single seed"),
    }
    reference = record([{"model": "a", "seconds": 1.0, "mae": float("nan")}])
    obtained = record([{"model": "a", "seconds": 9.0, "mae": float("nan")}])
    assert compare(reference, obtained, rules) == []
    obtained["rows"][0]["mae"] = 0.3
    assert (
        "column 'mae': expected nan, got 0.3" in compare(reference, obtained, rules)[0]
    )


def test_tolerances_file_must_say_why(tmp_path):
    path = tmp_path / "tolerances.yaml"
    path.write_text("03_demo:\n  windows: {exact: true, why: deterministic}\n")
    assert read_tolerances(path)["03_demo"]["windows"].exact
    path.write_text("03_demo:\n  windows: {exact: true}\n")
    with pytest.raises(ValueError, match="03_demo / windows does not say why"):
        read_tolerances(path)
    path.write_text("03_demo:\n  windows: {exakt: true, why: x}\n")
    with pytest.raises(ValueError, match="exakt"):
        read_tolerances(path)


def test_read_record_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_record(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_record(tmp_path / "bad.json")
    (tmp_path / "good.json").write_text(json.dumps(REFERENCE))
    assert read_record(tmp_path / "good.json") == REFERENCE
