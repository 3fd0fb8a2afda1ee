"""MAS-TIR: MAS with task-similarity-informed regularisation (He et al., arXiv 2311.16206).

Like MAS (Aljundi et al., ECCV 2018), but each old task keeps its own importance and anchor, and
its penalty is weighted by its similarity to the task being learnt (see `components.tir`).
Logged as "mas_tir". Defaults as in MAS: λ = 1, 200 samples; weighting by similarity,
normalised to average 1 (unconfirmed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import option
from mcit.methods.components.importance import mas_importance
from mcit.methods.components.sampling import sample
from mcit.methods.components.tir import TIRMethod, TIROptions
from mcit.methods.registry import register


@dataclass
class _Strength:
    """MAS-TIR's own options, listed first."""

    lam: float = option(1.0, "penalty strength lambda", min=0, unconfirmed=True)
    samples: int = option(200, "training records per task for the importance estimate", min=1, unconfirmed=True)


@dataclass
class MASTIROptions(TIROptions, _Strength):
    """Options of MAS-TIR: its own, then how task similarity weights the per-task terms."""


@register
class MASTIR(TIRMethod):
    name = "mas-tir"
    summary = "MAS with one importance term per old task, weighted by that task's similarity to the new one"
    Options = MASTIROptions
    reads_gradients = True
    loss_name = "mas_tir"

    def task_importance(self, model, task, ctx):
        return mas_importance(ctx, sample(task.train, self.options.samples, ctx.seed, "mas", task.name))
