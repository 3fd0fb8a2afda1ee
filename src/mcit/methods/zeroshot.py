"""ZeroShot: evaluate the starting model only (the zero-shot row of the accuracy matrix)."""

from __future__ import annotations

from typing import Sequence

from mcit.data.schema import Task
from mcit.methods.base import Method, Stage
from mcit.methods.registry import register


@register
class ZeroShot(Method):
    name = "zeroshot"
    summary = "evaluate the starting model on every task without training (row 0 only)"

    def stages(self, tasks: Sequence[Task]) -> list[Stage]:
        return []
