"""MultiTask (joint training): one stage on the union of every task's training data.

The upper bound of the stream: the accuracy matrix has two rows, zero-shot and after joint
training, and the metrics that need one row per task (BWT, FWT, MFT, forgetting) are not defined.
"""

from __future__ import annotations

from typing import Sequence

from mcit.data.schema import Task
from mcit.methods.base import Method, Stage
from mcit.methods.registry import register


@register
class MultiTask(Method):
    name = "multitask"
    summary = "joint training on the union of all tasks in one stage (upper bound)"

    def stages(self, tasks: Sequence[Task]) -> list[Stage]:
        return [Stage("joint", tuple(tasks))]
