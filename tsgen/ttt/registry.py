"""Engines by name, as in torch-ttt: ``@register("name")`` on the class, ``get_engine(name)``."""

from __future__ import annotations

from .base import BaseEngine

_REGISTRY: dict[str, type[BaseEngine]] = {}


def register(name: str):
    """Class decorator: make an engine class available as ``get_engine(name)``."""

    def decorator(cls):
        if not (isinstance(cls, type) and issubclass(cls, BaseEngine)):
            raise TypeError(f"engine {name!r} must be a subclass of BaseEngine; got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"an engine is already registered as {name!r}: {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return decorator


def get_engine(name: str) -> type[BaseEngine]:
    """The engine class registered as ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; known engines: {available_engines()}")
    return _REGISTRY[name]


def available_engines() -> list[str]:
    return sorted(_REGISTRY)
