"""MAS, Memory Aware Synapses (Aljundi et al., ECCV 2018).

At the end of each task the importance of each parameter is the mean, over `samples` of the task's
training records, of |∂‖f(x)‖²/∂θ|, with f(x) the output logits at the positions that produce the
answer: how much the model's output moves when the parameter moves, with no use of the correct
answer. It is added to the accumulated importance Ω (decayed by γ first when γ < 1), the anchor θ*
moves to the current parameters, and later tasks train with λ Σ_k Ω_k (θ_k − θ*_k)², logged as
"mas". State: one Ω and one anchor, O(|θ|) for any number of tasks. Defaults: λ = 1 (the paper's
setting for its models; unconfirmed here), 200 samples, γ = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.importance import mas_importance
from mcit.methods.components.quadratic import QuadraticPenalty
from mcit.methods.components.sampling import sample
from mcit.methods.registry import register


@dataclass
class MASOptions:
    """Options of MAS."""

    lam: float = option(1.0, "penalty strength lambda", min=0, unconfirmed=True)
    samples: int = option(200, "training records per task for the importance estimate", min=1, unconfirmed=True)
    gamma: float = option(1.0, "decay of the accumulated importance at each task end (1: running sum)", min=0, max=1)


@register
class MAS(Method):
    name = "mas"
    summary = "penalise moving parameters the outputs are sensitive to (label-free importance)"
    family = "regularisation"
    Options = MASOptions
    reads_gradients = True

    def __init__(self, options: MASOptions | None = None):
        super().__init__(options)
        self.penalty = QuadraticPenalty()

    def setup(self, model, ctx):
        self.penalty.to(model.device)
        return model

    def extra_losses(self, model, batch, outputs, ctx):
        value = self.penalty(model.trainable_named_parameters())
        return {} if value is None else {"mas": self.options.lam * value}

    def after_task(self, model, task, ctx) -> None:
        records = sample(task.train, self.options.samples, ctx.seed, "mas", task.name)
        importance = mas_importance(ctx, records)
        self.penalty.consolidate(importance, model.trainable_named_parameters(), decay=self.options.gamma)

    def state_dict(self):
        return self.penalty.state_dict()

    def load_state_dict(self, state) -> None:
        self.penalty.load_state_dict(state)
