"""EWC, Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), with the online variant
(Schwarz et al., "Progress & Compress", ICML 2018).

At the end of each task the diagonal empirical Fisher information of that task, estimated on
`samples` of its training records, is added to the accumulated importance Ω (online EWC first
decays Ω by γ < 1), and the anchor θ* moves to the current parameters. While training later
tasks the loss gains λ Σ_k Ω_k (θ_k − θ*_k)², logged as "ewc".

One accumulated Ω and one anchor, rather than one pair per task, keep the state at two copies of
the trainable parameters whatever the number of tasks; with γ = 1 this is the running-sum form of
EWC. Defaults: λ = 100 and 200 Fisher samples (neither pinned down for this setting), γ = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.base import Method
from mcit.methods.components.importance import fisher_diagonal
from mcit.methods.components.quadratic import QuadraticPenalty
from mcit.methods.components.sampling import sample
from mcit.methods.registry import register


@dataclass
class EWCOptions:
    """Options of EWC."""

    lam: float = option(100.0, "penalty strength lambda", min=0, unconfirmed=True)
    samples: int = option(200, "training records per task for the Fisher estimate", min=1, unconfirmed=True)
    gamma: float = option(1.0, "decay of the accumulated importance at each task end: 1 = plain EWC "
                               "(running sum), below 1 = online EWC", min=0, max=1)


@register
class EWC(Method):
    name = "ewc"
    summary = "penalise moving parameters that mattered to earlier tasks, by diagonal Fisher importance"
    family = "regularisation"
    Options = EWCOptions
    reads_gradients = True

    def __init__(self, options: EWCOptions | None = None):
        super().__init__(options)
        self.penalty = QuadraticPenalty()

    def setup(self, model, ctx):
        self.penalty.to(model.device)
        return model

    def extra_losses(self, model, batch, outputs, ctx):
        value = self.penalty(model.trainable_named_parameters())
        return {} if value is None else {"ewc": self.options.lam * value}

    def after_task(self, model, task, ctx) -> None:
        records = sample(task.train, self.options.samples, ctx.seed, "fisher", task.name)
        fisher = fisher_diagonal(ctx, records)
        self.penalty.consolidate(fisher, model.trainable_named_parameters(), decay=self.options.gamma)

    def state_dict(self):
        return self.penalty.state_dict()

    def load_state_dict(self, state) -> None:
        self.penalty.load_state_dict(state)
