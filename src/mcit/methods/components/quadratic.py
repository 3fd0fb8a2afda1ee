"""The quadratic penalty Σ_k Ω_k (θ_k − θ*_k)² that EWC, MAS and SI share.

`QuadraticPenalty` keeps one importance Ω and one anchor θ* per trainable tensor, whatever the
number of tasks: at each task end the task's importance is added to a running sum (or to a sum
decayed by γ, the "online" variant) and the anchor moves to the current parameters. Its state is
therefore two copies of the trainable parameters, O(|θ|) for any number of tasks.

The penalty runs every micro-batch, so it is one autograd node over all tensors, computed with
multi-tensor (`torch._foreach_*`) kernels: a handful of kernel launches whatever the number of
trainable tensors (a 7B model with LoRA has hundreds), instead of several launches and autograd
nodes per tensor. Importances are never negative (squares, absolute values, clamped path
integrals, and sums of these with non-negative weights), which the fused sum relies on.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

Named = dict[str, torch.Tensor]


class _QuadraticForm(torch.autograd.Function):
    """scale · Σ_k Ω_k (θ_k − θ*_k)² over lists of tensors, as one autograd node.

    Forward keeps Ω (θ − θ*) for the backward pass, whose gradient is 2 · scale · Ω (θ − θ*).
    """

    @staticmethod
    def forward(ctx, scale: float, omegas: list[torch.Tensor], anchors: list[torch.Tensor],
                *params: torch.Tensor) -> torch.Tensor:
        differences = torch._foreach_sub([p.float() for p in params], anchors)
        weighted = torch._foreach_mul(differences, omegas)
        torch._foreach_mul_(differences, weighted)  # Ω (θ − θ*)², never negative: its 1-norm is its sum
        total = torch.stack(torch._foreach_norm(differences, 1)).sum() * scale
        ctx.save_for_backward(*weighted)
        ctx.scale, ctx.dtypes = scale, [p.dtype for p in params]
        return total

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grads = torch._foreach_mul(list(ctx.saved_tensors), grad_output * (2.0 * ctx.scale))
        return (None, None, None, *[g if g.dtype == dtype else g.to(dtype) for g, dtype in zip(grads, ctx.dtypes)])


def quadratic(named: Iterable[tuple[str, torch.Tensor]], importance: Named, anchor: Named,
              scale: float = 1.0) -> torch.Tensor | None:
    """scale · Σ over the named parameters that have an importance of Σ Ω (θ − θ*)², or None if
    none has.

    Differentiable in θ; computed in float32 whatever the parameters' dtype.
    """
    chosen = [(p, importance[name], anchor[name]) for name, p in named if name in importance]
    if not chosen:
        return None
    params, omegas, anchors = zip(*chosen)
    return _QuadraticForm.apply(scale, list(omegas), list(anchors), *params)


def snapshot(named: Iterable[tuple[str, torch.Tensor]]) -> Named:
    """Detached float32 copies of the parameters, by name."""
    return {n: p.detach().float().clone() for n, p in named}


def to_device(named: Named, device: torch.device | str) -> Named:
    return {n: t.to(device) for n, t in named.items()}


class QuadraticPenalty:
    """One accumulated importance and one anchor per parameter (see the module docstring)."""

    def __init__(self) -> None:
        self.importance: Named = {}
        self.anchor: Named = {}

    @property
    def active(self) -> bool:
        return bool(self.importance)

    def consolidate(self, importance: Named, named: Iterable[tuple[str, torch.Tensor]], decay: float = 1.0) -> None:
        """Ω ← decay · Ω + importance; θ* ← the current parameters."""
        for name, value in importance.items():
            previous = self.importance.get(name)
            value = value.detach().float()
            self.importance[name] = value.clone() if previous is None else previous.to(value.device) * decay + value
        self.anchor = snapshot(named)

    def __call__(self, named: Iterable[tuple[str, torch.Tensor]]) -> torch.Tensor | None:
        """The penalty at the current parameters (None before the first consolidation)."""
        if not self.active:
            return None
        return quadratic(named, self.importance, self.anchor)

    def to(self, device: torch.device | str) -> QuadraticPenalty:
        self.importance, self.anchor = to_device(self.importance, device), to_device(self.anchor, device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"importance": dict(self.importance), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.importance = dict(state.get("importance", {}))
        self.anchor = dict(state.get("anchor", {}))
