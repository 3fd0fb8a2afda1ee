"""Training one stage: the optimiser steps of one task (or of the joint stage), hooks included.

Per optimiser step: `grad_accumulation` micro-batches, each through `before_forward`, the forward
pass, the language-model loss plus the method's `extra_losses`, and backward (gradients are only
synchronised across processes on the last micro-batch); then `after_backward` (gradients are
final and synchronised), clipping, the optimiser and schedule step, and `after_step`. That step
is `StageSteps.step`, the one piece of code both a run and `mcit bench` execute.

The data order is drawn from a generator seeded by the run's seed and the stage, so it is the
same on every process and in a resumed run. Each global micro-batch is split evenly across
processes, so one process with batch B and two with B/2 each see the same samples per step, and
each process's language-model loss is weighted by its share of the global batch's answer tokens
(`token_share`), so the averaged gradient is the one a single process would compute. Logged
losses are those of the global batch.

Step checkpoints: every `train.checkpoint_every` optimiser steps (except after the last one,
which the loop checkpoints after `after_task`) the loop is handed a `TrainPosition`: the
optimiser's, schedule's and loss scaler's states, the loss sums and the random states. A stage
started from a position skips the micro-batches already consumed (the data order is a pure
function of the seed, the stage and the epoch) and continues with those states, so it takes
exactly the steps the uninterrupted stage takes.

Non-finite losses: every step's loss is checked on the device without waiting for it (the first
bad step and the last finite loss are kept in device tensors, `FiniteWatch`). The check is read
at each log line and before each step checkpoint, so a stage stops naming the task, the first
non-finite step and the last finite loss, and no checkpoint ever holds what a bad step produced.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from mcit.core.errors import UserError
from mcit.data.schema import Record, Task
from mcit.methods.base import Method
from mcit.methods.context import Context
from mcit.run import killpoint
from mcit.run.checkpoint import capture_random_state, restore_random_state
from mcit.run.config import TrainConfig
from mcit.run.optimizer_state import by_name, by_position, parameter_names
from mcit.run.token_share import token_share


class NonFiniteLoss(UserError):
    """Training produced a NaN or infinite loss."""


@dataclass
class StagePlan:
    """How many steps a stage takes and how its records are ordered."""

    records: Sequence[Record]
    steps: int
    seed: int

    def batches(self, batch_size: int, rank: int, world: int) -> Iterator[list[Record]]:
        """This process's share of each global micro-batch, epoch after epoch, forever."""
        n = len(self.records)
        per_process = batch_size // world
        epoch = 0
        while True:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(n, generator=generator).tolist()
            for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                window = order[start:start + batch_size]
                if len(window) < batch_size:  # fewer records than one batch: repeat them
                    window = (window * math.ceil(batch_size / max(1, len(window))))[:batch_size]
                yield [self.records[i] for i in window[rank * per_process:(rank + 1) * per_process]]
            epoch += 1


@dataclass
class TrainPosition:
    """Where a stage's training stands after `step` optimiser steps: what a step checkpoint holds
    besides the weights and the method's state.

    Attributes:
        step: optimiser steps done in the stage.
        optimizer: the optimiser's state by parameter name (`optimizer_state.by_name`).
        scheduler: the learning-rate schedule's state dict.
        scaler: the fp16 loss scaler's state dict, or None without one.
        totals: each loss summed over the stage's micro-batches so far.
        window: [loss sum, micro-batches] since the last log line.
        last_finite: [loss, step] of the last step with a finite loss, or None.
        random: the random states to continue with (JSON part, tensor part).
    """

    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    totals: dict[str, float]
    window: list[float]
    last_finite: list[float] | None
    random: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None

    def plain(self) -> dict[str, Any]:
        """The JSON part (the loop's `loop.json` of a step checkpoint)."""
        return {"step": self.step, "totals": dict(self.totals), "window": list(self.window),
                "last_finite": None if self.last_finite is None else list(self.last_finite)}

    def tensors(self) -> dict[str, Any]:
        """The part with tensors (`optimizer.*` of a step checkpoint)."""
        return {"optimizer": self.optimizer, "scheduler": self.scheduler, "scaler": self.scaler}

    @classmethod
    def from_parts(cls, plain: dict[str, Any], tensors: dict[str, Any],
                   random: tuple[dict[str, Any], dict[str, torch.Tensor]] | None) -> TrainPosition:
        return cls(step=int(plain["step"]), optimizer=tensors["optimizer"], scheduler=tensors["scheduler"],
                   scaler=tensors.get("scaler"), totals={k: float(v) for k, v in plain["totals"].items()},
                   window=[float(plain["window"][0]), int(plain["window"][1])],
                   last_finite=plain.get("last_finite"), random=random)


