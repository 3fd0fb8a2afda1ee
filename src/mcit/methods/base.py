"""The method contract: hooks the training loop calls, all doing nothing by default.

The loop owns backward, gradient accumulation, clipping, mixed precision, the optimiser step and
distribution. A method joins in only through these hooks and returns values rather than changing
shared state; extra gradients it needs come from `ctx.gradient_of(records)`, so the loop stays
the one place that runs backward. A method that edits gradients does so in `after_backward`
through `mcit.methods.components.gradients`, which works on plain and sharded parameters.

Each method is one file with one config dataclass (fields with help text and defaults, the
docstring naming the paper), registered by name with `@register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

if TYPE_CHECKING:
    import torch

    from mcit.data.schema import Record, Task
    from mcit.methods.context import Context
    from mcit.models.adapter import VisionLanguageModel


@dataclass
class NoOptions:
    """A method without options."""


@dataclass(frozen=True)
class Stage:
    """One training stage of a run: a name (a row label of the accuracy matrix) and its tasks.

    Sequential methods have one stage per task; MultiTask has a single stage with every task;
    ZeroShot has none (only the zero-shot row is evaluated).
    """

    name: str
    tasks: tuple[Task, ...]

    @property
    def task(self) -> Task:
        """The task the hooks see: the stage's only task, or one task joining all of them."""
        if len(self.tasks) == 1:
            return self.tasks[0]
        from mcit.data.schema import Task

        return Task(name=self.name, metric=self.tasks[0].metric,
                    train=[record for task in self.tasks for record in task.train], test=[],
                    description="the union of " + ", ".join(t.name for t in self.tasks))


class Method:
    """Base class of every continual-learning method. Subclasses override the hooks they need.

    Class attributes:
        name: registry name (used by `--method`).
        summary: one line for `mcit methods`.
        family: reference, regularisation, replay, expansion, prompt or gradient (for listings).
        Options: the method's config dataclass.
        reads_gradients: the method reads or edits gradients (`after_backward`) or asks for
            extra ones (`ctx.gradient_of`); DeepSpeed, which keeps gradients in its own buffers
            and steps inside backward, cannot run it (docs/distributed.md).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    family: ClassVar[str] = "reference"
    Options: ClassVar[type] = NoOptions
    reads_gradients: ClassVar[bool] = False

    def __init__(self, options: Any = None):
        self.options = options if options is not None else self.Options()

    # ---- the run's shape ---------------------------------------------------------------------

    def stages(self, tasks: Sequence[Task]) -> list[Stage]:
        """The training stages: by default one per task, in stream order."""
        return [Stage(task.name, (task,)) for task in tasks]

    # ---- hooks (see ARCHITECTURE.md) ---------------------------------------------------------

    def setup(self, model: VisionLanguageModel, ctx: Context) -> VisionLanguageModel:
        """Once per run, before the first task and again on resume after `load_state_dict`:
        build any structure the method's state describes (expansion modules, prompt pools)."""
        return model

    def before_task(self, model: VisionLanguageModel, task: Task, ctx: Context) -> VisionLanguageModel:
        """At the start of each task; may add modules (a new projector) and return the model."""
        return model

    def resume_task(self, model: VisionLanguageModel, task: Task, ctx: Context) -> VisionLanguageModel:
        """Instead of `before_task` when a run resumes in the middle of `task` (after `load_state_dict`
        and `setup`): the state is already the mid-task state, so change none of it; only set up
        what `before_task` sets up outside the state (which parameters train, the current module).
        Nothing by default, which is right for methods without a `before_task`."""
        return model

    def trainable_parameters(self, model: VisionLanguageModel, task: Task) -> list[dict]:
        """Parameter groups for this task's optimiser; by default every parameter requiring grad."""
        return [{"params": [p for _, p in model.trainable_named_parameters()]}]

    def train_data(self, task: Task, ctx: Context) -> Sequence[Record]:
        """The records to train on for `task` (replay mixes old samples in here)."""
        return task.train

    def before_forward(self, batch: dict, ctx: Context) -> dict:
        """Each micro-batch, in training and in evaluation (`ctx.phase`); may add inputs."""
        return batch

    def extra_losses(self, model: VisionLanguageModel, batch: dict, outputs: Any, ctx: Context) -> dict[str, torch.Tensor]:
        """Additional loss terms for this micro-batch; the loop sums, scales and logs each."""
        return {}

    def after_backward(self, model: VisionLanguageModel, ctx: Context) -> None:
        """Once per optimiser step, after accumulation and gradient synchronisation, before clipping."""

    def after_step(self, model: VisionLanguageModel, ctx: Context) -> None:
        """After each optimiser step."""

    def after_task(self, model: VisionLanguageModel, task: Task, ctx: Context) -> None:
        """At the end of each task (importance, anchors, buffers, bases)."""

    def after_eval(self, model: VisionLanguageModel, task: Task, ctx: Context) -> None:
        """After a task's test records are answered on every process: reduce any per-process
        evaluation statistics (e.g. routing counts) across processes here."""

    def eval_setup(self, model: VisionLanguageModel, task: Task, ctx: Context) -> VisionLanguageModel:
        """Before evaluating a task; returns the model to generate with. The task's identity is
        given for bookkeeping only: task-agnostic methods must not route by it."""
        return model

    # ---- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The method's state: tensors and plain values (numbers, strings, lists, dicts).

        It is saved between tasks and also in the middle of a task (step checkpoints), so it holds
        whatever a task accumulates as it trains (a path integral, counters) as well."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def report(self) -> dict[str, Any]:
        """Method-specific results for `results.json` under `method_report` (plain values only),
        e.g. routing accuracy or a task-similarity matrix."""
        return {}

    def state_size_bytes(self) -> int:
        """Bytes of tensor state the method keeps between tasks (for `mcit bench`)."""
        from mcit.methods.components.state import tensor_bytes

        return tensor_bytes(self.state_dict())
