"""The built-in streams and their materialisation on disk.

A built-in stream is generated from a seed and written once into a cache folder in exactly the
layout users bring for public benchmarks: one folder per task with `train.json` / `test.json` in
LLaVA conversation format (plus an `answers` list of references) and PNG images, and a
`benchmark.yaml` declaring each task's metric. It is then loaded by the same loader as a user's
benchmark, so the built-in path exercises the public one, and the files can be inspected.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from mcit.data.builtin.pretraining import PRETRAINING_TASKS
from mcit.data.builtin.probes import PROBE_TASKS
from mcit.data.builtin.spec import Sample, TaskSpec
from mcit.data.builtin.tasks import (attributes, caption, choice, counting, digits, grounding, reading,
                                     unanswerable)

#: Bump when generators change, so cached folders of older data are not reused.
GENERATOR_VERSION = 11

TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    choice.SPEC, reading.SPEC, digits.SPEC, attributes.SPEC,
    unanswerable.SPEC, grounding.SPEC, counting.SPEC, caption.SPEC,
)}
#: Every generator a stream may use: the benchmark's tasks, the start models' pre-training mixes and
#: the probes of what a start model can learn.
ALL_TASKS: dict[str, TaskSpec] = {**TASKS, **PRETRAINING_TASKS, **PROBE_TASKS}


@dataclass(frozen=True)
class Stream:
    """A named built-in stream: its tasks in their default order and default split sizes."""

    name: str
    description: str
    order: tuple[str, ...]
    train_size: int
    test_size: int


STREAMS: dict[str, Stream] = {
    "builtin": Stream(
        name="builtin",
        description="eight vision-language tasks mirroring CoIN and UCIT, in CoIN's order of task types",
        order=("choice", "ocr", "digits", "vqa", "unanswerable", "ground", "count", "caption"),
        train_size=1000,
        test_size=100,
    ),
    "pretrain-base": Stream(
        name="pretrain-base",
        description="caption pre-training mix of the tiny-base start model (not a continual stream)",
        order=("pretrain-caption",),
        train_size=24000,
        test_size=200,
    ),
    "pretrain-instruct": Stream(
        name="pretrain-instruct",
        description="instruction mix of the tiny-instruct start model (not a continual stream)",
        order=("pretrain-instruct",),
        train_size=24000,
        test_size=350,
    ),
    "probe-choice": Stream(
        name="probe-choice",
        description="probes of the choice task's two skills, each trained alone (not a continual stream)",
        order=("choice-letter", "choice-copy", "choice-present"),
        train_size=1000,
        test_size=400,  # a fixed letter's score on 100 records strays far from its expected 29
    ),
}


def cache_root() -> Path:
    """Where generated data lives: $MCIT_CACHE, else $XDG_CACHE_HOME/mcit, else ~/.cache/mcit."""
    if os.environ.get("MCIT_CACHE"):
        return Path(os.environ["MCIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mcit"


def task_rng(seed: int, task: str, split: str) -> random.Random:
    """The random stream of one task's split; independent of the other tasks and splits."""
    return random.Random(f"mcit-builtin/{seed}/{task}/{split}")


def generate(spec: TaskSpec, seed: int, split: str, size: int) -> list[Sample]:
    """`size` samples of task `spec` for `split`, identical for the same seed."""
    rng = task_rng(seed, spec.name, split)
    return [spec.make(rng) for _ in range(size)]


def _write_split(samples: list[Sample], folder: Path, split: str) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i, sample in enumerate(samples):
        image_name = f"images/{split}-{i:05d}.png"
        sample.image.save(folder / image_name, format="PNG", optimize=False, compress_level=1)
        records.append({
            "id": f"{folder.name}-{split}-{i:05d}",
            "image": image_name,
            "conversations": [
                {"from": "human", "value": "<image>\n" + sample.instruction},
                {"from": "gpt", "value": sample.answers[0]},
            ],
            "answers": list(sample.answers),
            **({"question_type": sample.question_type} if sample.question_type else {}),
        })
    (folder / f"{split}.json").write_text(json.dumps(records, indent=1), encoding="utf-8")


def materialize(stream: str = "builtin", seed: int = 0, train_size: int | None = None,
                test_size: int | None = None, tasks: tuple[str, ...] | None = None,
                root: Path | None = None) -> Path:
    """Write the stream's data once and return the path of its `benchmark.yaml`.

    The folder name is a hash of everything that determines the data, so a cached folder is
    reused exactly when it holds the same data. The folder is built under a temporary name and
    renamed into place, so concurrent processes (several ranks of one launch) never see half a
    folder and never write the same one twice over.
    """
    definition = STREAMS[stream]
    train_size = definition.train_size if train_size is None else train_size
    test_size = definition.test_size if test_size is None else test_size
    names = tuple(tasks or definition.order)
    key = json.dumps([GENERATOR_VERSION, stream, seed, train_size, test_size, names])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    root = root or cache_root()
    target = root / "builtin" / f"{stream}-seed{seed}-{digest}"
    if (target / "benchmark.yaml").exists():
        return target / "benchmark.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        manifest = {"name": stream, "tasks": []}
        for name in names:
            spec = ALL_TASKS[name]
            for split, size in (("train", train_size), ("test", test_size)):
                _write_split(generate(spec, seed, split, size), staging / name, split)
            manifest["tasks"].append({
                "name": name, "train": f"{name}/train.json", "test": f"{name}/test.json",
                "metric": spec.metric, "max_new_tokens": spec.max_new_tokens,
            })
        (staging / "benchmark.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "benchmark.yaml").exists():  # not a lost race: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target / "benchmark.yaml"
