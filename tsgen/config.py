"""What every configuration dataclass in tsgen shares: a JSON round-trip and field validators.

A config subclasses :class:`JSONConfig` and checks its fields in
``__post_init__`` with the validators below, which name the class, the field,
what was expected and what was given, and normalise the value in place
(``2.0`` becomes ``2`` for an integer field)::

    def __post_init__(self):
        positive_int(self, "epochs", "batch_size")
        probability(self, "dropout", low_open=False)
        choice(self, "layer_type", ("linear", "mlp"))

The same checks for a function's arguments are :func:`integer` and
:func:`number`, which return the checked value. A value of the wrong type (a
string, a bool, a fraction where a whole number is expected) raises
:class:`ParameterTypeError`, which is a ``TypeError`` and also a
``ValueError``, so ``except ValueError`` keeps catching every bad value; a
value of the right type outside its range raises ``ValueError``.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np


class JSONConfig:
    """``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` for a dataclass.

    An unknown key is an error that lists the known ones, so a misspelt field in
    a saved file or a keyword never falls back to a default silently.
    """

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, complete: bool = False):
        """The config with ``values``; fields left out take their defaults unless ``complete``.

        With ``complete=True`` (how a saved file is read) a missing field is an
        error: a checkpoint that lost a key must not come back with the default.
        """
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
        missing = [name for name in known if name not in values]
        if complete and missing:
            raise ValueError(
                f"{cls.__name__}: missing field(s) {missing} (a saved config "
                "holds every field)"
            )
        return cls(**values)

    def to_json(self, path: str | Path | None = None) -> str:
        """The config as JSON text; also written to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text: str, complete: bool = False):
        """Parse a JSON object (see :meth:`read` for a file; ``complete`` as in :meth:`from_dict`)."""
        if not isinstance(text, str):
            raise ParameterTypeError(
                f"{cls.__name__}.from_json needs JSON text; got {type(text).__name__}"
                " (use read(path) for a file)"
            )
        if not text.strip():
            raise ValueError(f"{cls.__name__}: the JSON text is empty")
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{cls.__name__}: not valid JSON ({err})") from None
        if not isinstance(values, dict):
            raise ValueError(
                f"{cls.__name__}: the JSON must be an object {{...}}; "
                f"got {type(values).__name__}"
            )
        return cls.from_dict(values, complete=complete)

    @classmethod
    def read(cls, path: str | Path, complete: bool = True):
        """Read a config written by :meth:`to_json`; every field must be there; errors name the file."""
        path = Path(path)
        try:
            return cls.from_json(path.read_text(), complete=complete)
        except OSError as err:
            raise ValueError(f"cannot read {cls.__name__} from {path}: {err}") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err})") from None
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from None


class ParameterTypeError(TypeError, ValueError):
    """A value of the wrong type for its parameter (``"24"``, ``True`` or ``2.5`` where an integer is expected).

    Both a ``TypeError`` (what it is) and a ``ValueError`` (what tsgen's checks
    raised before it existed, and what the rest of the bad values raise).
    """


def _owner(obj) -> str:
    return type(obj).__name__


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(value, name: str, minimum: int | None = 1) -> int:
    """``value`` as an int ``>= minimum`` (no bound for ``None``); ``2.0`` is 2.

    A string, a bool, NaN, inf or a fraction (``2.7`` is never truncated to 2)
    is a :class:`ParameterTypeError`; a whole number below ``minimum`` a
    ``ValueError``. ``name`` is how the message calls the value.
    """
    kind = (
        "an integer"
        if minimum is None
        else "a positive integer"
        if minimum == 1
        else f"an integer >= {minimum}"
    )
    if not _is_number(value) or not math.isfinite(value) or int(value) != value:
        raise ParameterTypeError(f"{name} must be {kind}; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {kind}; got {value!r}")
    return int(value)


def number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float within the bounds (closed unless ``low_open`` / ``high_open``).

    A non-number is a :class:`ParameterTypeError`; NaN, inf or a value out of
    bounds a ``ValueError``.
    """
    if minimum is None and maximum is None:
        kind = "a finite number"
    elif maximum is None:
        kind = (
            "a finite positive number"
            if minimum == 0 and low_open
            else f"a finite number {'>' if low_open else '>='} {minimum:g}"
        )
    elif minimum is None:
        kind = f"a finite number {'<' if high_open else '<='} {maximum:g}"
    else:
        kind = (
            f"in {'(' if low_open else '['}{minimum:g}, "
            f"{maximum:g}{')' if high_open else ']'}"
        )
    if not _is_number(value):
        raise ParameterTypeError(f"{name} must be {kind}; got {value!r}")
    ok = math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if low_open else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if high_open else value <= maximum
    if not ok:
        raise ValueError(f"{name} must be {kind}; got {value!r}")
    return float(value)


def positive_int(obj, *names: str, minimum: int = 1) -> None:
    """Each field is an integer ``>= minimum`` (``True`` and ``2.5`` are errors; ``2.0`` becomes ``2``)."""
    for name in names:
        value = integer(getattr(obj, name), f"{_owner(obj)}.{name}", minimum)
        setattr(obj, name, value)


def non_negative_int(obj, *names: str) -> None:
    """Each field is an integer ``>= 0``."""
    positive_int(obj, *names, minimum=0)


def positive(obj, *names: str, allow_zero: bool = False) -> None:
    """Each field is a finite number ``> 0`` (``>= 0`` with ``allow_zero``); stored as float."""
    for name in names:
        value = number(
            getattr(obj, name),
            f"{_owner(obj)}.{name}",
            minimum=0,
            low_open=not allow_zero,
        )
        setattr(obj, name, value)


def non_negative(obj, *names: str) -> None:
    """Each field is a finite number ``>= 0``."""
    positive(obj, *names, allow_zero=True)


def finite(obj, *names: str) -> None:
    """Each field is a finite number (any sign)."""
    for name in names:
        setattr(obj, name, number(getattr(obj, name), f"{_owner(obj)}.{name}"))


def probability(
    obj, *names: str, low_open: bool = True, high_open: bool = True
) -> None:
    """Each field is in the interval from 0 to 1, open at the ends asked for (default ``(0, 1)``)."""
    for name in names:
        value = number(
            getattr(obj, name),
            f"{_owner(obj)}.{name}",
            minimum=0,
            maximum=1,
            low_open=low_open,
            high_open=high_open,
        )
        setattr(obj, name, value)


def boolean(obj, *names: str) -> None:
    """Each field is ``True`` or ``False`` (not ``1``, not ``"yes"``)."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, bool):
            raise ParameterTypeError(
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
