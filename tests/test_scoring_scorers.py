"""Short-answer scorers: normalisation, exact match, VQA accuracy, multiple choice, ANLS, grounding."""

from __future__ import annotations

import pytest

from mcit.scoring import METRIC_NAMES, TaskScore, box_iou, parse_box, score_task
from mcit.scoring.choice import parse_options, read_letter
from mcit.scoring.normalize import normalize_answer


# --- normalisation ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("  The Dog!  ", "dog"),
    ("Seven", "7"),
    ("twenty apples", "20 apples"),
    ("an apple, a pear", "apple pear"),
    ("3.5 meters.", "3.5 meters"),
    ("1,000", "1000"),
    ("it's   blue\t", "its blue"),
    ("there", "there"),          # "the" only as a whole word
    ("", ""),
])
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


# --- score_task contract ---------------------------------------------------------------------

def test_metric_names() -> None:
    assert METRIC_NAMES == ("exact_match", "vqa_accuracy", "multiple_choice", "cider", "anls", "grounding")


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_empty_task_scores_zero(metric: str) -> None:
    score = score_task(metric, [], [])
    assert isinstance(score, TaskScore)
    assert score.value == 0.0
    assert score.per_sample == []
    assert score.metric == metric


def test_unknown_metric_and_length_mismatch_raise() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        score_task("bleu", ["a"], [("a",)])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        score_task("exact_match", ["a", "b"], [("a",)])
    with pytest.raises(ValueError, match="instructions"):
        score_task("multiple_choice", ["A"], [("A",)], instructions=["x", "y"])
    with pytest.raises(ValueError, match="no reference"):
        score_task("exact_match", ["a"], [()])


# --- exact match -----------------------------------------------------------------------------

def test_exact_match_normalises_and_averages() -> None:
    predictions = ["The Cat.", "seven", "dog", "", "blue"]
    references = [("cat",), ("7",), ("puppy", "Dog!"), ("nothing",), ("red",)]
    score = score_task("exact_match", predictions, references)
    assert score.per_sample == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert score.value == pytest.approx(60.0)  # 3 of 5
    assert score.secondary == {}


def test_bare_string_reference_is_one_answer() -> None:
    # "cat" as a str must not be read as the references ("c", "a", "t").
    assert score_task("exact_match", ["c"], ["cat"]).value == 0.0
    assert score_task("exact_match", ["cat"], ["cat"]).value == 100.0


# --- VQA accuracy ----------------------------------------------------------------------------

def test_vqa_accuracy_with_ten_answers() -> None:
    ten_with_two = ("2", "two", "3", "3", "3", "3", "4", "4", "4", "5")
    ten_with_three = ("yes", "Yes", "yes.", "no", "no", "no", "no", "no", "no", "no")
    ten_with_none = ("no",) * 10
    score = score_task("vqa_accuracy", ["Two", "yes", "yes"], [ten_with_two, ten_with_three, ten_with_none])
    # 2 matches -> 2/3, 3 matches -> min(3/3, 1) = 1, 0 matches -> 0
    assert score.per_sample == pytest.approx([2 / 3, 1.0, 0.0])
    assert score.value == pytest.approx(100 * (2 / 3 + 1) / 3)


def test_vqa_accuracy_with_few_references() -> None:
    # Fewer than 3 references: min(matches / len(references), 1).
    score = score_task("vqa_accuracy", ["red", "red", "red"], [("red",), ("red", "blue"), ("Red", "red.")])
    assert score.per_sample == pytest.approx([1.0, 0.5, 1.0])


def test_vqa_accuracy_more_matches_than_needed_caps_at_one() -> None:
    assert score_task("vqa_accuracy", ["4"], [("four",) * 10]).per_sample == [1.0]


# --- multiple choice -------------------------------------------------------------------------

INLINE = ("Question: Which shape is red?\nOptions: (A) blue square (B) a red circle (C) green triangle\n"
          "Answer with the option's letter.")
LINES = "Which colour is the sky?\nA. red\nB. blue\nC: green\nD) yellow\nAnswer:"


def test_parse_options_inline_and_on_lines() -> None:
    assert parse_options(INLINE) == {"A": "blue square", "B": "a red circle", "C": "green triangle"}
    assert parse_options(LINES) == {"A": "red", "B": "blue", "C": "green", "D": "yellow"}
    assert parse_options("Options: A. yes B. no") == {"A": "yes", "B": "no"}
    assert parse_options("What is in the picture?") == {}


def test_parse_options_ignores_a_stray_marker_in_the_question() -> None:
    # "A." in the question starts a chain of length 1; the options chain A, B is longer.
    assert parse_options("Is grade A. good?\n(A) yes\n(B) no") == {"A": "yes", "B": "no"}


@pytest.mark.parametrize("prediction, letter", [
    ("B", "B"), ("(B)", "B"), ("B.", "B"), ("B)", "B"), ("b", "B"), ("a", "A"), ("(a)", "A"),
    ("B: a red circle", "B"), ("(C) green triangle", "C"), ("The answer is B", "B"),
    ("Answer: C", "C"), ("The answer is (a).", "A"),
    ("a red circle", None), ("the answer is a red circle", None), ("The options are", None), ("", None),
])
def test_read_letter(prediction: str, letter: str | None) -> None:
    assert read_letter(prediction) == letter


def test_multiple_choice_letter_forms() -> None:
    predictions = ["B", "(B)", "B.", "The answer is B", "Answer: B", "A", "C)"]
    score = score_task("multiple_choice", predictions, [("B",)] * 7, [INLINE] * 7)
    assert score.per_sample == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert score.value == pytest.approx(100 * 5 / 7)


