"""Helpers shared by the method and component tests (this module holds no tests itself): the tiny
model with the loop's real services, and a stand-in context for tests that need no model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Sequence

import torch

from mcit.data.schema import Record, Task


def tiny_context(tasks: Sequence[str] = ("ocr", "digits"), train_size: int = 16, test_size: int = 4):
    """(ctx, first task): the tiny random model on the CPU with `gradient_of` and `batches` as the
    loop provides them, over small built-in tasks."""
    from accelerate import Accelerator

    from mcit.data.benchmarks import load_benchmark
    from mcit.data.config import BenchmarkConfig
    from mcit.methods.context import Context
    from mcit.models.config import ModelConfig
    from mcit.models.loading import load_model
    from mcit.run.services import make_batches, make_gradient_of

    benchmark = load_benchmark(BenchmarkConfig(order=list(tasks), train_size=train_size, test_size=test_size))
    model = load_model(ModelConfig(name="tiny-random"))
    accelerator = Accelerator(cpu=True)
    ctx = Context(accelerator=accelerator, model=model, seed=0, tasks=benchmark.tasks, batch_size=4,
                  log=lambda entry: None, gradient_of=make_gradient_of(model, accelerator),
                  batches=make_batches(model), stage_index=0)
    return ctx, benchmark.tasks[0]


def make_task(name: str, size: int, image=None) -> Task:
    records = [Record(id=f"{name}-{i}", image=image, instruction=f"{name} question {i}", answers=(f"answer {i}",))
               for i in range(size)]
    return Task(name=name, metric="exact_match", train=records, test=[])


class ParameterModel:
    """A stand-in for the model adapter: named parameters and nothing else."""

    def __init__(self, **parameters: torch.Tensor):
        self.parameters = {n: torch.nn.Parameter(t.clone().float()) for n, t in parameters.items()}
        self.device = torch.device("cpu")

    def trainable_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.parameters.items() if p.requires_grad]


def fake_context(tasks: Sequence[Task] = (), **fields: Any) -> SimpleNamespace:
    """A context with one process, seed 0 and whatever else a test sets (e.g. gradient_of)."""
    base = dict(accelerator=SimpleNamespace(num_processes=1, process_index=0), seed=0, tasks=list(tasks),
                batch_size=4, stage_index=0, step=0, phase="train", task=None, log=lambda entry: None)
    return SimpleNamespace(**{**base, **fields})