class FiniteWatch:
    """The first step with a non-finite loss and the last finite loss, kept on the device.

    `update` costs a few tensor operations and no host synchronisation; `first_bad` reads the
    result (one synchronisation, plus one collective with several processes).
    """

    def __init__(self, device: torch.device, last_finite: list[float] | None = None):
        self.bad_step = torch.zeros((), dtype=torch.long, device=device)  # 0: no bad step yet
        self.bad_value = torch.zeros((), device=device)
        self.last = torch.full((), float("nan") if last_finite is None else last_finite[0], device=device)
        self.last_step = torch.full((), 0 if last_finite is None else int(last_finite[1]), dtype=torch.long,
                                    device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        finite = torch.isfinite(loss)
        clean = self.bad_step == 0
        first = clean & ~finite
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_value = torch.where(first, loss, self.bad_value)
        good = clean & finite
        self.last = torch.where(good, loss, self.last)
        self.last_step = torch.where(good, step, self.last_step)

    def read(self, accelerator) -> tuple[int, float, list[float] | None]:
        """(first bad step or 0, its loss, [last finite loss, its step] or None)."""
        bad_step = self.bad_step
        if accelerator.num_processes > 1:  # every process must stop together: the earliest bad step anywhere
            marked = torch.where(bad_step > 0, -bad_step, torch.full_like(bad_step, -(2 ** 62)))
            bad_step = -accelerator.reduce(marked, "max")
            bad_step = torch.where(bad_step == 2 ** 62, torch.zeros_like(bad_step), bad_step)
        step, value, last, last_step = torch.stack([bad_step.float(), self.bad_value.float(), self.last.float(),
                                                    self.last_step.float()]).tolist()
        return int(step), value, ([last, int(last_step)] if last_step > 0 else None)


def plan_stage(records: Sequence[Record], config: TrainConfig, seed: int, stage_index: int) -> StagePlan:
    """The number of optimiser steps and the data-order seed of a stage."""
    if not records:
        raise UserError("a task has no training records; check the benchmark with `mcit data check`")
    if config.max_steps is not None:
        steps = config.max_steps
    else:
        steps = math.ceil(config.epochs * len(records) / (config.batch_size * config.grad_accumulation))
    return StagePlan(records=records, steps=steps, seed=seed * 1_000 + stage_index)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps: int):
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.schedule]
    return get_scheduler(name, optimizer, num_warmup_steps=int(round(config.warmup_ratio * steps)),
                         num_training_steps=max(1, steps))


def unscale_once(accelerator, optimizer) -> bool:
    """Under fp16 loss scaling, divide the gradients by the scale before methods see them.

    Methods edit and measure gradients in `after_backward` (A-GEM, SI, DGG); they must see the
    true gradient, not the scaled one. Returns whether it unscaled.
    """
    if getattr(accelerator, "scaler", None) is None or accelerator.mixed_precision != "fp16":
        return False
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        raise UserError("config key 'train.mixed_precision': fp16 with FSDP is not supported; use bf16")
    accelerator.unscale_gradients(optimizer)
    return True


def _non_finite(task: Task, steps: int, bad_step: int, value: float, last: list[float] | None) -> NonFiniteLoss:
    before = (f"the last finite loss was {last[0]:.4f} at step {last[1]}" if last is not None
              else "no step of this task had a finite loss")
    return NonFiniteLoss(f"task '{task.name}': the loss became {value} at step {bad_step} of {steps} ({before}); "
                         "lower train.lr or enable clipping (train.max_grad_norm); the run stopped")


