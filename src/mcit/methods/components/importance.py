"""Parameter importance for the regularisation methods: Fisher (EWC), MAS, SI's path integral.

Every estimate is a {parameter name: tensor} mapping over the parameters that train, in float32,
non-negative.

- `fisher_diagonal`: the diagonal empirical Fisher, the mean over N records of the squared
  per-record gradient of the answer's log-likelihood log p(answer | image, instruction) (the sum
  over answer tokens of each token's log-probability).
- `mas_importance`: Memory Aware Synapses, the mean over N records of |∂‖f(x)‖²/∂θ|, with f(x)
  the output logits at the positions that predict answer tokens (no labels are needed to define
  it; the labels only mark where the answer is).
- `PathIntegral`: Synaptic Intelligence's ω_k += −g_k Δθ_k at every optimiser step and, at the
  end of a task, Ω_k = ω_k / ((θ_k − θ_k^start)² + ξ).

Per-record gradients come from `ctx.gradient_of([record], synchronize=False)`, so the loop stays
the only place that runs backward. With several processes each one takes every world-th record,
and the per-process sums are added up across processes before dividing by N, so every process
ends with the same estimate.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from mcit.data.schema import Record
from mcit.methods.components.sampling import shard

IGNORE_INDEX = -100
Named = dict[str, torch.Tensor]


def answer_positions(batch: dict) -> torch.Tensor:
    """Mask [B, L-1] of the logits positions that predict an answer token (labels shifted by one)."""
    return batch["labels"][:, 1:] != IGNORE_INDEX


def answer_log_likelihood(outputs, batch: dict) -> torch.Tensor:
    """Σ over the batch's answer tokens of log p(token | everything before it)."""
    mask = answer_positions(batch)
    logits = outputs.logits[:, :-1][mask].float()
    targets = batch["labels"][:, 1:][mask]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).sum()


def negative_answer_log_likelihood(outputs, batch: dict) -> torch.Tensor:
    """The objective whose per-record gradient EWC squares (the sign does not matter after squaring)."""
    return -answer_log_likelihood(outputs, batch)


def answer_logits_squared_norm(outputs, batch: dict) -> torch.Tensor:
    """‖f(x)‖²₂ with f(x) the logits at the positions that predict answer tokens (MAS's objective)."""
    logits = outputs.logits[:, :-1][answer_positions(batch)].float()
    return logits.pow(2).sum()


def _per_record_mean(ctx, records: Sequence[Record], objective: Callable,
                     accumulate: Callable[[list[torch.Tensor], list[torch.Tensor]], None]) -> Named:
    """Mean over `records` of a per-record transform of the objective's gradient, summed across processes."""
    accelerator = ctx.accelerator
    world = getattr(accelerator, "num_processes", 1)
    rank = getattr(accelerator, "process_index", 0)
    named = ctx.model.trainable_named_parameters()
    names = [n for n, _ in named]
    totals = [torch.zeros_like(p, dtype=torch.float32) for _, p in named]
    for record in shard(records, rank, world):
        grads = ctx.gradient_of([record], objective=objective, synchronize=False)
        accumulate(totals, [grads[n].float() for n in names])
    result = dict(zip(names, totals))
    if world > 1:
        result = accelerator.reduce(result, reduction="sum")
    count = max(1, len(records))
    return {n: t / count for n, t in result.items()}


def fisher_diagonal(ctx, records: Sequence[Record]) -> Named:
    """Diagonal empirical Fisher over `records`: mean of squared per-record log-likelihood gradients."""
    return _per_record_mean(ctx, records, negative_answer_log_likelihood,
                            lambda totals, g: torch._foreach_addcmul_(totals, g, g))


def mas_importance(ctx, records: Sequence[Record]) -> Named:
    """MAS importance over `records`: mean of |∂‖f(x)‖²/∂θ| per record."""
    return _per_record_mean(ctx, records, answer_logits_squared_norm,
                            lambda totals, g: torch._foreach_add_(totals, torch._foreach_abs(g)))


class PathIntegral:
    """Synaptic Intelligence's running path integral of one task (Zenke et al., ICML 2017).

    Call `begin` at the start of a task, `record_gradients` once per optimiser step after the
    backward pass (the gradient the optimiser is about to use, before clipping), `accumulate`
    after the step, and `importance` at the end of the task. Negative totals (an adaptive
    optimiser can step against the gradient) are clamped to zero, so that the penalty never
    rewards moving away from an anchor. Holds four copies of the trainable parameters while a
    task trains (start, previous, gradient, ω) and none between tasks; `state_dict` saves them
    for a run checkpointed in the middle of a task.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.start: list[torch.Tensor] = []
        self.previous: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []
        self.omega: list[torch.Tensor] = []
        self.has_grads = False

    @staticmethod
    def _values(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [p.detach().float() for p in params]

    def begin(self, named: Sequence[tuple[str, torch.Tensor]]) -> None:
        self.names = [n for n, _ in named]
        values = self._values([p for _, p in named])
        self.start = [v.clone() for v in values]
        self.previous = [v.clone() for v in values]
        self.grads = [torch.zeros_like(v) for v in values]
        self.omega = [torch.zeros_like(v) for v in values]
        self.has_grads = False

    def record_gradients(self, params: Sequence[torch.Tensor]) -> None:
        grads = [p.grad.detach().float() if p.grad is not None else torch.zeros_like(g)
                 for p, g in zip(params, self.grads)]
        torch._foreach_copy_(self.grads, grads)
        self.has_grads = True

    def accumulate(self, params: Sequence[torch.Tensor]) -> None:
        if not self.has_grads:
            return
        current = self._values(params)
        delta = torch._foreach_sub(current, self.previous)
        torch._foreach_addcmul_(self.omega, self.grads, delta, value=-1.0)
        torch._foreach_copy_(self.previous, current)
        self.has_grads = False

    def importance(self, params: Sequence[torch.Tensor], xi: float) -> Named:
        """Ω of the task, max(ω, 0) / ((θ − θ_start)² + ξ), then forget the task's path."""
        change = torch._foreach_sub(self._values(params), self.start)
        denominator = torch._foreach_mul(change, change)
        torch._foreach_add_(denominator, xi)
        omega = torch._foreach_clamp_min(self.omega, 0.0)
        result = dict(zip(self.names, torch._foreach_div(omega, denominator)))
        self.__init__()
        return result

    # A run checkpointed in the middle of a task saves the path so far and continues it on resume.
    _PARTS = ("start", "previous", "grads", "omega")

    def state_dict(self) -> dict:
        """The path so far by parameter name (empty between tasks)."""
        if not self.names:
            return {}
        return {"names": list(self.names), "has_grads": self.has_grads,
                **{part: dict(zip(self.names, getattr(self, part))) for part in self._PARTS}}

    def load_state_dict(self, state: dict) -> None:
        self.__init__()
        if state:
            self.names = list(state["names"])
            for part in self._PARTS:
                setattr(self, part, [state[part][n] for n in self.names])
            self.has_grads = bool(state["has_grads"])

    def to(self, device: torch.device | str) -> PathIntegral:
        for part in self._PARTS:
            setattr(self, part, [t.to(device) for t in getattr(self, part)])
        return self
