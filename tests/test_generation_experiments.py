import numpy as np
import pandas as pd
import pytest

from tsgen.data import add_missingness
from tsgen.generation import (
    ABLATIONS,
    DELAY_EMBEDDINGS,
    METRICS,
    GenerationConfig,
    ImagenI2R,
    MetricProtocol,
    benchmark_windows,
    cell_name,
    checkpoint_selection,
    claim_check,
    delay_embedding_table,
    discriminative_floor,
    generation_ablations,
    generation_cell,
    generation_grid,
    generation_scores,
    inverse_comparison,
    irregular_windows,
    profile_comparison,
    round_trip_errors,
    score_columns,
    training_plan,
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
    assert MetricProtocol() == MetricProtocol(2000, 5000, 0, 10)
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
        "discriminative_floor",
        "discriminative_floor_std",
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


def test_an_interrupted_generation_cell_resumes_to_the_uninterrupted_result(tmp_path):
    real = benchmark_windows("sines", 24, 16, seed=0)
    config = GenerationConfig.for_length(24, 5, **{**TINY, "epochs": 2})
    cell = dict(n_windows=16, protocol=QUICK, seed=0)
    row, generated = generation_cell("sines", 0.5, config, **cell)

    # what a run killed after its first checkpoint leaves behind
    directory = tmp_path / cell_name(24, "sines", 0.5)
    irregular = add_missingness(real, "timestep", 0.5, seed=0)
    ImagenI2R(config).fit(irregular, epochs=1).save(directory / "checkpoint")
    resumed_row, resumed = generation_cell(
        "sines", 0.5, config, directory=directory, checkpoint_every=1, **cell
    )
    assert np.array_equal(resumed, generated)
    assert {m: resumed_row[m] for m in SCORE_COLUMNS} == {
        m: row[m] for m in SCORE_COLUMNS
    }
    assert ImagenI2R.load(directory / "checkpoint").epoch == config.tst_epochs + 2

    # a finished cell is read back, not run again; another config is refused
    again_row, again = generation_cell(
        "sines", 0.5, config, directory=directory, **cell
    )
    assert again_row == resumed_row and np.array_equal(again, resumed)
    other = GenerationConfig.for_length(24, 5, **{**TINY, "epochs": 3})
    with pytest.raises(ValueError, match="another run.*epochs"):
        generation_cell("sines", 0.5, other, directory=directory, **cell)
    (directory / "result.json").unlink()
    with pytest.raises(ValueError, match="another config.*epochs"):
        generation_cell("sines", 0.5, other, directory=directory, **cell)


def test_generation_grid_with_a_work_dir_skips_finished_cells(tmp_path):
    kwargs = dict(n_windows=16, overrides=TINY, protocol=QUICK, seed=0)
    grid = generation_grid(["sines"], [0.3], [24], work_dir=tmp_path, **kwargs)
    assert (tmp_path / "length24-sines-missing0.3" / "result.json").exists()
    assert (tmp_path / "length24-sines-floor.json").exists()
    again = generation_grid(["sines"], [0.3], [24], work_dir=tmp_path, **kwargs)
    pd.testing.assert_frame_equal(grid, again)


def test_the_discriminative_floor_is_the_score_of_the_real_windows_against_themselves():
    real = benchmark_windows("sines", 24, 40, seed=0)
    protocol = MetricProtocol(disc_iterations=5, pred_iterations=1, repeats=2)
    floor = discriminative_floor(real, protocol, seed=3)
    assert len(floor.values) == 2 and 0 <= floor.mean <= 0.5
    again = discriminative_floor(real, protocol, seed=3)
    assert floor.values == again.values


def _grid_table(scores, floors=None):
    table = pd.DataFrame(
        {
            "length": 24,
            "dataset": ["sines", "sines", "stock"],
            "missing": [0.3, 0.5, 0.3],
            "discriminative": scores,
            "discriminative_std": 0.01,
        }
    )
    return table if floors is None else table.assign(discriminative_floor=floors)


PAPER = pd.DataFrame(
    {
        "length": 24,
        "dataset": ["sines", "sines", "stock", "energy"],
        "missing": [0.3, 0.5, 0.3, 0.3],
        "value": [0.013, 0.014, 0.007, 0.048],
    }
)


def test_profile_comparison_puts_each_run_beside_the_paper():
    runs = {
        "default": _grid_table([0.4, 0.3, 0.2]),
        "reference": _grid_table([0.02, 0.05, 0.01], floors=[0.01, 0.01, 0.02]),
    }
    table = profile_comparison(runs, PAPER)
    assert table.columns.tolist() == [
        "length", "dataset", "missing",
        "default", "default std", "default floor",
        "reference", "reference std", "reference floor",
        "paper",
    ]  # fmt: skip
    assert table["default floor"].isna().all()  # a run from before the floor existed
    assert table["reference"].tolist() == [0.02, 0.05, 0.01]
    assert table["paper"].tolist() == [0.013, 0.014, 0.007]
    with pytest.raises(ValueError, match="at least one run"):
        profile_comparison({}, PAPER)


def test_claim_check_compares_with_twice_the_paper_and_says_if_the_floor_allows_it():
    runs = {"reference": _grid_table([0.02, 0.05, 0.01], floors=[0.01, 0.01, 0.02])}
    check = claim_check(profile_comparison(runs, PAPER), "reference")
    assert check["within"].tolist() == [True, False, True]
    assert check["resolvable"].tolist() == [True, True, False]
    np.testing.assert_allclose(
        check["ratio"], [0.02 / 0.013, 0.05 / 0.014, 0.01 / 0.007]
    )
    with pytest.raises(ValueError, match="no scores of run 'gpu'"):
        claim_check(profile_comparison(runs, PAPER), "gpu")


def test_training_plan_counts_the_grid_steps_and_times_one():
    overrides = {**TINY, "epochs": 4, "tst_epochs": 2}
    plan = training_plan(["sines"], [0.3, 0.5], [24], n_windows=40, overrides=overrides)
    # 40 windows in batches of 16: 3 batches per epoch, for each of 2 models
    assert plan.to_dict("records") == [
        dict(length=24, models=2, windows=40, batch_size=16)
        | dict(phase1_steps=2 * 3 * 2, phase2_steps=2 * 3 * 4)
    ]
    timed = training_plan(
        ["sines"], [0.3], [24], n_windows=40, overrides=overrides, timed_steps=1
    )
    assert timed["seconds_per_step"].item() > 0
    assert timed["phase2_hours"].item() == pytest.approx(
        timed["phase2_steps"].item() * timed["seconds_per_step"].item() / 3600
    )


def test_irregular_windows_remove_steps_per_window_or_from_the_whole_series():
    per_window = irregular_windows("stock", 24, 0.5, seed=0)
    steps_missing = np.isnan(per_window).all(axis=2).sum(axis=1)
    assert (steps_missing == 12).all()
    series = irregular_windows("stock", 24, 0.5, seed=0, removal="series")
    gaps = np.isnan(series).all(axis=2)
    # overlapping windows share their gaps; the share per window varies
    assert np.array_equal(gaps[0, 1:], gaps[1, :-1])
    assert gaps.sum(axis=1).std() > 0
    assert abs(gaps.mean() - 0.5) < 0.02
    # released code: int(L * rate) steps (16 of 24 at 70 %), tsgen rounds (17)
    floor = irregular_windows("sines", 24, 0.7, 8, seed=0, rounding="floor")
    rounded = irregular_windows("sines", 24, 0.7, 8, seed=0)
    assert set(np.isnan(floor).all(axis=2).sum(axis=1)) == {16}
    assert set(np.isnan(rounded).all(axis=2).sum(axis=1)) == {17}
    with pytest.raises(ValueError, match="removal"):
        irregular_windows("stock", 24, 0.5, removal="global")


def test_data_and_metric_ablations_train_their_own_model_or_share_one():
    variants = [
        "ImagenI2R",
        "released: discriminator batch 32",
        "released: series removal",
    ]
    runs = generation_ablations(
        "stock",
        0.5,
        24,
        seeds=[0],
        variants=variants,
        n_windows=16,
        overrides=TINY,
        protocol=QUICK,
    ).set_index("variant")
    fit = runs["fit_seconds"]
    assert fit["released: discriminator batch 32"] == fit["ImagenI2R"]
    assert fit["released: series removal"] != fit["ImagenI2R"]
    assert np.isfinite(runs[SCORE_COLUMNS].to_numpy()).all()


def test_checkpoint_selection_scores_final_validation_and_test_choices():
    runs = checkpoint_selection(
        "sines",
        0.5,
        24,
        seeds=[0],
        every=1,
        n_windows=24,
        overrides={**TINY, "epochs": 3},
        protocol=QUICK,
    )
    assert runs["selection"].tolist() == ["final", "validation", "test"]
    assert runs.loc[0, "epoch"] == 4  # 1 pre-training + 3 diffusion epochs
    assert runs["epoch"].between(2, 4).all()
    assert np.isfinite(runs[SCORE_COLUMNS].to_numpy()).all()
