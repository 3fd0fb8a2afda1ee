"""Score one task's predictions with the task's metric.

`score_task` is the single entry point the evaluation loop calls: it checks the inputs, scores
every sample with the metric's per-sample scorer and reports the task's score on the metric's
usual percent scale (100 × the mean; CIDEr-D × 100, so it may exceed 100).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mcit.scoring.caption import cider_d, corpus_bleu4, rouge_l
from mcit.scoring.choice import choice_hit
from mcit.scoring.grounding import grounding_hit
from mcit.scoring.text_scorers import anls, exact_match, vqa_accuracy

METRIC_NAMES = ("exact_match", "vqa_accuracy", "multiple_choice", "cider", "anls", "grounding")

_PER_SAMPLE: dict[str, Callable[[str, Sequence[str]], float]] = {
    "exact_match": exact_match,
    "vqa_accuracy": vqa_accuracy,
    "anls": anls,
    "grounding": grounding_hit,
}


@dataclass
class TaskScore:
    """A task's score.

    `value` is on the metric's percent scale (0..100; CIDEr-D × 100 may exceed 100). `secondary`
    holds extra scores on the same scale (`bleu4` and `rouge_l` for captions, empty otherwise).
    `per_sample` has one score per sample on the 0..1 scale (raw CIDEr-D for captions).
    """

    value: float
    metric: str
    secondary: dict[str, float] = field(default_factory=dict)
    per_sample: list[float] = field(default_factory=list)


def _as_reference_lists(references: Sequence[Sequence[str] | str]) -> list[tuple[str, ...]]:
    """References as tuples; a bare string is one reference (not a sequence of characters)."""
    lists = []
    for index, refs in enumerate(references):
        refs = (refs,) if isinstance(refs, str) else tuple(refs)
        if not refs:
            raise ValueError(f"sample {index} has no reference answer")
        lists.append(refs)
    return lists


def score_task(metric: str, predictions: list[str], references: list[Sequence[str]],
               instructions: list[str] | None = None) -> TaskScore:
    """Score `predictions[i]` against the reference answers `references[i]` with `metric`.

    `instructions[i]` is sample i's instruction; multiple choice reads the options from it (without
    it only letters can be compared). Zero samples give a value of 0.0 (and secondary scores of
    0.0 for captions). Raises ValueError for an
    unknown metric, lists of different lengths or a sample without references.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if instructions is not None and len(instructions) != len(predictions):
        raise ValueError(f"{len(instructions)} instructions for {len(predictions)} predictions")
    refs = _as_reference_lists(references)
    if not predictions:
        secondary = {"bleu4": 0.0, "rouge_l": 0.0} if metric == "cider" else {}
        return TaskScore(value=0.0, metric=metric, secondary=secondary, per_sample=[])

    secondary: dict[str, float] = {}
    if metric == "cider":
        per_sample = cider_d(predictions, refs)
        secondary = {
            "bleu4": 100.0 * corpus_bleu4(predictions, refs),
            "rouge_l": 100.0 * sum(rouge_l(p, r) for p, r in zip(predictions, refs)) / len(refs),
        }
    elif metric == "multiple_choice":
        texts = instructions if instructions is not None else [""] * len(predictions)
        per_sample = [choice_hit(p, r, i) for p, r, i in zip(predictions, refs, texts)]
    else:
        scorer = _PER_SAMPLE[metric]
        per_sample = [scorer(p, r) for p, r in zip(predictions, refs)]
    per_sample = [float(s) for s in per_sample]
    return TaskScore(value=100.0 * sum(per_sample) / len(per_sample), metric=metric,
                     secondary=secondary, per_sample=per_sample)
