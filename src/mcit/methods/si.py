"""SI, Synaptic Intelligence (Zenke et al., ICML 2017).

While a task trains, every optimiser step adds −g_k Δθ_k to a running path integral ω_k (g: the
gradient the optimiser is given, after accumulation and before clipping; Δθ: the step actually
taken). At the end of the task each parameter's share of the loss decrease becomes importance,
Ω_k += max(ω_k, 0) / ((θ_k − θ_k^start)² + ξ), ω is reset and the anchor θ* moves to the current
parameters. Later tasks train with λ Σ_k Ω_k (θ_k − θ*_k)², logged as "si".

State between tasks: Ω and the anchor, O(|θ|) whatever the number of tasks; during a task the
path integral holds four more copies (start, previous step, gradient, ω), saved with step
checkpoints so that a run resumed in the middle of a task continues the same path. Defaults:
ξ = 0.1 and λ = 1 (the paper's c; both unconfirmed for this setting). Negative path integrals,
possible with an adaptive optimiser, are clamped to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.importance import PathIntegral
from mcit.methods.components.quadratic import QuadraticPenalty
from mcit.methods.registry import register


@dataclass
class SIOptions:
    """Options of SI."""

    lam: float = option(1.0, "penalty strength (the paper's c)", min=0, unconfirmed=True)
    xi: float = option(0.1, "damping xi added to the squared parameter change", min=0, unconfirmed=True)


@register
class SI(Method):
    name = "si"
    summary = "penalise moving parameters by their contribution to earlier loss decrease (path integral)"
    family = "regularisation"
    Options = SIOptions
    reads_gradients = True

    def __init__(self, options: SIOptions | None = None):
        super().__init__(options)
        self.penalty = QuadraticPenalty()
        self.path = PathIntegral()
        self.params: list = []

    def setup(self, model, ctx):
        self.penalty.to(model.device)
        self.path.to(model.device)
        return model

    def before_task(self, model, task, ctx):
        named = model.trainable_named_parameters()
        self.params = [p for _, p in named]
        self.path.begin(named)
        return model

    def resume_task(self, model, task, ctx):
        """Mid-task resume: the path so far came with the state; follow the same parameters."""
        named = dict(model.trainable_named_parameters())
        self.params = [named[n] for n in self.path.names]
        return model

    def extra_losses(self, model, batch, outputs, ctx):
        value = self.penalty(model.trainable_named_parameters())
        return {} if value is None else {"si": self.options.lam * value}

    def after_backward(self, model, ctx) -> None:
        self.path.record_gradients(self.params)

    def after_step(self, model, ctx) -> None:
        self.path.accumulate(self.params)

    def after_task(self, model, task, ctx) -> None:
        importance = self.path.importance(self.params, self.options.xi)
        self.penalty.consolidate(importance, model.trainable_named_parameters())

    def state_dict(self):
        return {**self.penalty.state_dict(), "path": self.path.state_dict()}

    def load_state_dict(self, state) -> None:
        self.penalty.load_state_dict(state)
        self.path.load_state_dict(state.get("path", {}))
