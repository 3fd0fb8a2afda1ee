"""The built-in stream's generators: deterministic, and every answer true of its image."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from mcit.data.builtin import glyphs
from mcit.data.builtin.pretraining import SCENE_CAPTIONS, _relate_two
from mcit.data.builtin.scene import BACKGROUND, COLORS, IMAGE_SIZE, SHAPES, format_box, random_scene, render_scene
from mcit.data.builtin.streams import STREAMS, TASKS, generate, materialize
from mcit.scoring import box_iou, parse_box

N = 60


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def _color_in_box(image, box, color) -> float:
    """Share of the box's pixels that have exactly the colour (no blur)."""
    x1, y1, x2, y2 = box
    region = _pixels(image)[y1:y2 + 1, x1:x2 + 1]
    return float(np.all(region == np.array(COLORS[color]), axis=-1).mean())


@pytest.mark.parametrize("name", list(TASKS))
def test_same_seed_same_data_other_seed_other_data(name):
    first = generate(TASKS[name], 3, "train", 5)
    again = generate(TASKS[name], 3, "train", 5)
    other = generate(TASKS[name], 4, "train", 5)
    assert [s.instruction for s in first] == [s.instruction for s in again]
    assert [s.answers for s in first] == [s.answers for s in again]
    assert all(np.array_equal(_pixels(a.image), _pixels(b.image)) for a, b in zip(first, again))
    assert any(not np.array_equal(_pixels(a.image), _pixels(b.image)) for a, b in zip(first, other))


def test_train_and_test_splits_differ():
    train = generate(TASKS["vqa"], 0, "train", 20)
    test = generate(TASKS["vqa"], 0, "test", 20)
    assert [s.instruction for s in train] != [s.instruction for s in test]


