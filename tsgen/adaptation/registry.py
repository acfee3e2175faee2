"""Engines by name, as in torch-ttt: ``@register("name")``, ``get_engine(name)``, ``build_engine(...)``."""

from __future__ import annotations

from torch import nn

from .base import BaseEngine

_REGISTRY: dict[str, type[BaseEngine]] = {}


def register(name: str):
    """Class decorator: make an engine class available as ``get_engine(name)``."""

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, BaseEngine)):
            raise TypeError(
                f"engine {name!r} must be a subclass of BaseEngine; got {cls!r}"
            )
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(
                "an engine is already registered as "
                f"{name!r}: {_REGISTRY[name].__name__}"
            )
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorator


def get_engine(name: str) -> type[BaseEngine]:
    """The engine class registered as ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown engine {name!r}; known engines: {available_engines()}"
        )
    return _REGISTRY[name]


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


def available_engines() -> list[str]:
    """The registered names, sorted."""
    return sorted(_REGISTRY)
