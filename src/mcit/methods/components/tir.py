"""Task-similarity-informed regularisation (TIR, He et al., arXiv 2311.16206): the shared core.

While training task t the penalty is

    λ Σ_i w(t, i) Σ_k Ω_{i,k} (θ_k − θ*_{i,k})²

with one term per old task i: its own importance Ω_i (of that task alone, not accumulated) and its
own anchor θ*_i (the parameters at the end of task i). The weights come from the task similarity
s(t, i) (`components.similarity`), computed when task t starts:

- weighting "similarity" (default, unconfirmed): w ∝ max(s, 0); "dissimilarity": w ∝ 1 − s;
- normalise "mean" (default): the weights of the old tasks average to 1, so λ means what it
  means for the plain method (where every old task counts once); "sum": they sum to 1.

A step costs one quadratic whatever the number of terms: with A = Σ_i w_i Ω_i and b̄ the
A-weighted mean of the anchors, the penalty equals λ (Σ_k A_k (θ_k − b̄_k)² + R), where
R = Σ_i w_i Σ_k Ω_{i,k} (θ*_{i,k} − b̄_k)² is a constant of the task (a sum of non-negative terms, so
nothing cancels). A, b̄ and R are computed once per task (when the weights are set), which costs
2·|θ| more memory while two or more terms count.

Memory: each term holds two copies of the trainable parameters, so T tasks cost O(T·|θ|). With
`max_terms = K`, whenever a task end makes K + 1 terms, the two most similar terms (mean pairwise
similarity of their tasks) merge into one: importances add up and the anchor becomes the
importance-weighted mean of the two anchors, (Ω_a θ*_a + Ω_b θ*_b) / (Ω_a + Ω_b). The merged
quadratic has the same curvature and minimum as the two terms together (the value differs by a
constant), so the merge is exact when the two are weighted alike; a merged term's weight is the
mean of its tasks' weights. Memory is then O(K·|θ|).

`TIRMethod` is the base class of ewc-tir, mas-tir and si-tir: subclasses say how a task's
importance is measured (`task_importance`).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

import torch

from mcit.core.configs import option
from mcit.data.schema import Task
from mcit.methods.base import Method
from mcit.methods.components.quadratic import Named, quadratic, snapshot, to_device
from mcit.methods.components.similarity import SimilarityOptions, TaskSimilarity

Similarity = Callable[[str, str], float]


@dataclass
class TermOptions:
    """How similarity weights the per-task terms, and their bound."""

    weighting: Literal["similarity", "dissimilarity"] = option(
        "similarity", "weight of an old task's term: its similarity s to the new task, or 1 - s", unconfirmed=True)
    normalise: Literal["mean", "sum"] = option(
        "mean", "scale the weights over the old tasks to average 1 (lambda as in the plain method) or to sum to 1",
        unconfirmed=True)
    max_terms: int | None = option(None, "keep at most this many per-task terms by merging the two most similar "
                                         "(memory O(K |theta|) instead of O(T |theta|)); null: one per task", min=1)


@dataclass
class TIROptions(SimilarityOptions, TermOptions):
    """Options every TIR method has: the terms' weighting and bound, then the similarity's encoders.

    A method's options class lists its own fields in a base placed last, so they come first:
    `class EWCTIROptions(TIROptions, Strength)`.
    """


def task_weights(current: str, old: list[str], similarity: Similarity, weighting: str, normalise: str) -> dict[str, float]:
    """w(current, i) for every old task i (see the module docstring)."""
    if not old:
        return {}
    s = {name: similarity(current, name) for name in old}
    raw = {n: max(v, 0.0) if weighting == "similarity" else max(1.0 - v, 0.0) for n, v in s.items()}
    total = sum(raw.values())
    if total <= 0:  # every old task equally (dis)similar: no preference
        raw, total = {n: 1.0 for n in old}, float(len(old))
    scale = len(old) if normalise == "mean" else 1.0
    return {n: scale * v / total for n, v in raw.items()}


class TaskTerms:
    """The per-old-task (or merged) quadratic terms: members, importance, anchor."""

    def __init__(self) -> None:
        self.terms: list[dict[str, Any]] = []
        self._combined: tuple | None = None  # (weights, terms, combined term, offset R) of the last penalty

    @property
    def tasks(self) -> list[str]:
        return [name for term in self.terms for name in term["members"]]

    def add(self, task: str, importance: Named, named: Iterable[tuple[str, torch.Tensor]],
            max_terms: int | None = None, similarity: Similarity | None = None) -> None:
        """Append the finished task's term; merge the most similar pair while there are too many."""
        self.terms.append({"members": [task], "importance": {n: t.detach().float().clone() for n, t in importance.items()},
                           "anchor": snapshot(named)})
        while max_terms is not None and len(self.terms) > max_terms:
            if similarity is None:
                raise ValueError("merging terms needs the task similarity")
            a, b = self._most_similar_pair(similarity)
            self.terms[a] = merge(self.terms[a], self.terms[b])
            del self.terms[b]

    def _most_similar_pair(self, similarity: Similarity) -> tuple[int, int]:
        best, pair = None, (0, 1)
        for a in range(len(self.terms)):
            for b in range(a + 1, len(self.terms)):
                members_a, members_b = self.terms[a]["members"], self.terms[b]["members"]
                value = sum(similarity(x, y) for x in members_a for y in members_b) / (len(members_a) * len(members_b))
                if best is None or value > best:
                    best, pair = value, (a, b)
        return pair

    def term_weights(self, per_task: dict[str, float]) -> list[float]:
        """Each term's weight: the mean of its tasks' weights."""
        return [sum(per_task[m] for m in t["members"]) / len(t["members"]) for t in self.terms]

    def penalty(self, named: Iterable[tuple[str, torch.Tensor]], weights: list[float]) -> torch.Tensor | None:
        """Σ_i w_i Σ_k Ω_ik (θ_k − θ*_ik)² (None when there is no term), as one quadratic (see the
        module docstring)."""
        live = [(weight, term) for weight, term in zip(weights, self.terms) if weight != 0]
        if not live:
            return None
        if len(live) == 1:
            weight, term = live[0]
            return quadratic(named, term["importance"], term["anchor"], scale=weight)
        combined, offset = self.combined(live)
        value = quadratic(named, combined["importance"], combined["anchor"])
        return None if value is None else value + offset

    def combined(self, live: list[tuple[float, dict[str, Any]]]) -> tuple[dict[str, Any], torch.Tensor]:
        """The term with importance A = Σ w_i Ω_i and anchor b̄, and the constant R, for weighted
        terms (computed again only when the weights or the terms change)."""
        weights, terms = tuple(w for w, _ in live), [t for _, t in live]
        cached = self._combined
        if (cached is not None and cached[0] == weights and len(cached[1]) == len(terms)
                and all(a is b for a, b in zip(cached[1], terms))):
            return cached[2], cached[3]
        scaled = [{"members": t["members"], "importance": {n: w * o for n, o in t["importance"].items()},
                   "anchor": t["anchor"]} for w, t in live]
        combined = functools.reduce(merge, scaled)
        with torch.no_grad():
            parts = [quadratic(t["anchor"].items(), t["importance"], combined["anchor"], scale=w) for w, t in live]
            offset = torch.stack([part for part in parts if part is not None]).sum()
        self._combined = (weights, terms, combined, offset)
        return combined, offset

    def to(self, device: torch.device | str) -> TaskTerms:
        self._combined = None
        for term in self.terms:
            term["importance"], term["anchor"] = to_device(term["importance"], device), to_device(term["anchor"], device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"terms": [{"members": list(t["members"]), "importance": dict(t["importance"]),
                           "anchor": dict(t["anchor"])} for t in self.terms]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._combined = None
        self.terms = [{"members": list(t["members"]), "importance": dict(t["importance"]), "anchor": dict(t["anchor"])}
                      for t in state.get("terms", [])]


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One term equivalent to two: importances summed, anchors averaged by importance."""
    importance, anchor = {}, {}
    names = list(a["importance"]) + [n for n in b["importance"] if n not in a["importance"]]
    for name in names:
        if name not in b["importance"]:
            importance[name], anchor[name] = a["importance"][name], a["anchor"][name]
            continue
        if name not in a["importance"]:
            importance[name], anchor[name] = b["importance"][name], b["anchor"][name]
            continue
        omega_a, omega_b = a["importance"][name], b["importance"][name]
        total = omega_a + omega_b
        weighted = (omega_a * a["anchor"][name] + omega_b * b["anchor"][name]) / total.clamp(min=torch.finfo(total.dtype).tiny)
        importance[name] = total
        anchor[name] = torch.where(total > 0, weighted, (a["anchor"][name] + b["anchor"][name]) / 2)
    return {"members": a["members"] + b["members"], "importance": importance, "anchor": anchor}


class TIRMethod(Method, ABC):
    """A regularisation method with one similarity-weighted penalty term per old task.

    Subclasses set `loss_name` and implement `task_importance`; options must include `lam` and
    the `TIROptions` fields.
    """

    family = "regularisation"
    loss_name = "tir"

    def __init__(self, options: Any = None):
        super().__init__(options)
        self.terms = TaskTerms()
        self.similarity = TaskSimilarity.from_options(self.options)
        self.weights: list[float] = []
        self.weight_log: dict[str, dict[str, float]] = {}

    @abstractmethod
    def task_importance(self, model, task: Task, ctx) -> Named:
        """Ω of the task just trained, per trainable tensor (measured at the end of the task)."""

    def setup(self, model, ctx):
        self.terms.to(model.device)
        return model

    def before_task(self, model, task: Task, ctx):
        self._weigh(model, task, ctx)
        return model

    def resume_task(self, model, task: Task, ctx):
        """Mid-task resume: the task was observed before (in the state); weigh the terms again."""
        self._weigh(model, task, ctx)
        return model

    def _weigh(self, model, task: Task, ctx) -> None:
        """The terms' weights for `task` (observing the task first, once)."""
        self.similarity.observe(task, model, ctx)
        per_task = task_weights(task.name, self.terms.tasks, self.similarity.similarity,
                                self.options.weighting, self.options.normalise)
        self.weights = self.terms.term_weights(per_task)
        self.weight_log[task.name] = {n: round(w, 6) for n, w in per_task.items()}

    def extra_losses(self, model, batch: dict, outputs, ctx) -> dict[str, torch.Tensor]:
        value = self.terms.penalty(model.trainable_named_parameters(), self.weights)
        return {} if value is None else {self.loss_name: self.options.lam * value}

    def after_task(self, model, task: Task, ctx) -> None:
        importance = self.task_importance(model, task, ctx)
        self.terms.add(task.name, importance, model.trainable_named_parameters(), self.options.max_terms,
                       self.similarity.similarity)

    def state_dict(self) -> dict[str, Any]:
        return {**self.terms.state_dict(), "similarity": self.similarity.state_dict(), "weights": self.weight_log}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.terms.load_state_dict(state)
        self.similarity.load_state_dict(state.get("similarity", {}))
        self.weight_log = {k: dict(v) for k, v in state.get("weights", {}).items()}

    def report(self) -> dict[str, Any]:
        return {"task_similarity": self.similarity.report(), "penalty_weights": self.weight_log,
                "terms": [list(t["members"]) for t in self.terms.terms]}
