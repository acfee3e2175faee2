"""What every configuration dataclass in tsgen shares: a JSON round-trip and field validators.

A config subclasses :class:`JSONConfig` and checks its fields in
``__post_init__`` with the validators below, which name the class, the field,
what was expected and what was given, and normalise the value in place
(``2.0`` becomes ``2`` for an integer field)::

    def __post_init__(self):
        positive_int(self, "epochs", "batch_size")
        probability(self, "dropout", low_open=False)
        choice(self, "layer_type", ("linear", "mlp"))
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, fields
from pathlib import Path


class JSONConfig:
    """``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` for a dataclass.

    An unknown key is an error that lists the known ones, so a misspelt field in
    a saved file or a keyword never falls back to a default silently.
    """

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        if not isinstance(values, dict):
            raise ValueError(
                f"{cls.__name__}.from_dict needs a dict; got {type(values).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {unknown}; known fields: {known}"
            )
        return cls(**values)

    def to_json(self, path: str | Path | None = None) -> str:
        """The config as JSON text; also written to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text: str):
        """Parse a JSON string (see :meth:`read` for a file)."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{cls.__name__}: not valid JSON ({err})") from None
        return cls.from_dict(values)

    @classmethod
    def read(cls, path: str | Path):
        """Read a config written by :meth:`to_json`; errors name the file."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text())
        except OSError as err:
            raise ValueError(f"cannot read {cls.__name__} from {path}: {err}") from None
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from None


def _owner(obj) -> str:
    return type(obj).__name__


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(obj, *names: str, minimum: int = 1) -> None:
    """Each field is an integer ``>= minimum`` (``True`` and ``2.5`` are errors; ``2.0`` becomes ``2``)."""
    for name in names:
        value = getattr(obj, name)
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or int(value) != value
            or value < minimum
        ):
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ValueError(f"{_owner(obj)}.{name} must be {kind}; got {value!r}")
        setattr(obj, name, int(value))


def non_negative_int(obj, *names: str) -> None:
    """Each field is an integer ``>= 0``."""
    positive_int(obj, *names, minimum=0)


def positive(obj, *names: str, allow_zero: bool = False) -> None:
    """Each field is a finite number ``> 0`` (``>= 0`` with ``allow_zero``); stored as float."""
    for name in names:
        value = getattr(obj, name)
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or value < 0
            or (value == 0 and not allow_zero)
        ):
            kind = "a finite number >= 0" if allow_zero else "a finite positive number"
            raise ValueError(f"{_owner(obj)}.{name} must be {kind}; got {value!r}")
        setattr(obj, name, float(value))


def non_negative(obj, *names: str) -> None:
    """Each field is a finite number ``>= 0``."""
    positive(obj, *names, allow_zero=True)


def finite(obj, *names: str) -> None:
    """Each field is a finite number (any sign)."""
    for name in names:
        value = getattr(obj, name)
        if not _is_number(value) or not math.isfinite(value):
            raise ValueError(
                f"{_owner(obj)}.{name} must be a finite number; got {value!r}"
            )
        setattr(obj, name, float(value))


def probability(
    obj, *names: str, low_open: bool = True, high_open: bool = True
) -> None:
    """Each field is in the interval from 0 to 1, open at the ends asked for (default ``(0, 1)``)."""
    for name in names:
        value = getattr(obj, name)
        ok = _is_number(value) and math.isfinite(value)
        ok = (
            ok
            and (0 < value if low_open else 0 <= value)
            and (value < 1 if high_open else value <= 1)
        )
        if not ok:
            interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
            raise ValueError(
                f"{_owner(obj)}.{name} must be in {interval}; got {value!r}"
            )
        setattr(obj, name, float(value))


def boolean(obj, *names: str) -> None:
    """Each field is ``True`` or ``False`` (not ``1``, not ``"yes"``)."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, bool):
            raise ValueError(
                f"{_owner(obj)}.{name} must be True or False; got {value!r}"
            )


def choice(obj, name: str, options) -> None:
    """The field is one of ``options``."""
    value = getattr(obj, name)
    if value not in tuple(options):
        raise ValueError(
            f"{_owner(obj)}.{name}={value!r} is not "
            f"supported; choose one of {list(options)}"
        )
