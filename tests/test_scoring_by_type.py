"""Scores split by question type: each type scored by the task's metric on its own records."""

from __future__ import annotations

import pytest

from mcit.scoring import score_task, scores_by_type
from mcit.scoring.by_type import UNTYPED


def test_each_type_is_the_mean_over_its_own_records_in_order_of_first_appearance():
    predictions = ["2", "3", "red", "1", "blue", "0"]
    references = [("2",), ("4",), ("red",), ("1",), ("green",), ("0",)]
    types = ["how many", "how many", "what color", "how many", "what color", "subtract"]
    split = scores_by_type("exact_match", predictions, references, [""] * 6, types)
    assert list(split) == ["how many", "what color", "subtract"]
    assert split["how many"] == {"n": 3, "score": pytest.approx(200 / 3)}
    assert split["what color"] == {"n": 2, "score": pytest.approx(50.0)}
    assert split["subtract"] == {"n": 1, "score": pytest.approx(100.0)}
    overall = score_task("exact_match", predictions, references).value
    assert overall == pytest.approx(sum(v["n"] * v["score"] for v in split.values()) / 6)


def test_a_task_without_types_has_nothing_to_split_and_untyped_records_keep_their_own_row():
    assert scores_by_type("exact_match", ["a"], [("a",)], [""], [None]) == {}
    split = scores_by_type("vqa_accuracy", ["yes", "no"], [("yes",) * 10, ("yes",) * 10], ["", ""], ["yes/no", None])
    assert split == {"yes/no": {"n": 1, "score": pytest.approx(100.0)}, UNTYPED: {"n": 1, "score": pytest.approx(0.0)}}


def test_multiple_choice_reads_each_types_options_from_its_instructions():
    instructions = ["Question: q?\nOptions: (A) red (B) blue", "Question: q?\nOptions: (A) one (B) two"]
    split = scores_by_type("multiple_choice", ["blue", "A"], [("B",), ("A",)], instructions, ["colour", "number"])
    assert split == {"colour": {"n": 1, "score": pytest.approx(100.0)}, "number": {"n": 1, "score": pytest.approx(100.0)}}


def test_captions_of_a_type_are_scored_as_a_corpus_of_their_own():
    predictions = ["a red circle", "a blue square", "two green triangles", "a white diamond"]
    references = [("a red circle", "red circle"), ("a blue square",), ("two green triangles",), ("one white diamond",)]
    types = ["one", "one", "many", "one"]
    split = scores_by_type("cider", predictions, references, [""] * 4, types)
    ones = [0, 1, 3]
    alone = score_task("cider", [predictions[i] for i in ones], [references[i] for i in ones]).value
    assert split["one"] == {"n": 3, "score": pytest.approx(alone)}
    assert split["many"]["n"] == 1


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="2 question types for 1 predictions"):
        scores_by_type("exact_match", ["a"], [("a",)], [""], ["x", "y"])
