"""SI-TIR: SI with task-similarity-informed regularisation (He et al., arXiv 2311.16206).

Like SI (Zenke et al., ICML 2017), but each old task keeps the importance of its own path
integral, max(ω, 0) / ((θ − θ_start)² + ξ), and its own anchor, and its penalty is weighted by its
similarity to the task being learnt (see `components.tir`). Logged as "si_tir". Defaults as in
SI: λ = 1, ξ = 0.1; weighting by similarity, normalised to average 1 (unconfirmed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.components.importance import PathIntegral
from mcit.methods.components.tir import TIRMethod, TIROptions
from mcit.methods.registry import register


@dataclass
class _Strength:
    """SI-TIR's own options, listed first."""

    lam: float = option(1.0, "penalty strength (the paper's c)", min=0, unconfirmed=True)
    xi: float = option(0.1, "damping xi added to the squared parameter change", min=0, unconfirmed=True)


@dataclass
class SITIROptions(TIROptions, _Strength):
    """Options of SI-TIR: its own, then how task similarity weights the per-task terms."""


@register
class SITIR(TIRMethod):
    name = "si-tir"
    summary = "SI with one path-integral term per old task, weighted by that task's similarity to the new one"
    Options = SITIROptions
    reads_gradients = True
    loss_name = "si_tir"

    def __init__(self, options: SITIROptions | None = None):
        super().__init__(options)
        self.path = PathIntegral()
        self.params: list = []

    def setup(self, model, ctx):
        self.path.to(model.device)
        return super().setup(model, ctx)

    def before_task(self, model, task, ctx):
        named = model.trainable_named_parameters()
        self.params = [p for _, p in named]
        self.path.begin(named)
        return super().before_task(model, task, ctx)

    def resume_task(self, model, task, ctx):
        """Mid-task resume: the path so far came with the state; follow the same parameters."""
        named = dict(model.trainable_named_parameters())
        self.params = [named[n] for n in self.path.names]
        return super().resume_task(model, task, ctx)

    def state_dict(self):
        return {**super().state_dict(), "path": self.path.state_dict()}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.path.load_state_dict(state.get("path", {}))

    def after_backward(self, model, ctx) -> None:
        self.path.record_gradients(self.params)

    def after_step(self, model, ctx) -> None:
        self.path.accumulate(self.params)

    def task_importance(self, model, task, ctx):
        return self.path.importance(self.params, self.options.xi)
