"""DGG, Dynamic Gradient Guidance (Li et al., "Multimodal Continual Instruction Tuning with Dynamic
Gradient Guidance", arXiv 2511.15164).

DGG reads forgetting as the absence of the old tasks' gradients while a new task trains, and
stands in for them with the vector from the previous optimum to the current parameters. At the
start of every task t ≥ 2 it stores θ* = θ (one float32 copy of the trainable parameters, replaced
at each task start). At every optimiser step of such a task, once the gradients are final (after
accumulation, synchronisation and fp16 unscaling, before clipping), it draws b ~ Bernoulli(α_t);
when b = 1 it adds to each trainable tensor's gradient g the guidance d = θ − θ*, first scaled
down to ‖g‖ when ‖d‖ > ‖g‖ so that it never outweighs the real gradient. A descent step along
g + d moves θ back toward θ*. Training data also mixes in replay records exactly as ER does (same
options, same buffer, same selection), so the step follows guidance + ∇L(θ; new ∪ buffer).

The gate draws from DGG's own CPU generator, seeded by the run's seed: once per optimiser step of
every task t ≥ 2 whatever the other options, so the draws depend on no option and consume no
other random stream. The generator's state is saved with the method, so a resumed run makes the
same draws. The update uses multi-tensor kernels with the scale factors as device tensors (no
host synchronisation per step); parameters sharded as DTensors get norms over the whole tensor
(`components.gradients`). A parameter without a gradient gets no guidance.

Defaults: α = 0.2 for every task (the paper's value on its 10-task VQAv2 stream, where it used
0.05–0.1 on the 6-task UCIT stream; unconfirmed for other streams); norms per tensor (unconfirmed;
`norm: global` compares one norm over all tensors); ER's buffer defaults (1% of each task; the
paper replayed 500 to 2,000 records per task, e.g. `buffer_size=500`). Ablations: `scale: false`
(no capping), `gate: false` (guide at every step), `guidance: false` (replay only, i.e. ER),
`replay: false` (guidance only). State: the buffer, θ*, the gate's generator state and, per task,
the steps, gate openings and guided steps (also in the run's report and log).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from mcit.core.configs import ConfigError, option
from mcit.methods.components import gradients as G
from mcit.methods.components.sampling import generator
from mcit.methods.er import ER, EROptions
from mcit.methods.registry import register

COUNTS = ("steps", "gate_openings", "guided_steps")


@dataclass
class DGGOptions(EROptions):
    """Options of DGG: ER's buffer and mixing, the gate's probability, the norm, and ablations."""

    alpha: float | list[float] = option(
        0.2, "probability that the gate adds the guidance at an optimiser step; a list gives one value per task "
             "of the stream in order (the first task's is unused: it has no guidance) and repeats its last value; "
             "0.2 is the paper's value on its VQAv2 stream (0.05-0.1 on UCIT)", min=0, max=1, unconfirmed=True)
    norm: Literal["per_tensor", "global"] = option(
        "per_tensor", "compare the norms of guidance and gradient per trainable tensor, or over all of them at once",
        unconfirmed=True)
    scale: bool = option(True, "cap the guidance at the gradient's norm (false: add θ − θ* unscaled)")
    gate: bool = option(True, "draw the Bernoulli gate (false: guide at every step)")
    guidance: bool = option(True, "add the guidance to the gradient (false: replay only)")
    replay: bool = option(True, "keep a replay buffer and mix it into training (false: guidance only)")

    def validate(self) -> None:
        super().validate()
        values = self.alpha if isinstance(self.alpha, list) else [self.alpha]
        if not values:
            raise ConfigError("config key 'method.alpha': give a number or a non-empty list of numbers")
        for value in values:
            if not 0 <= value <= 1:
                raise ConfigError(f"config key 'method.alpha': {value} is not a probability; use values in [0, 1]")
        if self.norm not in ("per_tensor", "global"):
            raise ConfigError(f"config key 'method.norm': {self.norm!r} is not allowed; choose per_tensor or global")


def guide_(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor],
           per_tensor: bool = True, scale: bool = True, eps: float = 1e-12) -> None:
    """g ← g + d in place with d = θ − θ*, scaled by min(1, ‖g‖ / ‖d‖) when `scale`.

    The norms are per tensor, or over all tensors when `per_tensor` is false. `params` and `grads`
    may be DTensors; `anchors` are then the local pieces of θ* (`gradients.local_like`).
    """
    if not grads:
        return
    with torch.no_grad():
        guidance = list(torch._foreach_sub(G.local(params), list(anchors)))
        if scale:
            # One call for both lists: one collective per mesh dimension for sharded tensors.
            both = G.norms(list(grads) + guidance, layout=list(params) + list(params))
            g_norms, d_norms = both[:len(grads)], both[len(grads):]
            if per_tensor:
                factors = torch._foreach_div(g_norms, torch._foreach_clamp_min(d_norms, eps))
                torch._foreach_clamp_max_(factors, 1.0)
                torch._foreach_mul_(guidance, factors)
            else:
                factor = torch.stack(g_norms).norm() / torch.stack(d_norms).norm().clamp(min=eps)
                torch._foreach_mul_(guidance, factor.clamp(max=1.0))
        pieces = G.local(grads)
        torch._foreach_add_(pieces, [d.to(g.dtype) for d, g in zip(guidance, pieces)])


@register
class DGG(ER):
    name = "dgg"
    summary = ("at random steps add θ − θ*, capped at the gradient's norm, to the gradient (a pull back toward the "
               "previous task's optimum), with replay")
    family = "gradient"
    Options = DGGOptions
    reads_gradients = True

    def __init__(self, options: DGGOptions | None = None):
        super().__init__(options)
        self.anchor: dict[str, torch.Tensor] = {}
        self.stream: torch.Generator | None = None
        self.counts: dict[str, dict[str, int]] = {kind: {} for kind in COUNTS}
        self._local: dict[str, torch.Tensor] = {}

    def alpha(self, stage_index: int) -> float:
        """α for the task at `stage_index` (0-based) of the stream."""
        alpha = self.options.alpha
        return float(alpha[min(stage_index, len(alpha) - 1)] if isinstance(alpha, list) else alpha)

    def before_task(self, model, task, ctx):
        self._local = {}
        if ctx.stage_index >= 1 and self.options.guidance:
            self.anchor = {n: G.whole(p.detach()).to(torch.float32, copy=True)
                           for n, p in model.trainable_named_parameters()}
        return model

    def after_backward(self, model, ctx) -> None:
        if ctx.stage_index < 1:
            return
        if self.stream is None:
            self.stream = generator(ctx.seed, "dgg", "gate")
        opened = torch.rand((), generator=self.stream).item() < self.alpha(ctx.stage_index)
        self._count(ctx.task.name, steps=1, gate_openings=int(opened), guided_steps=0)
        if not self.options.guidance or (self.options.gate and not opened):
            return
        named = [(n, p) for n, p in model.trainable_named_parameters() if p.grad is not None and n in self.anchor]
        if not named:
            return
        for n, p in named:
            if n not in self._local:  # θ* on the parameter's device (and sharding), once per task
                self._local[n] = G.local_like(self.anchor[n], p)
        guide_([p.grad for _, p in named], [p for _, p in named], [self._local[n] for n, _ in named],
               per_tensor=self.options.norm == "per_tensor", scale=self.options.scale)
        self._count(ctx.task.name, guided_steps=1)

    def _count(self, task: str, **increments: int) -> None:
        for kind, value in increments.items():
            self.counts[kind][task] = self.counts[kind].get(task, 0) + value

    def after_task(self, model, task, ctx) -> None:
        if self.options.replay:
            super().after_task(model, task, ctx)
        if task.name in self.counts["steps"]:
            ctx.log({"event": "dgg", "task": task.name, **{k: self.counts[k].get(task.name, 0) for k in COUNTS}})

    def state_dict(self):
        state = {**super().state_dict(), "anchor": dict(self.anchor),
                 "counts": {kind: dict(values) for kind, values in self.counts.items()}}
        if self.stream is not None:
            state["gate_stream"] = self.stream.get_state()
        return state

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.anchor, self._local = dict(state.get("anchor", {})), {}
        self.counts = {kind: dict(state.get("counts", {}).get(kind, {})) for kind in COUNTS}
        self.stream = None
        if "gate_stream" in state:
            self.stream = torch.Generator()
            self.stream.set_state(state["gate_stream"])

    def report(self):
        return {**super().report(), **{kind: dict(values) for kind, values in self.counts.items()}}
