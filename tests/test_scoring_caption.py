"""CIDEr-D, BLEU-4 and ROUGE-L against hand-computed values."""

from __future__ import annotations

import math

import pytest

from mcit.scoring import score_task
from mcit.scoring.caption import cider_d, corpus_bleu4, lcs_length, rouge_l, tokenize_caption

L = math.log(2)  # log N for the two-sample corpora below
PENALTY_1 = math.exp(-1 / 72)  # Gaussian length penalty for a length difference of 1: exp(-1² / (2·6²))


def test_tokenize_caption() -> None:
    tokens = tokenize_caption("A dog's ball, on 3.5 m-long grass.")
    assert tokens == ["a", "dog", "s", "ball", "on", "3.5", "m", "long", "grass"]


# --- CIDEr-D ---------------------------------------------------------------------------------

def test_cider_identical_captions_with_unique_ngrams() -> None:
    # Three samples, candidate = single reference, no n-gram shared between samples: every df is 1,
    # so every weight is tf · (log 3 − log 1) and the candidate vector equals the reference vector.
    # For each n = 1..4 the term is Σ v·v / (‖v‖·‖v‖) = 1, the length penalty is exp(0) = 1, so
    # CIDEr-D_n = 10 · 1 and CIDEr-D = mean over n = 10 per sample; the task value is 100 · 10.
    captions = ["red circle left of blue square", "green triangle above yellow star", "one big purple hexagon here"]
    per_sample = cider_d(captions, [(c,) for c in captions])
    assert per_sample == pytest.approx([10.0, 10.0, 10.0])
    assert score_task("cider", captions, [(c,) for c in captions]).value == pytest.approx(1000.0)


def test_cider_disjoint_candidate_scores_zero() -> None:
    per_sample = cider_d(["zebra giraffe lion tiger", "red circle left side"],
                         [("red circle left side",), ("blue square top corner",)])
    assert per_sample == [0.0, 0.0]


def test_cider_single_sample_corpus_is_zero() -> None:
    # N = 1: every idf is log 1 − log 1 = 0, so every vector is zero.
    assert cider_d(["a red circle"], [("a red circle",)]) == [0.0]


def test_cider_hand_computed_idf_and_length_penalty() -> None:
    # Sample 1: candidate "x y w", reference "x y".  Sample 2: candidate "x z", reference "x z".
    # N = 2. df: x = 2 (both samples), y = z = "x y" = "x z" = 1; w and "y w" occur in no reference
    # (df 0 -> max(1, 0) = 1). Weights, with L = log 2:
    #   x: 1·(L − log 2) = 0;   y, z, w, "x y", "x z", "y w", "x y w": 1·(L − log 1) = L.
    # Sample 1 (lengths 3 and 2, penalty exp(−1/72)):
    #   n=1: c = {x:0, y:L, w:L}, ‖c‖ = √2·L; r = {x:0, y:L}, ‖r‖ = L;
    #        Σ min(c, r)·r = min(L, L)·L = L²  ->  L² / (√2·L·L) = 1/√2
    #   n=2: c = {"x y":L, "y w":L}, ‖c‖ = √2·L; r = {"x y":L}  ->  1/√2
    #   n=3: the reference has no trigram -> 0;   n=4: the candidate has none -> 0
    #   CIDEr-D = 10 · exp(−1/72) · (1/√2 + 1/√2 + 0 + 0) / 4 = 2.5·√2·exp(−1/72) ≈ 3.5355·0.98620 ≈ 3.4868
    # Sample 2: n=1: c = r = {x:0, z:L} -> 1; n=2: 1; n=3, n=4: 0 -> 10 · 2/4 = 5
    per_sample = cider_d(["x y w", "x z"], [("x y",), ("x z",)])
    sample_1 = 2.5 * math.sqrt(2) * PENALTY_1
    assert per_sample == pytest.approx([sample_1, 5.0])
    assert sample_1 == pytest.approx(3.4868, abs=1e-4)
    task_value = score_task("cider", ["x y w", "x z"], [("x y",), ("x z",)]).value
    assert task_value == pytest.approx(100 * (sample_1 + 5) / 2)


