import numpy as np
import pandas as pd

from tsgen.book.tables import format_mean_std, mean_std, summarize


def test_mean_std_text():
    assert mean_std([1.0, 2.0, 3.0], digits=2) == "2.00 ± 1.00"
    assert mean_std([4.0]) == "4.000 ± 0.000"
    assert mean_std([np.nan, np.nan]) == "—"
    assert format_mean_std(0.5, np.nan, 1) == "0.5 ± 0.0"
    assert format_mean_std(np.nan, 0.1) == "—"


def test_summarize_keeps_group_order_and_gives_numbers_or_text():
    runs = pd.DataFrame(
        {
            "model": ["b", "b", "a", "a"],
            "seed": [0, 1, 0, 1],
            "mse": [1.0, 3.0, 2.0, 2.0],
        }
    )
    numbers = summarize(runs, "model", "mse")
    assert list(numbers["model"]) == ["b", "a"]
    assert numbers.loc[0, "mse mean"] == 2.0 and np.isclose(
        numbers.loc[0, "mse std"], np.sqrt(2)
    )
    text = summarize(runs, ["model"], ["mse"], digits=1)
    assert list(text["mse"]) == ["2.0 ± 1.4", "2.0 ± 0.0"]
    single = summarize(runs[runs.seed == 0], "model", "mse")
    assert (single["mse std"] == 0).all()
