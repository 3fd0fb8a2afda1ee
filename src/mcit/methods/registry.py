"""The method registry: the only way a method is found by name."""

from __future__ import annotations

from typing import Any

from mcit.core.configs import from_dict
from mcit.core.errors import UserError
from mcit.methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}

#: Listing order of method families in `mcit methods`.
FAMILY_ORDER = ("reference", "regularisation", "replay", "expansion", "prompt", "gradient")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method findable by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    """Import every module of `mcit.methods` so that their `@register` decorators run."""
    import importlib
    import pkgutil

    import mcit.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg and info.name not in ("base", "context", "registry"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def available() -> dict[str, type[Method]]:
    """All registered methods by name, grouped by family, then by name."""
    _load_all()
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}
    ordered = sorted(_REGISTRY.values(), key=lambda cls: (rank.get(cls.family, len(rank)), cls.name))
    return {cls.name: cls for cls in ordered}


def method_class(name: str) -> type[Method]:
    """The class registered as `name`, or a clear error listing the known names."""
    methods = available()
    if name not in methods:
        raise UserError(f"unknown method '{name}'; available methods: {', '.join(methods)} (see `mcit methods`)")
    return methods[name]


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """A method instance with its options validated against its config dataclass."""
    cls = method_class(name)
    return cls(from_dict(cls.Options, options or {}, prefix="method"))