def test_cider_clips_repeated_ngrams() -> None:
    # Sample 1: candidate "y y", reference "y".  Sample 2: "z" / "z".  N = 2, every df 1, weight L.
    # Sample 1, n=1: c = {y: 2L}, ‖c‖ = 2L; r = {y: L}, ‖r‖ = L;
    #   clipped: min(2L, L)·L = L²  ->  L² / (2L·L) = 1/2   (without clipping: 2L·L / 2L² = 1)
    #   n=2: the reference has no bigram -> 0; penalty exp(−1/72)
    #   CIDEr-D = 10 · exp(−1/72) · (1/2) / 4 = 1.25·exp(−1/72)
    # Sample 2: n=1 gives 1, the rest 0 -> 10 · 1/4 = 2.5
    assert cider_d(["y y", "z"], [("y",), ("z",)]) == pytest.approx([1.25 * PENALTY_1, 2.5])


def test_cider_averages_over_references() -> None:
    # Sample 1: candidate "p q", references "p q" and "r s"; sample 2: "t u" / "t u". Every df is 1.
    # Sample 1: against "p q" n=1 and n=2 give 1; against "r s" everything is 0.
    #   CIDEr-D = 10 · ((1 + 0) + (1 + 0)) / (4 · 2 references) = 2.5
    # Sample 2: 10 · (1 + 1) / 4 = 5.   Task value: 100 · (2.5 + 5) / 2 = 375
    assert cider_d(["p q", "t u"], [("p q", "r s"), ("t u",)]) == pytest.approx([2.5, 5.0])
    assert score_task("cider", ["p q", "t u"], [("p q", "r s"), ("t u",)]).value == pytest.approx(375.0)


def test_cider_identical_beats_partial() -> None:
    refs = [("a red circle and a blue square",), ("a green triangle",), ("a yellow star on the left",)]
    exact = cider_d([r[0] for r in refs], refs)
    partial = cider_d(["a red circle", "a green triangle", "a star"], refs)
    assert exact[0] > partial[0] > 0
    assert exact[2] > partial[2]


# --- BLEU-4 ----------------------------------------------------------------------------------

def test_bleu4_hand_computed() -> None:
    # candidate "the cat sat on the mat", reference "the cat sat on a mat" (both 6 tokens, BP = 1)
    #   p1: the (min(2,1)=1) + cat + sat + on + mat = 5 / 6
    #   p2: "the cat", "cat sat", "sat on" match of 5 bigrams -> 3/5
    #   p3: "the cat sat", "cat sat on" of 4 -> 2/4
    #   p4: "the cat sat on" of 3 -> 1/3
    #   BLEU = (5/6 · 3/5 · 2/4 · 1/3)^(1/4) = (1/12)^(1/4) ≈ 0.5373
    assert corpus_bleu4(["the cat sat on the mat"], [("the cat sat on a mat",)]) == pytest.approx((1 / 12) ** 0.25)


def test_bleu4_brevity_penalty() -> None:
    # candidate 4 tokens, all n-grams match (p_n = 1); reference 6 tokens: BP = exp(1 − 6/4) = exp(−0.5)
    assert corpus_bleu4(["the cat sat on"], [("the cat sat on the mat",)]) == pytest.approx(math.exp(-0.5))


def test_bleu4_closest_reference_length() -> None:
    # candidate length 4; references of length 6 and 3: the closest is 3 < 4, so BP = 1
    assert corpus_bleu4(["the cat sat on"], [("the cat sat on the mat", "the cat sat")]) == pytest.approx(1.0)
    # references of length 5 and 3 are equally close to 4: the shorter (3) is used, BP = 1
    assert corpus_bleu4(["the cat sat on"], [("the cat sat on it", "the cat sat")]) == pytest.approx(1.0)
    # references of length 5 and 7: 5 is closest, BP = exp(1 − 5/4)
    assert corpus_bleu4(["the cat sat on"], [("the cat sat on it", "the cat sat on the red mat")]) == pytest.approx(
        math.exp(-0.25))


