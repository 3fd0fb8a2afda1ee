"""The quadratic penalty Σ_k Ω_k (θ_k − θ*_k)² that EWC, MAS and SI share.

`QuadraticPenalty` keeps one importance Ω and one anchor θ* per trainable tensor, whatever the
number of tasks: at each task end the task's importance is added to a running sum (or to a sum
decayed by γ, the "online" variant) and the anchor moves to the current parameters. Its state is
therefore two copies of the trainable parameters, O(|θ|) for any number of tasks.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

Named = dict[str, torch.Tensor]


def quadratic(named: Iterable[tuple[str, torch.Tensor]], importance: Named, anchor: Named) -> torch.Tensor | None:
    """Σ over the named parameters that have an importance of Σ Ω (θ − θ*)², or None if none has.

    Differentiable in θ; computed in float32 whatever the parameters' dtype.
    """
    total = None
    for name, p in named:
        omega = importance.get(name)
        if omega is None:
            continue
        term = (omega * (p.float() - anchor[name]).pow(2)).sum()
        total = term if total is None else total + term
    return total


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
