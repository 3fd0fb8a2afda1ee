"""A-GEM, Averaged Gradient Episodic Memory (Chaudhry et al., "Efficient Lifelong Learning with
A-GEM", ICLR 2019).

After each task a few of its training records enter an episodic memory (the replay buffer: 1% by
default, uniform or reservoir). At every optimiser step of a later task a reference gradient
g_ref is computed on a batch drawn from the memory; when the training gradient g points against it
(g · g_ref < 0), g is replaced by g − (g · g_ref / g_ref · g_ref) g_ref, so the step no longer
increases the loss on the memory to first order. The reference batch is drawn from the run's seed,
the task and the step (the same on every process and after a resume); each process computes its
share and `ctx.gradient_of` averages them like the training gradient. Costs about one extra
forward and backward pass per step. The projection runs on the device without host
synchronisation and works on sharded parameters (`components.gradients`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.gradients import gradients, ordered, project_out_
from mcit.methods.components.replay import BufferOptions, ReplayBuffer
from mcit.methods.components.sampling import permutation
from mcit.methods.registry import register


@dataclass
class AGEMOptions(BufferOptions):
    """Options of A-GEM: the memory's, and the size of the reference batch."""

    reference_batch: int | None = option(None, "memory records per reference gradient over all processes "
                                               "(null: the training batch size)", min=1, unconfirmed=True)


@register
class AGEM(Method):
    name = "agem"
    summary = "project each gradient so it does not increase the loss on a memory of earlier tasks"
    family = "replay"
    Options = AGEMOptions
    reads_gradients = True

    def __init__(self, options: AGEMOptions | None = None):
        super().__init__(options)
        self.buffer = ReplayBuffer.from_options(self.options)
        self.memory: list = []
        self.projected: dict[str, int] = {}
        self._count: torch.Tensor | None = None

    def train_data(self, task, ctx):
        self.memory = self.buffer.records(ctx.tasks)
        return task.train

    def after_backward(self, model, ctx) -> None:
        if not self.memory:
            return
        world, rank = ctx.accelerator.num_processes, ctx.accelerator.process_index
        size = max(self.options.reference_batch or ctx.batch_size * world, world)
        order = permutation(len(self.memory), ctx.seed, "agem", ctx.stage_index, ctx.step)
        picks = [self.memory[order[i % len(order)]] for i in range(size)]
        named = model.trainable_named_parameters()
        reference = ctx.gradient_of(picks[rank::world])
        coefficient = project_out_(gradients([p for _, p in named]), ordered(reference, [n for n, _ in named]),
                                   only_if_negative=True)
        projected = (coefficient < 0).long()
        self._count = projected if self._count is None else self._count.to(projected.device) + projected

    def after_task(self, model, task, ctx) -> None:
        if self._count is not None:
            self.projected[task.name] = int(self._count.item())
            ctx.log({"event": "agem", "task": task.name, "projected_steps": self.projected[task.name]})
            self._count = None
        self.buffer.add_task(task, ctx.seed)

    def state_dict(self):
        state = {"buffer": self.buffer.state_dict(), "projected_steps": dict(self.projected)}
        if self._count is not None:  # in the middle of a task: its projected steps so far
            state["projected_so_far"] = self._count
        return state

    def load_state_dict(self, state) -> None:
        self.buffer.load_state_dict(state.get("buffer", {}))
        self.projected = dict(state.get("projected_steps", {}))
        self._count = state.get("projected_so_far")

    def report(self):
        return {"buffer": self.buffer.counts(), "projected_steps": dict(self.projected)}