class StageSteps:
    """One stage's optimiser, schedule and prepared model, and the optimiser step the loop takes.

    `step` is the whole of one optimiser step: `grad_accumulation` micro-batches (the stage's next
    records collated, `before_forward`, forward, the language-model loss plus `extra_losses`,
    backward), then fp16 unscaling, `after_backward`, clipping, the optimiser and schedule step
    and `after_step`. `train_stage` and `mcit bench` both step through this class, so what the
    benchmark times is exactly what a run executes. Open it with `open_stage`; `close` hands the
    model back unwrapped.
    """

    def __init__(self, method: Method, ctx: Context, config: TrainConfig, plan: StagePlan,
                 parameters: list[torch.nn.Parameter], optimizer, scheduler, names: list[str]):
        self.method, self.ctx, self.config, self.plan = method, ctx, config, plan
        self.parameters, self.optimizer, self.scheduler, self.names = parameters, optimizer, scheduler, names
        self.model = ctx.model
        self.scaler = getattr(ctx.accelerator, "scaler", None)
        accelerator = ctx.accelerator
        #: This process's micro-batches of records, in the stage's data order.
        self.batches: Iterator[list[Record]] = plan.batches(config.batch_size, accelerator.process_index,
                                                             accelerator.num_processes)

    def step(self) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """One optimiser step on the stage's next micro-batches.

        Returns, per micro-batch, its losses by name and their sum, detached float tensors on the
        device: nothing here waits for the device.
        """
        method, ctx, config, model = self.method, self.ctx, self.config, self.model
        accelerator = ctx.accelerator
        micro_losses = []
        for micro in range(config.grad_accumulation):
            batch = model.to_device(model.training_batch(next(self.batches)))
            batch = method.before_forward(batch, ctx)
            share = token_share(batch, accelerator)  # None with one process
            sync = micro == config.grad_accumulation - 1
            with (accelerator.no_sync(model.module) if not sync else contextlib.nullcontext()):
                with accelerator.autocast():
                    outputs = model.forward(batch)
                    lm = outputs.loss if share is None else outputs.loss * share
                    losses = {"lm": lm, **method.extra_losses(model, batch, outputs, ctx)}
                    del outputs  # backward does not need the logits: do not hold them through it
                total = sum(losses.values())
                accelerator.backward(total / config.grad_accumulation)
            micro_losses.append(({name: value.detach().float() for name, value in losses.items()},
                                 total.detach().float()))
        unscaled = unscale_once(accelerator, self.optimizer)
        method.after_backward(model, ctx)
        if config.max_grad_norm is not None:
            if unscaled:  # accelerate's clipping would unscale a second time, which the scaler refuses
                torch.nn.utils.clip_grad_norm_(self.parameters, config.max_grad_norm)
            else:
                accelerator.clip_grad_norm_(self.parameters, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        method.after_step(model, ctx)
        ctx.global_step += 1
        return micro_losses

    def position(self, step: int, totals: dict[str, torch.Tensor], window: list[float],
                 last_finite: list[float] | None) -> TrainPosition:
        """The `TrainPosition` after `step` optimiser steps (reads the loss sums from the device)."""
        return TrainPosition(
            step=step, optimizer=by_name(self.optimizer.state_dict(), self.names),
            scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict() if self.scaler is not None else None,
            totals={name: value.item() for name, value in totals.items()}, window=window, last_finite=last_finite,
            random=capture_random_state())

    def close(self) -> None:
        """Hand the model back unwrapped from `accelerate`'s preparation."""
        self.model.module = self.ctx.accelerator.unwrap_model(self.model.module)


def open_stage(method: Method, task: Task, ctx: Context, config: TrainConfig,
               start: TrainPosition | None = None) -> StageSteps | None:
    """Start training `task` in the current stage: the method's training data and the stage's plan,
    the optimiser and schedule, and the model prepared by `accelerate` in training mode. None when
    the stage has no step or nothing to train.

    `start` restores the optimiser's, schedule's and loss scaler's states of a step checkpoint.
    """
    accelerator = ctx.accelerator
    model = ctx.model
    ctx.phase, ctx.task = "train", task
    plan = plan_stage(method.train_data(task, ctx), config, ctx.seed, ctx.stage_index)
    groups = [g for g in method.trainable_parameters(model, task) if g["params"]]
    parameters = [p for group in groups for p in group["params"]]
    if plan.steps == 0 or not parameters:
        return None
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, plan.steps)
    names = parameter_names(optimizer, model.network)
    if start is not None:
        optimizer.load_state_dict(by_position(start.optimizer, optimizer, names, f"task '{task.name}'"))
        scheduler.load_state_dict(start.scheduler)
    accelerator.free_memory()
    model.module, optimizer = accelerator.prepare(model.network, optimizer)
    scaler = getattr(accelerator, "scaler", None)
    if start is not None and scaler is not None and start.scaler:
        scaler.load_state_dict(start.scaler)
    model.network.train()
    return StageSteps(method, ctx, config, plan, parameters, optimizer, scheduler, names)


