import json

import pandas as pd
import pytest

from tsgen.book.results import load_results, profile_runs


def _write(directory, chapter, profile, rows):
    record = {"chapter": chapter, "profile": profile, "rows": rows, "provenance": {}}
    (directory / f"{chapter}.{profile}.json").write_text(json.dumps(record))


def test_profile_runs_orders_the_profiles_and_puts_this_run_over_its_file(tmp_path):
    _write(tmp_path, "07_gen", "gpu", [{"score": 3.0}])
    _write(tmp_path, "07_gen", "default", [{"score": 1.0}])
    _write(tmp_path, "07_gen", "laptop", [{"score": 4.0}])
    _write(tmp_path, "03_other", "reference", [{"score": 9.0}])
    runs = profile_runs("07_gen", directory=tmp_path)
    assert list(runs) == ["default", "gpu", "laptop"]
    assert runs["gpu"]["score"].tolist() == [3.0]
    this_run = pd.DataFrame({"score": [2.0]})
    runs = profile_runs("07_gen", "default", this_run, directory=tmp_path)
    assert runs["default"]["score"].tolist() == [2.0]
    runs = profile_runs("07_gen", "reference", this_run, directory=tmp_path)
    assert list(runs) == ["default", "reference", "gpu", "laptop"]
    with pytest.raises(ValueError, match="need the profile"):
        profile_runs("07_gen", rows=this_run, directory=tmp_path)


def test_a_file_that_is_not_a_results_file_is_named(tmp_path):
    (tmp_path / "notes.json").write_text(json.dumps({"chapter": "x"}))
    with pytest.raises(ValueError, match="notes.json is not a results file"):
        load_results(tmp_path)
