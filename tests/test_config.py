from dataclasses import dataclass

import numpy as np
import pytest

from tsgen.config import (
    JSONConfig,
    ParameterTypeError,
    boolean,
    choice,
    finite,
    integer,
    non_negative,
    non_negative_int,
    number,
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


@pytest.mark.parametrize(
    "value, minimum, error, message",
    [
        (2.7, 1, ParameterTypeError, "n must be a positive integer; got 2.7"),
        ("3", 1, ParameterTypeError, "n must be a positive integer; got '3'"),
        (True, 1, ParameterTypeError, "n must be a positive integer; got True"),
        (float("nan"), 1, ParameterTypeError, "got nan"),
        (0, 1, ValueError, "n must be a positive integer; got 0"),
        (-1, 0, ValueError, "n must be an integer >= 0; got -1"),
    ],
)
def test_integer_never_truncates(value, minimum, error, message):
    with pytest.raises(error, match=message):
        integer(value, "n", minimum)


def test_integer_and_number_return_the_checked_value():
    assert integer(2.0, "n") == 2 and isinstance(integer(np.int64(2), "n"), int)
    assert integer(-5, "n", minimum=None) == -5
    assert number(1, "x", minimum=0) == 1.0 and isinstance(number(1, "x"), float)
    assert number(1, "x", minimum=0, maximum=1) == 1.0


@pytest.mark.parametrize(
    "value, bounds, error, message",
    [
        ("1e-3", {}, ParameterTypeError, "x must be a finite number; got '1e-3'"),
        (np.bool_(True), {}, ParameterTypeError, "x must be a finite number"),
        (float("inf"), {}, ValueError, "x must be a finite number; got inf"),
        (0, {"minimum": 0, "low_open": True}, ValueError, "finite positive number"),
        (2, {"maximum": 1}, ValueError, "x must be a finite number <= 1; got 2"),
        (
            1,
            {"minimum": 0, "maximum": 1, "high_open": True},
            ValueError,
            r"in \[0, 1\)",
        ),
    ],
)
def test_number_names_the_value_and_the_bounds(value, bounds, error, message):
    with pytest.raises(error, match=message):
        number(value, "x", **bounds)


def test_a_parameter_type_error_is_a_type_error_and_a_value_error():
    with pytest.raises(TypeError):
        Demo(epochs="3")
    with pytest.raises(ValueError):
        Demo(epochs="3")


def test_a_saved_config_must_hold_every_field(tmp_path):
    # a config built in code may leave fields at their defaults ...
    assert Demo.from_dict({"epochs": 5}).lr == 1e-3
    # ... a file read back may not: the default could differ from what was saved
    (tmp_path / "c.json").write_text('{"epochs": 5}')
    with pytest.raises(
        ValueError, match=r"c\.json: Demo: missing field\(s\) \['warmup'"
    ):
        Demo.read(tmp_path / "c.json")
    assert Demo.read(tmp_path / "c.json", complete=False).epochs == 5


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the JSON text is empty"),
        ('"other.json"', "must be an object"),
        ("[1, 2]", "must be an object"),
    ],
)
def test_json_that_is_not_an_object_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        Demo.from_json(text)


def test_from_json_needs_text_not_a_path(tmp_path):
    with pytest.raises(ParameterTypeError, match=r"use read\(path\)"):
        Demo.from_json(tmp_path / "c.json")
