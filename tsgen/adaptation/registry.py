"""Engines by name, as in torch-ttt: ``@register("name")``, ``get_engine(name)``, ``build_engine(...)``.

An engine may also answer to aliases (``@register("it3", aliases=("ittt",))``:
torch-ttt registers IT³ as ``"ittt"``). :func:`get_engine` and
:func:`build_engine` accept an alias wherever a name goes; an engine built from
one is the same class (its ``name`` is the registered name), and
:func:`available_engines` lists each engine once, by its name, unless asked
for the aliases too.
"""

from __future__ import annotations

from torch import nn

from .base import BaseEngine

_REGISTRY: dict[str, type[BaseEngine]] = {}
_ALIASES: dict[str, str] = {}  # alias -> registered name


def register(name: str, *, aliases: tuple[str, ...] = ()):
    """Class decorator: make an engine class available as ``get_engine(name)`` (and each alias)."""

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, BaseEngine)):
            raise TypeError(
                f"engine {name!r} must be a subclass of BaseEngine; got {cls!r}"
            )
        for key in (name, *aliases):
            if not isinstance(key, str) or not key:
                raise ValueError(f"engine names must be non-empty strings; got {key!r}")
            taken = _REGISTRY.get(_ALIASES.get(key, key))
            if taken is not None and taken is not cls:
                raise ValueError(
                    f"an engine is already registered as {key!r}: {taken.__name__}"
                )
        if name in _ALIASES:
            raise ValueError(
                f"{name!r} is an alias of {_ALIASES[name]!r}; pick another name"
            )
        _REGISTRY[name] = cls
        _ALIASES.update(dict.fromkeys(aliases, name))
        cls.name = name
        return cls

    return decorator


def get_engine(name: str) -> type[BaseEngine]:
    """The engine class registered as ``name`` (or an alias); ValueError listing the known names."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        known = available_engines()
        aliases = {a: n for a, n in sorted(_ALIASES.items()) if n in _REGISTRY}
        also = f" (aliases: {aliases})" if aliases else ""
        raise ValueError(f"unknown engine {name!r}; known engines: {known}{also}")
    return _REGISTRY[key]


def build_engine(
    name: str,
    model: nn.Module,
    layer: str | None = None,
    example_inputs=None,
    options: dict | None = None,
    *,
    optimization_parameters=None,
    seed: int = 0,
) -> BaseEngine:
    """The engine registered as ``name`` around ``model``, through its :meth:`BaseEngine.from_config`.

    One signature for every engine: ``layer`` is the features layer an engine
    hooks (``"encoder"`` in tsgen's networks), ``example_inputs`` one batch an
    engine sizes its heads from, ``options`` the engine's own keyword arguments
    (``{"mask_ratio": 0.3}``); engines ignore what they do not need.
    ``optimization_parameters`` sets the adaptation at inference, ``seed`` the
    engine's masks. Unknown names fail listing the registered ones.
    """
    return get_engine(name).from_config(
        model,
        layer,
        example_inputs,
        options,
        optimization_parameters=optimization_parameters,
        seed=seed,
    )


def available_engines(aliases: bool = False) -> list[str]:
    """The registered names, sorted; with ``aliases=True`` the aliases too (every name accepted)."""
    names = set(_REGISTRY)
    if aliases:
        names |= {a for a, n in _ALIASES.items() if n in _REGISTRY}
    return sorted(names)
