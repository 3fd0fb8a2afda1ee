"""EProj with task similarity (He et al., "Continual Instruction Tuning for Large Multimodal
Models", arXiv 2311.16206).

Like EProj, but a new task whose similarity to an old task exceeds τ (default 0.85, unconfirmed)
reuses and keeps training that task's projector instead of adding one; the projector's key then
covers the inputs of both tasks. Similarity is s(t, i) of `components.similarity` (mean over
image, instruction and output of the cosine of mean embeddings); the most similar old task wins.
The similarity matrix of the seen tasks and the reuse decisions are in `report()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcit.core.configs import option
from mcit.methods.components.similarity import SimilarityOptions, TaskSimilarity
from mcit.methods.eproj import EProj, EProjOptions
from mcit.methods.registry import register


@dataclass
class _Threshold:
    """EProj-TIR's own option, listed first."""

    threshold: float = option(0.85, "reuse an old task's projector when the new task's similarity to it exceeds "
                                    "this (tau)", min=-1, max=1, unconfirmed=True)


@dataclass
class EProjTIROptions(SimilarityOptions, EProjOptions, _Threshold):
    """Options of EProj with task similarity: the threshold, EProj's, then the similarity's encoders."""


@register
class EProjTIR(EProj):
    name = "eproj-tir"
    summary = "EProj that reuses an old task's projector when the new task is similar enough to it"
    Options = EProjTIROptions

    def __init__(self, options: Any = None):
        super().__init__(options)
        self.similarity = TaskSimilarity.from_options(self.options)
        self.reused: dict[str, str] = {}

    def choose_projector(self, model, task, ctx) -> int:
        self.similarity.observe(task, model, ctx)
        old = [name for name in self.task_projector if name != task.name]
        if old:
            best = max(old, key=lambda name: self.similarity.similarity(task.name, name))
            if self.similarity.similarity(task.name, best) > self.options.threshold:
                self.reused[task.name] = best
                return self.task_projector[best]
        return super().choose_projector(model, task, ctx)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "similarity": self.similarity.state_dict(), "reused": dict(self.reused)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.similarity.load_state_dict(state.get("similarity", {}))
        self.reused = dict(state.get("reused", {}))

    def report(self) -> dict[str, Any]:
        return {**super().report(), "task_similarity": self.similarity.report(), "reused": dict(self.reused)}
