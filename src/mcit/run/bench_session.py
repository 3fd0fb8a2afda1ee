"""One method set up for `mcit bench`: trained through the loop's own code up to the step to time.

`MethodSession` drives a method on the synthetic stream the way `mcit.run.loop` does, stage by
stage: `before_task`, optimiser steps through `StageSteps.step` (the loop's step, hooks, clipping
and optimiser included), `after_task`. Earlier stages take `PRIOR_STEPS` steps each, enough for
every method's state to exist (importance and anchors, buffers, projectors and keys, prompts and
bases, TIR's per-task terms); the stage being timed stays open, so its steps run in the method's
steady state on a later task.

Options that only set how many records an end-of-task estimate reads (`ESTIMATE_OPTIONS`: Fisher
and MAS samples, similarity, key and basis samples) are made small so that task ends are quick.
They change neither the step nor the state's size, with one approximation: Fwd-Prompt's old-task
basis is computed from 16 records per task instead of 64 (its rank is bounded by the embedding
width either way). Every other option is the method's default.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from mcit.core.configs import fields_of
from mcit.core.errors import UserError
from mcit.data.schema import Task
from mcit.methods.components.state import split_state, stored_bytes
from mcit.methods.context import Context
from mcit.methods.registry import build_method, method_class
from mcit.models.adapter import VisionLanguageModel
from mcit.models.config import ModelConfig
from mcit.run.bench_memory import held_tensors, step_peak_bytes
from mcit.run.config import TrainConfig
from mcit.run.services import make_batches, make_gradient_of
from mcit.run.train import StageSteps, open_stage

#: Optimiser steps of each stage before the one being timed.
PRIOR_STEPS = 2
#: Small values for options that only set how many records an end-of-task estimate reads.
ESTIMATE_OPTIONS = {"samples": 8, "similarity_samples": 8, "key_samples": 16, "key_init_samples": 16,
                    "basis_samples": 16}


@dataclass
class BenchSetup:
    """What every session of one benchmark shares: the model to load, how it trains, the stream."""

    model: ModelConfig
    train: TrainConfig
    tasks: list[Task]
    accelerator: Any
    seed: int = 0

    @property
    def device(self) -> torch.device:
        return torch.device(self.accelerator.device)


def load_bench_model(config: ModelConfig, device: torch.device, seed: int) -> VisionLanguageModel:
    """The model to benchmark on `device`: a benchmark shape built there, or a model loaded as a run does."""
    from mcit.models.shapes import SHAPES, build_shape

    if config.name in SHAPES:
        return build_shape(config, device, seed)
    from mcit.models.loading import load_model

    model = load_model(config, seed=seed)
    model.network.to(device)
    return model


def parameter_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def synchronize(device: torch.device) -> None:
    """Wait for the device, so that a wall-clock time covers the work it was given."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, device: torch.device) -> float:
    """Seconds `step()` takes, the device's queued work included."""
    synchronize(device)
    tic = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - tic


class Subject(ABC):
    """Something `mcit bench` times: it takes one training step at a time on `device`."""

    name: str
    device: torch.device

    @abstractmethod
    def step(self) -> None:
        """One optimiser step, as the subject's training takes it."""

    @abstractmethod
    def resident(self) -> Iterable[torch.Tensor]:
        """Tensors that live across steps (counted into a CPU's peak memory)."""

    def time_step(self) -> float:
        return timed(self.step, self.device)

    def peak_memory(self) -> int:
        """Peak bytes of tensors during one more step (`mcit.run.bench_memory`)."""
        return step_peak_bytes(self.step, self.device, self.resident)

    def close(self) -> None:
        """Release what the subject holds open."""


class MethodSession(Subject):
    """A method on the synthetic stream (see the module docstring)."""

    def __init__(self, name: str, setup: BenchSetup):
        options = {k: v for k, v in ESTIMATE_OPTIONS.items() if k in fields_of(method_class(name).Options)}
        self.name, self.setup, self.device = name, setup, setup.device
        self.method = build_method(name, options)
        self.stages = self.method.stages(setup.tasks)
        if not self.stages:
            raise UserError(f"method '{name}' has no training stage (it only evaluates), so it has no step to time")
        model = load_bench_model(setup.model, setup.device, setup.seed)
        self.initial_parameter_bytes = parameter_bytes(model.network)
        self.ctx = Context(accelerator=setup.accelerator, model=model, seed=setup.seed, tasks=setup.tasks,
                           batch_size=setup.train.batch_size, log=lambda entry: None,
                           gradient_of=make_gradient_of(model, setup.accelerator), batches=make_batches(model),
                           stage_index=-1)
        self.ctx.model = self.method.setup(model, self.ctx)
        self.done = 0  # stages finished
        self.stage: StageSteps | None = None  # the open stage (index `done`)

    @property
    def finished_tasks(self) -> int:
        """Tasks the method has finished (the open stage trains the next one)."""
        return self.done

    def reach(self, finished: int) -> None:
        """Finish stages until `finished` are done (at most all but the last) and open the next one."""
        target = min(finished, len(self.stages) - 1)
        if self.stage is not None and self.done == target:
            return
        if target < self.done:
            raise ValueError(f"{self.name}: cannot go back to {target} finished stages from {self.done}")
        if self.stage is not None:
            self._end()
        while self.done < target:
            self._begin()
            for _ in range(PRIOR_STEPS):
                self.step()
            self._end()
        self._begin()

    def _begin(self) -> None:
        ctx, index = self.ctx, self.done
        task = self.stages[index].task
        ctx.stage_index, ctx.step = index, 0
        ctx.model = self.method.before_task(ctx.model, task, ctx)
        self.stage = open_stage(self.method, task, ctx, self.setup.train)
        if self.stage is None:
            raise UserError(f"method '{self.name}': nothing trains in stage '{self.stages[index].name}' with this model")

    def _end(self) -> None:
        self.stage.close()
        self.method.after_task(self.ctx.model, self.stages[self.done].task, self.ctx)
        self.stage = None
        self.done += 1

    def step(self) -> None:
        """One optimiser step of the open stage, exactly as the loop takes it."""
        self.stage.step()
        self.ctx.step += 1

    def resident(self) -> Iterable[torch.Tensor]:
        """Parameters and buffers, optimiser state, and what the method holds (state and caches)."""
        network = self.ctx.model.network
        yield from network.parameters()
        yield from network.buffers()
        for state in self.stage.optimizer.state.values():
            yield from (v for v in state.values() if isinstance(v, torch.Tensor))
        yield from split_state(self.method.state_dict(), to_cpu=False)[1].values()
        yield from held_tensors(self.method)

    def state_bytes(self) -> int:
        """Bytes of the method's state as a checkpoint stores it (tensors plus plain values)."""
        return stored_bytes(self.method.state_dict())

    def added_parameter_bytes(self) -> int:
        """Bytes of parameters the method added to the model (projector copies, prompt pools)."""
        return parameter_bytes(self.ctx.model.network) - self.initial_parameter_bytes

    def close(self) -> None:
        if self.stage is not None:
            self.stage.close()
            self.stage = None

