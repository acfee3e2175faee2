"""The estimator base class on a toy estimator; every real estimator is checked in test_estimator_contract.py."""

import json
from dataclasses import dataclass

import pytest
import torch

from tsgen.config import JSONConfig, positive_int
from tsgen.estimator import Estimator, TrainingLog
from tsgen.runtime import seeded


@dataclass
class LineConfig(JSONConfig):
    n_features: int = 2
    epochs: int = 3
    seed: int = 0

    def __post_init__(self):
        positive_int(self, "n_features", "epochs")


class Line(Estimator):
    config_class = LineConfig

    def __init__(self, config, device="cpu"):
        super().__init__(config, device)
        with seeded(config.seed):
            self.net = torch.nn.Linear(config.n_features, 1)
        self.fitted = False

    def fit(self, x, y, *, progress=False, logging_dir=None):
        optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)
        with TrainingLog(self.history, logging_dir) as log:
            for epoch in range(self.config.epochs):
                loss = torch.nn.functional.mse_loss(self.net(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                log(epoch + 1, loss=loss.item())
        self.fitted = True
        return self

    def predict(self, x):
        return self.net(x).detach()

    def _tensors(self):
        return dict(self.net.state_dict())

    def _load_tensors(self, tensors):
        self.net.load_state_dict(tensors)

    def _state(self):
        return {"fitted": self.fitted}

    def _restore(self, state):
        self.fitted = state["fitted"]


class Other(Line):
    pass


@pytest.fixture
def data():
    x = torch.linspace(0, 1, 16).reshape(8, 2)
    return x, x.sum(1, keepdim=True)


def test_save_load_round_trip(tmp_path, data):
    model = Line(LineConfig()).fit(*data)
    path = model.save(tmp_path / "line")
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "state.json",
        "weights.safetensors",
    ]
    state = json.loads((path / "state.json").read_text())
    assert (
        state["kind"] == "Line" and state["format"] == 2 and len(state["history"]) == 3
    )
    again = Line.load(path)
    assert torch.equal(again.predict(data[0]), model.predict(data[0]))
    assert again.history == model.history and again.fitted
    assert {oct(p.stat().st_mode & 0o777) for p in path.iterdir()} == {"0o644"}


def test_a_checkpoint_is_replaced_only_when_asked(tmp_path, data):
    first = Line(LineConfig()).fit(*data).save(tmp_path / "line")
    second = Line(LineConfig(seed=1)).fit(*data)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        second.save(first)
    second.save(first, overwrite=True)
    assert torch.equal(Line.load(first).predict(data[0]), second.predict(data[0]))
    # no staging or retired directories left
    assert [p.name for p in tmp_path.iterdir()] == ["line"]


def test_a_failed_save_leaves_the_previous_checkpoint_whole(
    tmp_path, data, monkeypatch
):
    good = Line(LineConfig()).fit(*data)
    path = good.save(tmp_path / "line")
    broken = Line(LineConfig(seed=2)).fit(*data)
    # not JSON: fails mid-save
    monkeypatch.setattr(Line, "_state", lambda self: {"fitted": float("nan")})
    with pytest.raises(ValueError):
        broken.save(path, overwrite=True)
    assert torch.equal(Line.load(path).predict(data[0]), good.predict(data[0]))
    assert [p.name for p in tmp_path.iterdir()] == ["line"]


def test_loading_another_kind_or_a_damaged_checkpoint_is_a_clear_error(tmp_path, data):
    path = Other(LineConfig()).fit(*data).save(tmp_path / "other")
    with pytest.raises(ValueError, match="holds a Other checkpoint, not a Line"):
        Line.load(path)
    with pytest.raises(ValueError, match="config.json is missing"):
        Line.load(tmp_path)
    (path / "weights.safetensors").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match="weights.safetensors is damaged"):
        Other.load(path)


def test_load_on_an_instance_says_how_to_load():
    with pytest.raises(TypeError, match=r"model = Line.load\(path\)"):
        Line(LineConfig()).load("anywhere")


def test_config_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="needs a LineConfig"):
        Line({"n_features": 2})


def test_training_log_writes_tensorboard_scalars(tmp_path, data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Line(LineConfig()).fit(*data, logging_dir=tmp_path / "tb")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [s.step for s in events.Scalars("loss")] == [1, 2, 3]
