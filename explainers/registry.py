"""Methods by name: `@register` adds a class, `get(name)` finds it."""

from __future__ import annotations

from whylabel.explainers.base import Explainer, shown

REGISTRY: dict[str, type[Explainer]] = {}


def register(cls: type[Explainer]) -> type[Explainer]:
    """Class decorator that adds a method to the registry under `cls.name`."""
    if cls.name in REGISTRY:
        raise ValueError(f"method {cls.name!r} is registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> type[Explainer]:
    """The method class for a name, or ValueError listing the valid names."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown method {shown(name)}; available methods: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def available() -> list[str]:
    """Registered method names, in the order the dashboard shows them."""
    return list(REGISTRY)
