import numpy as np
import pandas as pd
import pytest

from tsgen.generation import (
    ABLATIONS,
    DELAY_EMBEDDINGS,
    METRICS,
    MetricProtocol,
    benchmark_windows,
    delay_embedding_table,
    generation_ablations,
    generation_grid,
    generation_scores,
    inverse_comparison,
    round_trip_errors,
    score_columns,
    transform_timings,
)

TINY = dict(
    tst_d_model=8,
    tst_heads=2,
    tst_layers=1,
    tst_feedforward=16,
    decoder_layers=1,
    unet_channels=(8, 16),
    unet_attention=(False, True),
    tst_epochs=1,
    epochs=1,
    batch_size=16,
    sampling_steps=3,
)
QUICK = MetricProtocol(
    disc_iterations=3, pred_iterations=3, ts2vec_iterations=2, repeats=1
)
SCORE_COLUMNS = [c for m in METRICS for c in (m, f"{m}_std")]


def test_delay_embedding_table_describes_each_preset():
    table = delay_embedding_table()
    assert table["length"].tolist() == sorted(DELAY_EMBEDDINGS)
    assert table["image_size"].tolist() == [8, 16, 64]
    assert table.loc[0, "columns"] == 7 and table.loc[0, "partial_column_steps"] == 6
    assert table.loc[0, "copies_per_step"] == pytest.approx(54 / 24)


def test_round_trip_is_exact_on_presets_and_random_configurations():
    errors = round_trip_errors(n_random=5, seed=1)
    assert len(errors) == len(DELAY_EMBEDDINGS) + 5
    assert errors["same_as_loop"].all()
    assert (errors[["error_average", "error_first"]] == 0).all().all()
    pd.testing.assert_frame_equal(errors, round_trip_errors(n_random=5, seed=1))


def test_averaging_inverse_beats_the_first_pixel_as_predicted():
    table = inverse_comparison((0.1, 0.2), n_windows=64, seed=0)
    assert table["pixel_noise"].tolist() == [0.1, 0.2]
    assert (table["rmse_average"] < table["rmse_first"]).all()
    np.testing.assert_allclose(table["ratio"], table["expected_ratio"], rtol=0.05)


def test_transform_timings_have_one_positive_row_per_preset():
    timings = transform_timings(
        n_windows=4, n_features=2, repeats=1, presets={24: (3, 8), 96: (6, 16)}
    )
    assert timings["length"].tolist() == [24, 96]
    assert (timings[["vectorised_ms", "loop_ms", "ratio"]] > 0).all().all()


def test_benchmark_windows_and_metric_protocol():
    windows = benchmark_windows("sines", 24, 10, seed=0)
    assert (
        windows.shape == (10, 24, 5)
        and windows.dtype == np.float32
        and (0 <= windows).all()
    )
    assert np.array_equal(windows, benchmark_windows("sines", 24, 10, seed=0))
    with pytest.raises(ValueError, match="unknown data set"):
        benchmark_windows("air", 24)
    assert MetricProtocol() == MetricProtocol(2000, 5000, 0, 5)
    with pytest.raises(ValueError, match="repeats"):
        MetricProtocol(repeats=0)
    scores = generation_scores(windows, windows[::-1].copy(), QUICK)
    assert list(scores) == list(METRICS)
    row = score_columns(scores)
    assert list(row) == SCORE_COLUMNS and all(np.isfinite(list(row.values())))


def test_generation_grid_has_one_row_per_condition_and_repeats_under_a_seed():
    samples = {}
    kwargs = dict(n_windows=16, overrides=TINY, protocol=QUICK, seed=0)
    grid = generation_grid(["sines"], [0.3, 0.6], [24], samples=samples, **kwargs)
    assert list(grid.columns) == [
        "length",
        "dataset",
        "missing",
        *SCORE_COLUMNS,
        "fit_seconds",
        "sample_seconds",
    ]
    assert grid[["length", "dataset", "missing"]].values.tolist() == [
        [24, "sines", 0.3],
        [24, "sines", 0.6],
    ]
    assert np.isfinite(grid.drop(columns="dataset").to_numpy(float)).all()
    assert set(samples) == {(24, "sines")} and samples[24, "sines"]["real"].shape == (
        16,
        24,
        5,
    )
    assert {
        rate: fake.shape for rate, fake in samples[24, "sines"]["generated"].items()
    } == {0.3: (16, 24, 5), 0.6: (16, 24, 5)}
    again = generation_grid(["sines"], [0.3, 0.6], [24], **kwargs)
    pd.testing.assert_frame_equal(grid[SCORE_COLUMNS], again[SCORE_COLUMNS])


def test_generation_ablations_share_a_model_between_sampling_variants():
    variants = ["EMA off", "zero fill", "ImagenI2R"]
    runs = generation_ablations(
        "sines",
        0.5,
        24,
        seeds=[1],
        variants=variants,
        n_windows=16,
        overrides=TINY,
        protocol=QUICK,
    )
    assert runs[["variant", "seed"]].values.tolist() == [[v, 1] for v in variants]
    assert list(runs.columns) == [
        "variant",
        "seed",
        *SCORE_COLUMNS,
        "fit_seconds",
        "sample_seconds",
    ]
    assert np.isfinite(runs.drop(columns="variant").to_numpy(float)).all()
    by_seed = runs.set_index("variant")
    # one model for both
    assert (
        by_seed.loc["ImagenI2R", "fit_seconds"] == by_seed.loc["EMA off", "fit_seconds"]
    )
    assert set(ABLATIONS) >= set(variants)
    with pytest.raises(ValueError, match="unknown ablation"):
        generation_ablations("sines", variants=["no diffusion"])


def test_projections_give_two_points_per_window_of_each_set():
    from tsgen.data import make_sines
    from tsgen.generation.experiments import projections

    real = make_sines(40, 24, 2, seed=0)
    fake = make_sines(50, 24, 2, seed=1)
    views = projections(real, fake, seed=0, max_windows=30)
    assert set(views) == {"PCA", "t-SNE"}
    for r, f in views.values():
        assert r.shape == (30, 2) and f.shape == (30, 2)
        assert np.isfinite(r).all() and np.isfinite(f).all()
    again = projections(real, fake, seed=0, max_windows=30)
    np.testing.assert_array_equal(again["t-SNE"][0], views["t-SNE"][0])
