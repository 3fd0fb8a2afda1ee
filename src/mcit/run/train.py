"""Training one stage: the optimiser steps of one task (or of the joint stage), hooks included.

Per optimiser step: `grad_accumulation` micro-batches, each through `before_forward`, the forward
pass, the language-model loss plus the method's `extra_losses`, and backward (gradients are only
synchronised across processes on the last micro-batch); then `after_backward` (gradients are
final and synchronised), clipping, the optimiser and schedule step, and `after_step`.

The data order is drawn from a generator seeded by the run's seed and the stage, so it is the
same on every process and in a resumed run. Each global micro-batch is split evenly across
processes, so one process with batch B and two with B/2 each see the same samples per step.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from mcit.core.errors import UserError
from mcit.data.schema import Record, Task
from mcit.methods.base import Method
from mcit.methods.context import Context
from mcit.run.config import TrainConfig


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


def train_stage(method: Method, task: Task, ctx: Context, config: TrainConfig,
                on_step: Callable[[int, int, float | None, float], None] | None = None) -> dict[str, float]:
    """Run one stage's optimiser steps; returns the mean of each loss over the stage."""
    accelerator = ctx.accelerator
    model = ctx.model
    world = accelerator.num_processes
    if config.batch_size % world:
        raise UserError(f"config key 'train.batch_size': {config.batch_size} does not split evenly over "
                        f"{world} processes; choose a multiple of {world}")
    ctx.phase, ctx.task = "train", task
    plan = plan_stage(method.train_data(task, ctx), config, ctx.seed, ctx.stage_index)
    groups = [g for g in method.trainable_parameters(model, task) if g["params"]]
    parameters = [p for group in groups for p in group["params"]]
    if plan.steps == 0 or not parameters:
        return {}
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, plan.steps)
    accelerator.free_memory()
    model.module, optimizer = accelerator.prepare(model.network, optimizer)
    model.network.train()
    batches = plan.batches(config.batch_size, accelerator.process_index, world)
    totals: dict[str, torch.Tensor] = {}
    window_loss = torch.zeros((), device=accelerator.device)
    window_count = 0
    last_finite: float | None = None
    for step in range(plan.steps):
        ctx.step = step
        for micro in range(config.grad_accumulation):
            batch = model.to_device(model.training_batch(next(batches)))
            batch = method.before_forward(batch, ctx)
            sync = micro == config.grad_accumulation - 1
            with (accelerator.no_sync(model.module) if not sync else contextlib.nullcontext()):
                with accelerator.autocast():
                    outputs = model.forward(batch)
                    losses = {"lm": outputs.loss, **method.extra_losses(model, batch, outputs, ctx)}
                total = sum(losses.values())
                accelerator.backward(total / config.grad_accumulation)
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value.detach().float()
            window_loss += total.detach().float()
            window_count += 1
        unscaled = unscale_once(accelerator, optimizer)
        method.after_backward(model, ctx)
        if config.max_grad_norm is not None:
            if unscaled:  # accelerate's clipping would unscale a second time, which the scaler refuses
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            else:
                accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        method.after_step(model, ctx)
        ctx.global_step += 1
        last_step = step == plan.steps - 1
        if (step + 1) % config.log_every == 0 or last_step:
            mean_loss = (window_loss / window_count).item()  # the only host sync, once per log interval
            if not math.isfinite(mean_loss):
                where = f"after the last finite loss {last_finite:.4f}" if last_finite is not None else "from the start"
                raise NonFiniteLoss(f"task '{task.name}': the loss became {mean_loss} by step {step + 1} ({where}); "
                                    "lower train.lr or enable clipping (train.max_grad_norm); "
                                    "the last good checkpoint is kept")
            last_finite = mean_loss
            lr = scheduler.get_last_lr()[0]
            ctx.log({"event": "train", "task": task.name, "stage": ctx.stage_index + 1, "step": step + 1,
                     "steps": plan.steps, "loss": mean_loss, "lr": lr})
            if on_step:
                on_step(step + 1, plan.steps, mean_loss, lr)
            window_loss.zero_()
            window_count = 0
        elif on_step:
            on_step(step + 1, plan.steps, None, scheduler.get_last_lr()[0])
    n_micro = plan.steps * config.grad_accumulation
    means = {name: (value / n_micro).item() for name, value in totals.items()}
    model.module = accelerator.unwrap_model(model.module)
    return means
