from dataclasses import dataclass

import pytest

from tsgen.config import (
    JSONConfig,
    boolean,
    choice,
    finite,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    probability,
)


@dataclass
class Demo(JSONConfig):
    epochs: int = 3
    warmup: int = 0
    lr: float = 1e-3
    decay: float = 0.0
    shift: float = -1.0
    dropout: float = 0.1
    masked: bool = True
    kind: str = "linear"

    def __post_init__(self):
        positive_int(self, "epochs")
        non_negative_int(self, "warmup")
        positive(self, "lr")
        non_negative(self, "decay")
        finite(self, "shift")
        probability(self, "dropout", low_open=False)
        boolean(self, "masked")
        choice(self, "kind", ("linear", "mlp"))


def test_valid_values_are_normalised():
    config = Demo(epochs=2.0, lr=1)
    assert config.epochs == 2 and isinstance(config.epochs, int)
    assert isinstance(config.lr, float)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 2.5, "Demo.epochs must be a positive integer"),
        ("epochs", True, "Demo.epochs must be a positive integer"),
        ("epochs", "3", "Demo.epochs must be a positive integer"),
        ("epochs", 0, "Demo.epochs must be a positive integer"),
        ("warmup", -1, "Demo.warmup must be an integer >= 0"),
        ("lr", float("nan"), "Demo.lr must be a finite positive number"),
        ("lr", 0, "Demo.lr must be a finite positive number"),
        ("decay", float("inf"), "Demo.decay must be a finite number >= 0"),
        ("shift", float("nan"), "Demo.shift must be a finite number"),
        ("dropout", 1.0, r"Demo.dropout must be in \[0, 1\)"),
        ("masked", 1, "Demo.masked must be True or False"),
        ("kind", "cubic", "choose one of"),
    ],
)
def test_bad_values_name_the_class_and_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        Demo(**{field: value})


def test_json_round_trip_and_errors(tmp_path):
    config = Demo(epochs=5, kind="mlp")
    assert Demo.from_json(config.to_json()) == config
    config.to_json(tmp_path / "c.json")
    assert Demo.read(tmp_path / "c.json") == config
    with pytest.raises(ValueError, match="unknown field"):
        Demo.from_dict({"epoch": 5})
    (tmp_path / "bad.json").write_text('{"epochs": ')
    with pytest.raises(ValueError, match="bad.json.*not valid JSON"):
        Demo.read(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ValueError, match="empty.json"):
        Demo.read(tmp_path / "empty.json")
    with pytest.raises(ValueError, match="cannot read Demo"):
        Demo.read(tmp_path / "missing.json")
