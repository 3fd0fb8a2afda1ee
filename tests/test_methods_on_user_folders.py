"""Every registered method runs on a user's benchmark folder laid out like CoIN: one folder per task
with LLaVA-conversation `train.json` and `test.json` and PNG images, read from disk, with the
known task names' standard metrics. The built-in matrix (test_methods_matrix.py) checks each
method's invariants; this checks that no method depends on the built-in stream's own reader.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from mcit.data.builtin.scene import COLORS, random_scene, render_scene
from mcit.methods.registry import available
from mcit.run.cli import main
from method_options import method_overrides

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = list(available())
SETTINGS = ["train.max_steps=2", "train.batch_size=4", "eval.batch_size=8", "train.log_every=1"]


def _conversation(rid: str, image: str, question: str, answer: str) -> dict:
    return {"id": rid, "image": image, "conversations": [
        {"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]}


def _write_task(folder: Path, name: str, rng: random.Random, make) -> None:
    """A task folder: 12 training and 4 test records, each with its own scene image."""
    (folder / name / "images").mkdir(parents=True)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for i in range(16):
        objects = random_scene(rng, rng.randint(1, 3))
        image = f"images/{i}.png"
        render_scene(objects).save(folder / name / image)
        question, answer = make(objects, rng)
        splits["train" if i < 12 else "test"].append(_conversation(f"{name}-{i}", image, question, answer))
    for split, records in splits.items():
        (folder / name / f"{split}.json").write_text(json.dumps(records))


def _colour_question(objects, rng):
    target = rng.choice(objects)
    return f"What color is the {target.shape}?", target.color


def _choice_question(objects, rng):
    target = rng.choice(objects)
    options = rng.sample([c for c in COLORS if c != target.color], 2) + [target.color]
    rng.shuffle(options)
    listed = " ".join(f"({'ABC'[i]}) {o}" for i, o in enumerate(options))
    return f"What is the color of the {target.shape}?\nOptions: {listed}", "ABC"[options.index(target.color)]


@pytest.fixture(scope="module")
def coin_folder(tmp_path_factory) -> Path:
    """Two tasks named like CoIN's, so each gets its standard metric."""
    folder = tmp_path_factory.mktemp("coin")
    rng = random.Random(0)
    _write_task(folder, "GQA", rng, _colour_question)
    _write_task(folder, "ScienceQA", rng, _choice_question)
    return folder


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_on_a_coin_layout_folder(name, coin_folder, tmp_path):
    output = tmp_path / name
    code = main(["run", "--model", "tiny-random", "--benchmark", str(coin_folder), "--order", "GQA,ScienceQA",
                 "--method", name, "--output", str(output), "--quiet", *SETTINGS, *method_overrides(name)])
    assert code == 0
    results = json.loads((output / "results.json").read_text())
    assert results["tasks"] == ["GQA", "ScienceQA"]
    assert [results["per_task"][task]["metric"] for task in results["tasks"]] == ["vqa_accuracy", "multiple_choice"]
    assert [results["per_task"][task]["train_size"] for task in results["tasks"]] == [12, 12]
    matrix = results["accuracy_matrix"]
    assert matrix and all(len(row) == 2 for row in matrix)
    assert all(math.isfinite(score) for row in matrix for score in row if score is not None)
