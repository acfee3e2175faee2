"""TTMForecaster.fit under torchrun: two CPU processes (gloo), the same fit, rank 0 saves a checkpoint that loads.

The command the chapter and the README show:
``torchrun --nproc_per_node=2 train.py`` (here ``python -m torch.distributed.run``).
"""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import TTMForecaster

SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    from pathlib import Path

    import numpy as np
    import pandas as pd
    import torch

    from tsgen.forecasting import TTMConfig, TTMForecaster

    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {
                "datetime": pd.date_range("2024-01-01", periods=200, freq="5min"),
                "p_num": p,
                "bg_mM": 7 + 2 * np.sin(np.arange(200) / 8 + k) + rng.normal(0, 0.1, 200),
            }
        )
        for k, p in enumerate(["a", "b"])
    ]
    config = TTMConfig(
        model_path="random", training_mode="from_scratch", context_length=32,
        forecast_length=6, num_epochs=2, batch_size=16, device="cpu",
    )
    model = TTMForecaster(config).fit(pd.concat(frames), output_dir=out / "trainer")
    assert torch.distributed.is_initialized()
    assert torch.distributed.get_world_size() == 2
    if rank == 0:
        model.save(out / "ttm")
        model.predict(frames[0], stride=20).to_csv(out / "forecast.csv", index=False)
    (out / f"rank{rank}.done").write_text(str(len(model.history)))
    """
)


def test_fit_runs_under_torchrun_with_two_cpu_processes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # a session of its own, so that a hang kills the workers too, not only torchrun
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        _, stderr = run.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        _, stderr = run.communicate()
        pytest.fail(f"torchrun hung for 240 s; its stderr ends: {stderr[-3000:]}")
    assert run.returncode == 0, stderr[-3000:]
    # both ranks finished the same number of epochs
    assert (tmp_path / "rank0.done").read_text() == (
        tmp_path / "rank1.done"
    ).read_text()
    loaded = TTMForecaster.load(tmp_path / "ttm", device="cpu")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "datetime": pd.date_range("2024-01-01", periods=200, freq="5min"),
            "p_num": "a",
            "bg_mM": 7 + 2 * np.sin(np.arange(200) / 8) + rng.normal(0, 0.1, 200),
        }
    )
    saved = pd.read_csv(tmp_path / "forecast.csv")
    again = loaded.predict(frame, stride=20)
    np.testing.assert_allclose(again["bg_mM"], saved["bg_mM"], rtol=1e-5)