def test_bleu4_sums_counts_over_the_corpus() -> None:
    # Sample 1 "a b c d" = reference: 4/4, 3/3, 2/2, 1/1 matches.
    # Sample 2 "w x y z" vs "w x y q": unigrams 3/4, bigrams 2/3, trigrams 1/2, 4-grams 0/1.
    # Corpus: p1 = 7/8, p2 = 5/6, p3 = 3/4, p4 = 1/2; lengths 8 = 8 so BP = 1.
    expected = (7 / 8 * 5 / 6 * 3 / 4 * 1 / 2) ** 0.25
    assert corpus_bleu4(["a b c d", "w x y z"], [("a b c d",), ("w x y q",)]) == pytest.approx(expected)


def test_bleu4_zero_without_a_matching_4gram() -> None:
    assert corpus_bleu4(["a red circle"], [("a red circle",)]) == 0.0  # no 4-gram at all
    assert corpus_bleu4([""], [("a red circle",)]) == 0.0


# --- ROUGE-L ---------------------------------------------------------------------------------

def test_lcs_length() -> None:
    assert lcs_length("a b c d".split(), "a c b d".split()) == 3
    assert lcs_length([], ["a"]) == 0


def test_rouge_l_hand_computed() -> None:
    # "the cat sat on the mat" vs "the cat was on the mat": LCS = "the cat on the mat" = 5,
    # R = P = 5/6, F = (1 + β²)·R·P / (R + β²·P) = 5/6
    assert rouge_l("the cat sat on the mat", ["the cat was on the mat"]) == pytest.approx(5 / 6)
    # "a b c" vs "a x b y c z": LCS = 3, P = 3/3 = 1, R = 3/6 = 0.5, β² = 1.44
    #   F = 2.44 · 0.5 · 1 / (0.5 + 1.44 · 1) = 1.22 / 1.94 ≈ 0.62887
    assert rouge_l("a b c", ["a x b y c z"]) == pytest.approx(1.22 / 1.94)
    # best over references: "a b" gives LCS 2, R = 2/2 = 1, P = 2/3,
    #   F = 2.44 · 1 · (2/3) / (1 + 1.44 · 2/3) ≈ 0.830, more than 0.629 from "a x b y c z"
    f_ab = 2.44 * 1 * (2 / 3) / (1 + 1.44 * 2 / 3)
    assert rouge_l("a b c", ["q r", "a b", "a x b y c z"]) == pytest.approx(f_ab)
    assert rouge_l("a b c", ["x y"]) == 0.0


def test_caption_task_secondary_scores() -> None:
    predictions = ["the cat sat on the mat", "a b c"]
    references = [("the cat sat on a mat",), ("a x b y c z",)]
    score = score_task("cider", predictions, references)
    assert set(score.secondary) == {"bleu4", "rouge_l"}
    # ROUGE-L: sample 1 "the cat sat on the mat" vs "the cat sat on a mat": LCS 5, R = P = 5/6;
    # sample 2: 1.22/1.94 (above). Mean x100.
    assert score.secondary["rouge_l"] == pytest.approx(100 * (5 / 6 + 1.22 / 1.94) / 2)
    # BLEU-4 over the corpus: p1 = (5 + 3)/(6 + 3), p2 = (3 + 0)/(5 + 2), p3 = (2 + 0)/(4 + 1),
    # p4 = (1 + 0)/(3 + 0); c = 9, r = 6 + 6 = 12 -> BP = exp(1 − 12/9)
    expected_bleu = math.exp(1 - 12 / 9) * (8 / 9 * 3 / 7 * 2 / 5 * 1 / 3) ** 0.25
    assert score.secondary["bleu4"] == pytest.approx(100 * expected_bleu)
    assert len(score.per_sample) == 2
    assert score.value == pytest.approx(100 * sum(score.per_sample) / 2)