@pytest.mark.parametrize("name", ["vqa", "count", "ground", "choice", "caption"])
def test_every_object_named_in_the_facts_is_drawn(name):
    for sample in generate(TASKS[name], 0, "test", N):
        for obj in sample.facts["objects"]:
            assert _color_in_box(sample.image, obj.box, obj.color) > 0.2, (name, obj)
        # and nothing else is drawn: pixels outside every box are background
        mask = np.ones((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        for obj in sample.facts["objects"]:
            x1, y1, x2, y2 = obj.box
            mask[y1:y2 + 1, x1:x2 + 1] = False
        assert np.all(_pixels(sample.image)[mask] == np.array(BACKGROUND))


def test_count_answers_match_the_drawn_objects():
    for sample in generate(TASKS["count"], 0, "test", N):
        objects = sample.facts["objects"]
        question = sample.instruction
        if question.startswith("How many objects are there"):
            expected = len(objects)
        elif question.startswith("Subtract all") and "objects. How many" in question:
            color = question.split()[2]
            expected = sum(o.color != color for o in objects)
        elif question.startswith("Subtract all"):
            plural = question.split()[2].rstrip(".")
            expected = sum(o.shape + "s" != plural for o in objects)
        else:
            plural = question.split()[2]
            expected = sum(o.shape + "s" == plural for o in objects)
        assert sample.answers == (str(expected),), question


def test_grounding_box_is_the_named_objects_box():
    for sample in generate(TASKS["ground"], 0, "test", N):
        target = sample.facts["target"]
        box = parse_box(sample.answers[0])
        assert box == tuple(float(v) for v in target.box)
        assert _color_in_box(sample.image, target.box, target.color) > 0.3
        # the name in the instruction picks out exactly this object
        named = [o for o in sample.facts["objects"]
                 if o.name in sample.instruction or f"the {o.shape}." in sample.instruction
                 or f"the {o.shape}. " in sample.instruction or f"{o.color} object" in sample.instruction]
        assert named == [target]


def test_a_box_from_the_cell_alone_overlaps_enough():
    """Boxes jitter by at most a pixel, so knowing the cell suffices for IoU >= 0.5."""
    from mcit.data.builtin.scene import CELL

    rng = random.Random(0)
    for _ in range(200):
        for obj in random_scene(rng, 4):
            cell_box = (obj.col * CELL + 2, obj.row * CELL + 2, obj.col * CELL + 13, obj.row * CELL + 13)
            assert box_iou(cell_box, obj.box) >= 0.5


def test_vqa_and_choice_answers_are_true_of_the_scene():
    for sample in generate(TASKS["vqa"], 0, "test", N):
        objects, question, answer = sample.facts["objects"], sample.instruction, sample.answers[0]
        if question.startswith("What color is the "):
            shape = question.removeprefix("What color is the ").rstrip("?")
            assert [o.color for o in objects if o.shape == shape] == [answer]
        elif question.startswith("What shape is the "):
            color = question.split()[4]
            assert [o.shape for o in objects if o.color == color] == [answer]
        assert len(sample.answers) == 10
    for sample in generate(TASKS["choice"], 0, "test", N):
        options, answer = sample.facts["options"], sample.answers[0]
        assert answer == sample.facts["correct"] and options.count(answer) == 1
        assert f"({'ABCD'[options.index(answer)]}) {answer}" in sample.instruction
        assert sample.instruction.endswith("Answer with the option's text.")
        assert choice_answer_of_scene(sample.instruction, sample.facts["objects"]) == answer


def choice_answer_of_scene(instruction: str, objects) -> str:
    """The answer to a `choice` question worked out from the drawn objects."""
    asked = instruction.split("\n", 1)[0].removeprefix("Question: ")
    if asked.startswith("Which shape is "):
        return next(o.shape for o in objects if o.color == asked.split()[-1].rstrip("?"))
    if asked.startswith("What is the color of the "):
        return next(o.color for o in objects if o.shape == asked.split()[-1].rstrip("?"))
    if asked.startswith("Where is the "):
        return next(o.position for o in objects if f"Where is the {o.name}?" == asked)
    assert asked == "How many objects are in the picture?"
    return str(len(objects))


def test_unanswerable_is_answered_exactly_when_the_shape_is_absent():
    answers = []
    for sample in generate(TASKS["unanswerable"], 0, "test", N):
        present = {o.shape for o in sample.facts["objects"]}
        asked = sample.facts["asked"]
        if asked in present:
            assert sample.answers[0] == next(o.color for o in sample.facts["objects"] if o.shape == asked)
        else:
            assert sample.answers[0] == "unanswerable"
        answers.append(sample.answers[0])
    assert 0.3 < answers.count("unanswerable") / len(answers) < 0.7


def test_reading_and_digits_answers():
    for sample in generate(TASKS["ocr"], 0, "test", 20):
        assert sample.answers == (sample.facts["word"],)
        assert len(sample.facts["word"]) == glyphs.WORD_LENGTH
        assert np.any(np.all(_pixels(sample.image) != np.array(BACKGROUND), axis=-1))
    labels = []
    for sample in generate(TASKS["digits"], 0, "test", 200):
        index = sample.facts["digit_index"]
        assert index % 2 == 0  # benchmark half only
        assert sample.answers == (str(glyphs.digit_label(index)),)
        labels.append(sample.answers[0])
    assert len(set(labels)) == 10


def test_caption_references_name_every_object_in_paraphrase():
    from mcit.data.builtin.tasks.caption import COLOR_WORDS, SHAPE_WORDS

    for sample in generate(TASKS["caption"], 0, "test", N):
        assert len(sample.answers) == 5 and len(set(sample.answers)) > 1
        for reference in sample.answers:
            for obj in sample.facts["objects"]:
                assert any(f"{c} {s}" in reference for c in COLOR_WORDS[obj.color] for s in SHAPE_WORDS[obj.shape])
            # no colour that is not in the picture is mentioned
            absent = {c for c in COLOR_WORDS if c not in {o.color for o in sample.facts["objects"]}}
            assert not any(f"a {word} " in reference for c in absent for word in COLOR_WORDS[c])


def _question_type_of(task: str, sample) -> str:
    """The question type a sample's instruction and facts say it is, worked out apart from the generator."""
    question, facts = sample.instruction, sample.facts
    if task == "count":
        if question.startswith("How many objects"):
            return "all objects"
        if question.startswith("How many"):
            return "objects of a shape"
        return "left after a colour" if "objects. How many" in question else "left after a shape"
    if task == "vqa":
        for start, kind in (("What color is the", "colour of a shape"), ("What shape is the", "shape of a colour"),
                            ("Which color is the shape in", "colour at a position"), ("Is the", "relation yes/no")):
            if question.startswith(start):
                return kind
    if task == "ground":
        target = facts["target"]
        return ("by colour and shape" if target.name in question else "by shape" if target.shape in question
                else "by colour")
    if task == "choice":
        asked = question.split("\n", 1)[0]
        return ("shape of a colour" if "Which shape is" in asked else "colour of a shape" if "color of" in asked
                else "position of an object" if "Where is" in asked else "number of objects")
    if task == "unanswerable":
        return "shape absent" if sample.answers[0] == "unanswerable" else "shape present"
    return ""


@pytest.mark.parametrize("name", list(TASKS))
def test_question_types_say_what_is_asked(name):
    samples = generate(TASKS[name], 0, "test", N)
    kinds = {sample.question_type for sample in samples}
    for sample in samples:
        assert sample.question_type == _question_type_of(name, sample), sample.instruction
    assert kinds == {""} if name in ("ocr", "digits", "caption") else len(kinds) >= 2


def test_question_types_are_written_with_the_records_and_read_back(tmp_path):
    from mcit.data.public import load_benchmark_path

    benchmark = load_benchmark_path(materialize("builtin", seed=0, train_size=4, test_size=12, root=tmp_path))
    count = benchmark.task("count")
    expected = [s.question_type for s in generate(TASKS["count"], 0, "test", 12)]
    assert [r.question_type for r in count.test] == expected
    assert all(r.question_type is None for r in benchmark.task("ocr").test)


def test_rendered_scene_is_the_image_size():
    assert render_scene([]).size == (IMAGE_SIZE, IMAGE_SIZE)
    assert len(SHAPES) == 4


def test_materialized_stream_loads_through_the_public_loader(tmp_path):
    from mcit.data.public import load_benchmark_path

    path = materialize("builtin", seed=0, train_size=6, test_size=4, root=tmp_path)
    again = materialize("builtin", seed=0, train_size=6, test_size=4, root=tmp_path)
    assert again == path
    benchmark = load_benchmark_path(path)
    assert benchmark.task_names == list(STREAMS["builtin"].order)
    assert len(benchmark.tasks) == 8
    for task in benchmark.tasks:
        assert len(task.train) == 6 and len(task.test) == 4
        assert task.metric == TASKS[task.name].metric
        assert all(r.image.exists() for r in task.test)
    vqa = benchmark.task("vqa")
    assert len(vqa.test[0].answers) == 10


def test_pretraining_captions_name_every_object_in_each_wording():
    """Every wording of a scene's dense caption states each drawn object's shape, colour and place
    (a position word or its exact box); the shape- and colour-ordered ones list objects in that order."""
    rng = random.Random(3)
    for _ in range(50):
        objects = random_scene(rng, rng.randint(1, 6), unique=False)
        for style, caption in SCENE_CAPTIONS.items():
            text = caption(objects)
            assert text.count(" at ") == len(objects)
            for obj in objects:
                stated = {"shapes": f"the {obj.shape} is {obj.color} at the {obj.position}",
                          "colors": f"the {obj.color} object is a {obj.shape} at the {obj.position}",
                          "boxes": f"{obj.name} at {format_box(obj.box)}"}.get(style, f"{obj.name} at the {obj.position}")
                assert stated in text
            if style == "shapes":
                named = re.findall(r"the (\w+) is", text)
                assert named == sorted(named, key=SHAPES.index)
            if style == "colors":
                named = re.findall(r"the (\w+) object", text)
                assert named == sorted(named, key=list(COLORS).index)


def test_pretraining_relation_sentences_are_true_of_the_scene():
    """The instruction mix's sentence about two objects states exactly the relations that hold."""
    rng = random.Random(5)
    for _ in range(100):
        sample = _relate_two(rng)
        by_name = {o.name: o for o in sample.facts["objects"]}
        first, second = sample.instruction.removeprefix("Tell me about the ").removesuffix(".").split(" and the ")
        a, b = by_name[first], by_name[second]
        stated = sample.answers[0].removeprefix(f"The {first} is ").removesuffix(f" the {second}.").split(" and ")
        expected = [w for w, holds in (("above", a.row < b.row), ("below", a.row > b.row),
                                       ("left of", a.col < b.col), ("right of", a.col > b.col)) if holds]
        assert stated == expected and stated
