"""The pre-training mixes of the two start models, kept apart from the benchmark's tasks.

He et al. (arXiv 2311.16206) found that a model instruction-tuned on a mix of tasks before the
stream (InstructBLIP) forgets less than one only caption-pretrained (BLIP-2). The built-in start
models mirror the two:

- `tiny-base` learns only dense captions of every kind of image the stream shows (scenes,
  words, digits), like BLIP-2's image-text pre-training;
- `tiny-instruct` continues from `tiny-base` on a mix of instruction tasks that are *not* the
  stream's tasks (existence yes/no, positions, spelling, digit parity, counting in words,
  lettered options about which objects appear), like InstructBLIP's held-in datasets.

The images come from other random streams than the benchmark's (and the odd half of the
handwritten digits), so no benchmark image is seen before the stream starts.
"""

from __future__ import annotations

import random

from mcit.data.builtin.glyphs import WORD_LENGTH, digit_label, digit_pool, random_word, render_digit, render_word
from mcit.data.builtin.scene import COLORS, SHAPES, Shape, random_scene, render_scene
from mcit.data.builtin.spec import Sample, TaskSpec

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")


def _dense_caption(objects: list[Shape]) -> str:
    return ", ".join(f"{o.name} at the {o.position}" for o in objects)


def any_image(rng: random.Random) -> tuple[object, str, dict]:
    """A scene, a word or a digit, with its dense caption."""
    kind = rng.choices(("scene", "word", "digit"), weights=(6, 2, 2))[0]
    if kind == "scene":
        n = rng.randint(1, 6)
        objects = random_scene(rng, n, unique=n <= len(SHAPES) and rng.random() < 0.5)
        return render_scene(objects), _dense_caption(objects), {"objects": objects}
    if kind == "word":
        word, color = random_word(rng, rng.randint(2, WORD_LENGTH)), rng.choice(list(COLORS))
        return render_word(word, color, rng), f"the word {word} written in {color}", {"word": word, "color": color}
    index = rng.choice(digit_pool("pretraining"))
    return render_digit(index), f"a handwritten digit {digit_label(index)}", {"digit_index": index}


def make_caption(rng: random.Random) -> Sample:
    """A dense caption of any kind of image: every object with its position, the word, the digit."""
    image, text, facts = any_image(rng)
    return Sample(image, "Describe the image.", (text,), facts)


def make_instruction(rng: random.Random) -> Sample:
    """One of the instruction-mix tasks, chosen uniformly."""
    kind = rng.randrange(7)
    if kind == 0:
        return make_caption(rng)
    if kind in (1, 2, 3, 4):
        objects = random_scene(rng, rng.randint(1, 4))
        image = render_scene(objects)
        target = rng.choice(objects)
        if kind == 1:
            shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
            present = any(o.shape == shape and o.color == color for o in objects)
            if rng.random() < 0.5:
                shape, color, present = target.shape, target.color, True
            return Sample(image, f"Is there a {color} {shape} in the image? Answer yes or no.",
                          ("yes" if present else "no",), {"objects": objects})
        if kind == 2:
            return Sample(image, f"In which part of the image is the {target.name}?",
                          (target.position,), {"objects": objects})
        if kind == 3:
            return Sample(image, "Count the objects and answer with a word.",
                          (NUMBER_WORDS[len(objects)],), {"objects": objects})
        letters = "ABCD"
        absent = [f"{c} {s}" for c in COLORS for s in SHAPES if all(o.name != f"{c} {s}" for o in objects)]
        options = rng.sample(absent, 3) + [target.name]
        rng.shuffle(options)
        listed = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(options))
        return Sample(image, f"Which object appears in the image?\n{listed}\nReply with A, B, C or D.",
                      (letters[options.index(target.name)],), {"objects": objects, "options": options})
    if kind == 5:
        word = random_word(rng, rng.randint(2, WORD_LENGTH))
        image = render_word(word, rng.choice(list(COLORS)), rng)
        return Sample(image, "Spell the word in the image letter by letter.", (" ".join(word),), {"word": word})
    index = rng.choice(digit_pool("pretraining"))
    label = digit_label(index)
    return Sample(render_digit(index), "Is this digit even or odd?", ("even" if label % 2 == 0 else "odd",),
                  {"digit_index": index})


PRETRAINING_TASKS: dict[str, TaskSpec] = {
    "pretrain-caption": TaskSpec(
        name="pretrain-caption", metric="cider", mirrors="image-text pre-training (BLIP-2)",
        description="dense captions of scenes, words and digits", chance="-", max_new_tokens=40,
        make=make_caption),
    "pretrain-instruct": TaskSpec(
        name="pretrain-instruct", metric="exact_match", mirrors="joint instruction tuning (InstructBLIP)",
        description="captions, existence, positions, counting in words, spelling, digit parity, lettered options",
        chance="-", max_new_tokens=40, make=make_instruction),
}