def train_stage(method: Method, task: Task, ctx: Context, config: TrainConfig,
                on_step: Callable[[int, int, float | None, float], None] | None = None,
                start: TrainPosition | None = None,
                on_checkpoint: Callable[[TrainPosition], None] | None = None) -> dict[str, float]:
    """Run one stage's optimiser steps; returns the mean of each loss over the stage.

    `start` continues the stage from a step checkpoint's position; `on_checkpoint` receives the
    position every `config.checkpoint_every` steps (on every process; the caller writes it).
    """
    accelerator = ctx.accelerator
    world = accelerator.num_processes
    if config.batch_size % world:
        raise UserError(f"config key 'train.batch_size': {config.batch_size} does not split evenly over "
                        f"{world} processes; choose a multiple of {world}")
    stage = open_stage(method, task, ctx, config, start)
    if stage is None:
        return {}
    plan = stage.plan
    device = accelerator.device
    totals: dict[str, torch.Tensor] = {}
    window_loss = torch.zeros((), device=device)
    window_count = 0
    first_step = 0
    if start is not None:
        for _ in range(start.step * config.grad_accumulation):
            next(stage.batches)
        totals = {name: torch.tensor(value, dtype=torch.float32, device=device) for name, value in start.totals.items()}
        window_loss.fill_(start.window[0])
        window_count = int(start.window[1])
        first_step = start.step
        if start.random is not None:
            restore_random_state(*start.random)
    watch = FiniteWatch(device, start.last_finite if start is not None else None)
    every = config.checkpoint_every
    for step in range(first_step, plan.steps):
        ctx.step = step
        step_loss = None
        for losses, total in stage.step():
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value
            window_loss += total
            window_count += 1
            step_loss = total if step_loss is None else step_loss + total
        watch.update(step_loss / config.grad_accumulation, step + 1)
        last_step = step == plan.steps - 1
        if (step + 1) % config.log_every == 0 or last_step:
            bad_step, bad_value, last_finite = watch.read(accelerator)  # host syncs only once per log interval
            if bad_step:
                raise _non_finite(task, plan.steps, bad_step, bad_value, last_finite)
            mean_loss = window_loss / window_count
            if world > 1:  # the loss of the global batch, not of this process's share
                mean_loss = accelerator.reduce(mean_loss, reduction="mean")
            mean_loss = mean_loss.item()
            lr = stage.scheduler.get_last_lr()[0]
            ctx.log({"event": "train", "task": task.name, "stage": ctx.stage_index + 1, "step": step + 1,
                     "steps": plan.steps, "loss": mean_loss, "lr": lr})
            if on_step:
                on_step(step + 1, plan.steps, mean_loss, lr)
            window_loss.zero_()
            window_count = 0
        elif on_step:
            on_step(step + 1, plan.steps, None, stage.scheduler.get_last_lr()[0])
        if on_checkpoint is not None and every and (step + 1) % every == 0 and not last_step:
            bad_step, bad_value, last_finite = watch.read(accelerator)
            if bad_step:  # never checkpoint what a non-finite step produced
                raise _non_finite(task, plan.steps, bad_step, bad_value, last_finite)
            if world > 1:  # saved as global means: every process resumes from them, and the mean over
                # processes of what each adds later is the same as without the interruption
                totals = accelerator.reduce(totals, reduction="mean")
                window_loss = accelerator.reduce(window_loss, reduction="mean")
            on_checkpoint(stage.position(step + 1, totals, [window_loss.item(), window_count], last_finite))
        killpoint.reached("step")
    n_micro = plan.steps * config.grad_accumulation
    if world > 1 and totals:  # every process reports the losses of the global batches
        totals = accelerator.reduce(totals, reduction="mean")
    means = {name: (value / n_micro).item() for name, value in totals.items()}
    stage.close()
    return means