def test_multiple_choice_key_forms() -> None:
    # The key may be "(B)", "B." or the option's text.
    score = score_task("multiple_choice", ["B", "B", "B", "A"], [("(B)",), ("B.",), ("a red circle",), ("red circle",)],
                       [INLINE] * 4)
    assert score.per_sample == [1.0, 1.0, 1.0, 0.0]


def test_multiple_choice_option_text_and_article_trap() -> None:
    # "a red circle" is option B's text; its leading "a" is an article, not option A.
    predictions = ["a red circle", "A Red Circle.", "blue square", "The answer is a red circle", "purple"]
    score = score_task("multiple_choice", predictions, [("B",)] * 5, [INLINE] * 5)
    assert score.per_sample == [1.0, 1.0, 0.0, 1.0, 0.0]


def test_multiple_choice_options_on_lines() -> None:
    score = score_task("multiple_choice", ["blue", "B", "D", "Red"], [("B",)] * 4, [LINES] * 4)
    assert score.per_sample == [1.0, 1.0, 0.0, 0.0]
    assert score.value == pytest.approx(50.0)


def test_multiple_choice_without_instructions_compares_letters() -> None:
    assert score_task("multiple_choice", ["(C)", "C"], [("C",), ("D",)]).per_sample == [1.0, 0.0]


# --- ANLS ------------------------------------------------------------------------------------

def test_anls_cases() -> None:
    predictions = ["Hello", "hellp", "cat", "", "", " MAIN STREET ", "abcd"]
    references = [("hello",), ("hello",), ("dog",), ("",), ("abc",), ("main street",), ("xyz", "abce")]
    score = score_task("anls", predictions, references)
    assert score.per_sample == pytest.approx([
        1.0,          # exact after lower-casing
        1 - 1 / 5,    # one substitution in 5 characters: NL = 0.2 < 0.5, similarity 0.8
        0.0,          # NL = 3/3 = 1 >= 0.5
        1.0,          # two empty strings
        0.0,          # NL = 3/3 against an empty prediction
        1.0,          # surrounding whitespace and case ignored
        1 - 1 / 4,    # best reference "abce": one substitution in 4, "xyz" gives 0
    ])


def test_anls_threshold_is_inclusive() -> None:
    # "ab" vs "cd": NL = 2/2 = 1 -> 0. "abcd" vs "abxy": NL = 2/4 = 0.5 -> set to 0 (NL >= 0.5).
    # "abcde" vs "abcxy": NL = 2/5 = 0.4 -> 0.6.
    score = score_task("anls", ["ab", "abcd", "abcde"], [("cd",), ("abxy",), ("abcxy",)])
    assert score.per_sample == pytest.approx([0.0, 0.0, 0.6])
    assert score.value == pytest.approx(20.0)


# --- grounding -------------------------------------------------------------------------------

def test_parse_box_formats() -> None:
    assert parse_box("[10, 20, 30, 40]") == (10.0, 20.0, 30.0, 40.0)
    assert parse_box("(1.5,2.25),(3,4)") == (1.5, 2.25, 3.0, 4.0)
    assert parse_box("box: 1 2 3 4 5") == (1.0, 2.0, 3.0, 4.0)
    assert parse_box("[-5, -2.5, 7, 8]") == (-5.0, -2.5, 7.0, 8.0)
    assert parse_box("x1=0 y1=0 x2=10 y2=10") == (0.0, 0.0, 10.0, 10.0)  # the 1/2 of x1 is no number
    assert parse_box("[10, 20, 30]") is None
    assert parse_box("somewhere on the left") is None


def test_box_iou_exact_values() -> None:
    # [0,0,10,10] vs [0,0,10,5]: intersection 50, union 100 + 50 - 50 = 100 -> 0.5
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 5)) == pytest.approx(0.5)
    # [0,0,10,10] vs [0,0,10,4]: intersection 40, union 100 -> 0.4
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 4)) == pytest.approx(0.4)
    # [0,0,2,2] vs [1,1,3,3]: intersection 1, union 4 + 4 - 1 = 7
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 1, 1), (5, 5, 6, 6)) == 0.0
    assert box_iou((1, 1, 1, 1), (1, 1, 1, 1)) == 0.0  # no union area


def test_grounding_scores() -> None:
    predictions = [
        "[0, 0, 10, 5]",        # IoU 0.5 -> correct
        "[0, 0, 10, 4]",        # IoU 0.4 -> wrong
        "the red circle",       # no box -> 0
        "[10, 0, 0, 10]",       # x2 < x1: degenerate -> 0
        "(0.0, 0.0, 10.0, 10.0)",
        "[20, 20, 30, 30]",     # misses the first reference, matches the second
    ]
    references = [("[0, 0, 10, 10]",)] * 5 + [("[0, 0, 10, 10]", "[21, 21, 30, 30]")]
    score = score_task("grounding", predictions, references)
    assert score.per_sample == [1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert score.value == pytest.approx(50.0)


def test_grounding_decimal_boxes() -> None:
    # [0.5,0.5,2.5,2.5] vs [0.5,0.5,2.5,1.5]: intersection 2×1 = 2, union 4 -> IoU 0.5 -> correct
    # [0.5,0.5,2.5,2.5] vs [0.5,0.5,2.5,1.25]: intersection 2×0.75 = 1.5, union 4 -> 0.375 -> wrong
    score = score_task("grounding", ["[0.5, 0.5, 2.5, 1.5]", "0.5 0.5 2.5 1.25"], [("[0.5,0.5,2.5,2.5]",)] * 2)
    assert score.per_sample == [1.0, 0.0]


def test_grounding_reference_without_box_raises() -> None:
    with pytest.raises(ValueError, match="holds no box"):
        score_task("grounding", ["[0, 0, 1, 1]"], [("left",)])
