"""Caption metrics: CIDEr-D, BLEU-4 and ROUGE-L, each from its published definition.

All three work on the same tokens: the text is lower-cased, every punctuation character becomes a
space (a decimal point between digits is kept) and the result is split on whitespace, so
"A dog's ball." gives ["a", "dog", "s", "ball"]. Scores are returned on the 0..1 scale (CIDEr-D on
its own scale, about 0..10); `mcit.scoring.score_task` multiplies them by 100.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from mcit.scoring.normalize import strip_punctuation

MAX_N = 4
#: Standard deviation of CIDEr-D's Gaussian length penalty.
CIDER_SIGMA = 6.0
#: Weight of recall against precision in the ROUGE-L F-measure.
ROUGE_BETA = 1.2

NGram = tuple[str, ...]


def tokenize_caption(text: str) -> list[str]:
    """Lower-case, turn punctuation into spaces, split on whitespace."""
    return strip_punctuation(text.lower(), replacement=" ").split()


def ngram_counts(tokens: Sequence[str], n: int) -> Counter[NGram]:
    """How often each n-gram (a tuple of n tokens) occurs in `tokens`."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _all_ngrams(tokens: Sequence[str]) -> list[Counter[NGram]]:
    return [ngram_counts(tokens, n) for n in range(1, MAX_N + 1)]


def cider_d(candidates: Sequence[str], references: Sequence[Sequence[str]],
            sigma: float = CIDER_SIGMA) -> list[float]:
    """Per-sample CIDEr-D (Vedantam, Zitnick and Parikh, "CIDEr: Consensus-based Image Description
    Evaluation", CVPR 2015: CIDEr with the CIDEr-D changes, i.e. clipped n-gram counts and a
    Gaussian length penalty).

    For n = 1..4, an n-gram g of a sentence gets the weight
        g_n(g) = count(g) · log(N / max(1, df(g)))
    where N is the number of samples and df(g) the number of samples whose references contain g:
    the corpus is the evaluated set itself, so CIDEr-D of a single sample is 0 (every idf is 0).
    For candidate c and references s_1..s_m,
        CIDEr-D_n = 10/m · Σ_j exp(−(l(c) − l(s_j))² / (2σ²))
                         · Σ_g min(g_n^c(g), g_n^{s_j}(g)) · g_n^{s_j}(g) / (‖g_n^c‖ · ‖g_n^{s_j}‖)
    with l the length in tokens, σ = 6, and a term of 0 when either vector is zero (a sentence
    shorter than n). CIDEr-D is the mean of CIDEr-D_n over n = 1..4 (uniform weights 1/4).
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    cand_tokens = [tokenize_caption(c) for c in candidates]
    ref_tokens = [[tokenize_caption(r) for r in refs] for refs in references]
    cand_grams = [_all_ngrams(tokens) for tokens in cand_tokens]
    ref_grams = [[_all_ngrams(tokens) for tokens in refs] for refs in ref_tokens]

    document_frequency: Counter[NGram] = Counter()
    for refs in ref_grams:
        document_frequency.update({gram for counts in refs for per_n in counts for gram in per_n})
    log_corpus = math.log(len(candidates)) if candidates else 0.0

    def weights(counts: Counter[NGram]) -> tuple[dict[NGram, float], float]:
        vector = {g: tf * (log_corpus - math.log(max(1.0, document_frequency[g]))) for g, tf in counts.items()}
        return vector, math.sqrt(sum(v * v for v in vector.values()))

    scores = []
    for c_tokens, c_grams, r_tokens, r_grams in zip(cand_tokens, cand_grams, ref_tokens, ref_grams):
        c_vectors = [weights(counts) for counts in c_grams]
        total = 0.0
        for tokens, grams in zip(r_tokens, r_grams):
            penalty = math.exp(-((len(c_tokens) - len(tokens)) ** 2) / (2 * sigma ** 2))
            for (c_vec, c_norm), counts in zip(c_vectors, grams):
                r_vec, r_norm = weights(counts)
                if c_norm == 0 or r_norm == 0:
                    continue
                clipped = sum(min(v, r_vec.get(g, 0.0)) * r_vec.get(g, 0.0) for g, v in c_vec.items())
                total += penalty * clipped / (c_norm * r_norm)
        scores.append(10.0 * total / (MAX_N * len(r_tokens)) if r_tokens else 0.0)
    return scores


def _closest_length(length: int, ref_lengths: Sequence[int]) -> int:
    # The closest reference length; on a tie the shorter one.
    return min(ref_lengths, key=lambda r: (abs(r - length), r))


def corpus_bleu4(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (Papineni, Roukos, Ward and Zhu, "BLEU: a Method for Automatic Evaluation of
    Machine Translation", ACL 2002), on the 0..1 scale.

        BLEU = BP · exp(Σ_{n=1..4} ¼ · log p_n)
    where p_n = Σ clipped n-gram matches / Σ candidate n-grams, summed over the whole corpus (a
    candidate n-gram count is clipped to its largest count in any one reference of the sample), and
    BP = 1 if c > r else exp(1 − r/c), c the total candidate length and r the sum over samples of the
    reference length closest to the candidate's (the shorter on a tie). Without smoothing, BLEU is 0
    when any p_n is 0 or the candidates are empty.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    matches = [0] * MAX_N
    totals = [0] * MAX_N
    cand_length = ref_length = 0
    for candidate, refs in zip(candidates, references):
        tokens = tokenize_caption(candidate)
        ref_tokens = [tokenize_caption(r) for r in refs]
        cand_length += len(tokens)
        ref_length += _closest_length(len(tokens), [len(r) for r in ref_tokens])
        for n in range(1, MAX_N + 1):
            counts = ngram_counts(tokens, n)
            max_ref: Counter[NGram] = Counter()
            for r in ref_tokens:
                max_ref |= ngram_counts(r, n)
            matches[n - 1] += sum(min(count, max_ref[g]) for g, count in counts.items())
            totals[n - 1] += sum(counts.values())
    if cand_length == 0 or any(m == 0 for m in matches):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / MAX_N
    brevity = 1.0 if cand_length > ref_length else math.exp(1 - ref_length / cand_length)
    return brevity * math.exp(log_precision)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, references: Sequence[str], beta: float = ROUGE_BETA) -> float:
    """Sentence ROUGE-L F-measure (Lin, "ROUGE: A Package for Automatic Evaluation of Summaries",
    ACL Workshop 2004, section 3.1), the best over the references, on the 0..1 scale.

        R = LCS / len(reference), P = LCS / len(candidate), F = (1 + β²)·R·P / (R + β²·P), β = 1.2
    and F = 0 when the LCS is empty.
    """
    tokens = tokenize_caption(candidate)
    best = 0.0
    for reference in references:
        ref_tokens = tokenize_caption(reference)
        common = lcs_length(tokens, ref_tokens)
        if common == 0:
            continue
        recall, precision = common / len(ref_tokens), common / len(tokens)
        best = max(best, (1 + beta ** 2) * recall * precision / (recall + beta ** 2 * precision))
    return best
