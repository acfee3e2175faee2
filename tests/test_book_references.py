import math

import pytest

from tsgen.book.references import REFERENCE_SYSTEMS, published_value, references


def test_every_system_has_rows_and_one_source_per_row():
    for system in REFERENCE_SYSTEMS:
        rows = references(system)
        assert (
            len(rows)
            and rows["source"].notna().all()
            and (rows["system"] == system).all()
        )


def test_generation_numbers_use_tsgens_data_set_names():
    disc = references("Irregular-to-regular generation", metric="discriminative")
    assert set(disc["dataset"]) == {"sines", "stock", "energy"}
    assert (
        published_value(
            "Irregular-to-regular generation",
            metric="discriminative",
            dataset="energy",
            missing=0.7,
        )
        == 0.128
    )
    assert math.isnan(
        published_value(
            "Irregular-to-regular generation",
            metric="discriminative",
            dataset="energy",
            missing=0.9,
        )
    )


def test_bad_queries_are_clear_errors():
    with pytest.raises(ValueError, match="unknown system"):
        references("Imputation")
    with pytest.raises(ValueError, match="no column"):
        references("TTT imputer", horizon=30)
    with pytest.raises(ValueError, match="be more specific"):
        published_value("Irregular-to-regular generation", metric="discriminative")
