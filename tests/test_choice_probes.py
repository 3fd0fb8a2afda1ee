"""The probes of the choice task: deterministic, answers true of the image, the skill each removes."""

from __future__ import annotations

import numpy as np
import pytest

from mcit.data.builtin.probes import PROBE_TASKS
from mcit.data.builtin.streams import STREAMS, generate, materialize
from mcit.scoring.choice import choice_hit, parse_options

from test_builtin_data import choice_answer_of_scene

N = 60


@pytest.mark.parametrize("name", list(PROBE_TASKS))
def test_same_seed_same_data(name):
    first, again = generate(PROBE_TASKS[name], 1, "train", 5), generate(PROBE_TASKS[name], 1, "train", 5)
    assert [(s.instruction, s.answers) for s in first] == [(s.instruction, s.answers) for s in again]
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(first, again))


@pytest.mark.parametrize("name", list(PROBE_TASKS))
def test_the_key_letter_names_the_correct_option(name):
    for sample in generate(PROBE_TASKS[name], 0, "test", N):
        options = parse_options(sample.instruction)
        assert list(options.values()) == sample.facts["options"] and 3 <= len(options) <= 4
        assert options[sample.answers[0]] == sample.facts["correct"]
        assert choice_hit(sample.facts["correct"], sample.answers, sample.instruction) == 1.0
        assert sample.instruction.endswith("Answer with the option's letter.")


def test_letter_probe_asks_choice_questions_about_the_scene():
    for sample in generate(PROBE_TASKS["choice-letter"], 0, "test", N):
        assert choice_answer_of_scene(sample.instruction, sample.facts["objects"]) == sample.facts["correct"]


def test_copy_probe_names_its_option_in_the_question():
    for sample in generate(PROBE_TASKS["choice-copy"], 0, "test", N):
        assert sample.instruction.startswith(f"Question: Which option is the word {sample.facts['correct']}?\n")


def test_present_probe_draws_no_wrong_option():
    kinds = set()
    for sample in generate(PROBE_TASKS["choice-present"], 0, "test", N):
        objects, correct = sample.facts["objects"], sample.facts["correct"]
        assert choice_answer_of_scene(sample.instruction, objects) == correct
        seen = {o.shape for o in objects} | {o.color for o in objects} | {o.position for o in objects}
        assert [o for o in sample.facts["options"] if o in seen] == [correct]
        kinds.add(sample.instruction.split()[1])
    assert kinds == {"Which", "What", "Where"}


def test_probe_stream_is_written_like_any_stream(tmp_path):
    path = materialize("probe-choice", seed=0, train_size=4, test_size=2, root=tmp_path)
    assert [line.split(": ")[1] for line in path.read_text().splitlines() if line.startswith("- name: ")] \
        == list(STREAMS["probe-choice"].order)
