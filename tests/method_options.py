"""Per-method overrides that keep a test run small, shared by the tests that run every method."""

from __future__ import annotations

from mcit.core.configs import fields_of
from mcit.methods.registry import available

#: Small values for options that only set how many records an estimate uses.
SMALL_SAMPLE_OPTIONS = {"samples": 4, "similarity_samples": 8, "key_samples": 16}


def method_overrides(name: str) -> list[str]:
    """`method.KEY=VALUE` for each of `SMALL_SAMPLE_OPTIONS` that method `name` has."""
    fields = fields_of(available()[name].Options)
    return [f"method.{key}={value}" for key, value in SMALL_SAMPLE_OPTIONS.items() if key in fields]
