"""What the loop tells a method: where the run is, and services only the loop can provide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    import torch

    from mcit.data.schema import Record, Task
    from mcit.models.adapter import VisionLanguageModel

#: objective(outputs, batch) -> scalar tensor; the default objective is the language-model loss.
Objective = Callable[[Any, dict], "torch.Tensor"]


@dataclass
class Context:
    """The run's state as methods see it, and the loop's services.

    Attributes:
        accelerator: the `accelerate.Accelerator` (process count, reductions, device).
        model: the model adapter.
        seed: the run's seed; methods derive their own random streams from it.
        tasks: the whole stream in order (a method must only read the data of tasks already seen).
        stage_index: 0-based index of the current stage.
        task: the task being trained or evaluated (None between tasks).
        phase: "train" or "eval".
        step: optimiser steps taken in the current task.
        global_step: optimiser steps taken in the run.
        batch_size: the per-process micro-batch size of training.
        log: writes a dict to the run's JSON-lines log.
        gradient_of: gradients of an objective on some records, for the parameters that train
            now, without touching the gradients being accumulated for the optimiser step.
        batches: yields model-ready batches over records (importance, features, similarity).
    """

    accelerator: Any
    model: VisionLanguageModel
    seed: int
    tasks: Sequence[Task]
    batch_size: int
    log: Callable[[dict], None]
    gradient_of: Callable[..., dict[str, torch.Tensor]]
    batches: Callable[..., Any]
    stage_index: int = 0
    task: Task | None = None
    phase: str = "train"
    step: int = 0
    global_step: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def seen_tasks(self) -> list[Task]:
        """Tasks whose training has started, in order (the current one included)."""
        return list(self.tasks[: self.stage_index + 1])

    @property
    def is_main_process(self) -> bool:
        return bool(getattr(self.accelerator, "is_main_process", True))
