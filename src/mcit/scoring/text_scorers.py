"""Per-sample scorers for short text answers: exact match, VQA accuracy and ANLS.

Each function scores one prediction against the reference answers of its sample and returns a
value in [0, 1]; `mcit.scoring.score_task` averages them over a task.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcit.scoring.normalize import normalize_answer

#: ANLS threshold τ of Biten et al. (ICCV 2019): similarities of answers this far apart count as 0.
ANLS_THRESHOLD = 0.5


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals the normalised form of any reference, else 0.0."""
    predicted = normalize_answer(prediction)
    return 1.0 if any(predicted == normalize_answer(ref) for ref in references) else 0.0


def vqa_accuracy(prediction: str, references: Sequence[str]) -> float:
    """VQA accuracy (Antol et al., ICCV 2015): min(#matching references / 3, 1).

    An answer counts as fully correct when at least 3 of the (usually 10) human answers agree with
    it. Samples with fewer than 3 references cannot reach 3 matches, so they use
    min(matches / len(references), 1) instead: one reference that matches gives 1.0, and with two
    references one match gives 0.5. Answers are compared after `normalize_answer`.
    """
    predicted = normalize_answer(prediction)
    matches = sum(predicted == normalize_answer(ref) for ref in references)
    divisor = 3 if len(references) >= 3 else len(references)
    return min(matches / divisor, 1.0)


def levenshtein(a: str, b: str) -> int:
    """Edit distance between two strings (insertions, deletions and substitutions cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def normalized_levenshtein_similarity(prediction: str, reference: str) -> float:
    """1 − NL with NL = Levenshtein / max length, on lower-cased, whitespace-stripped strings.

    Returns 0 when NL ≥ τ = 0.5, as ANLS prescribes (Biten et al., "Scene Text Visual Question
    Answering", ICCV 2019); two empty strings are identical and give 1.
    """
    pred, ref = prediction.strip().lower(), reference.strip().lower()
    longest = max(len(pred), len(ref))
    if longest == 0:
        return 1.0
    distance = levenshtein(pred, ref) / longest
    return 0.0 if distance >= ANLS_THRESHOLD else 1.0 - distance


def anls(prediction: str, references: Sequence[str]) -> float:
    """Per-sample ANLS term (Biten et al., ICCV 2019): the best similarity over the references."""
    return max(normalized_levenshtein_similarity(prediction, ref) for ref in references)
