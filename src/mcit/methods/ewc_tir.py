"""EWC-TIR: EWC with task-similarity-informed regularisation (He et al., "Continual Instruction
Tuning for Large Multimodal Models", arXiv 2311.16206).

Like EWC (Kirkpatrick et al., PNAS 2017), but each old task keeps its own diagonal Fisher and
anchor, and its penalty is weighted by its similarity to the task being learnt (see
`components.tir` for the weights and the bounded `max_terms` variant, `components.similarity`
for how similarity is measured). Logged as "ewc_tir". Defaults as in EWC: λ = 100, 200 Fisher
samples; weighting by similarity, normalised to average 1 (unconfirmed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.components.importance import fisher_diagonal
from mcit.methods.components.sampling import sample
from mcit.methods.components.tir import TIRMethod, TIROptions
from mcit.methods.registry import register


@dataclass
class _Strength:
    """EWC-TIR's own options, listed first."""

    lam: float = option(100.0, "penalty strength lambda", min=0, unconfirmed=True)
    samples: int = option(200, "training records per task for the Fisher estimate", min=1, unconfirmed=True)


@dataclass
class EWCTIROptions(TIROptions, _Strength):
    """Options of EWC-TIR: its own, then how task similarity weights the per-task terms."""


@register
class EWCTIR(TIRMethod):
    name = "ewc-tir"
    summary = "EWC with one Fisher term per old task, weighted by that task's similarity to the new one"
    Options = EWCTIROptions
    reads_gradients = True
    loss_name = "ewc_tir"

    def task_importance(self, model, task, ctx):
        return fisher_diagonal(ctx, sample(task.train, self.options.samples, ctx.seed, "fisher", task.name))
