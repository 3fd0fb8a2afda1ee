"""The replay buffer: a few training records of every finished task, kept as references.

After each task a quota of its training records enters the buffer: a count, or a fraction of the
task (default 1%, at least one record). They are chosen uniformly at random or by reservoir
sampling (one pass over the task in order, as if it arrived as a stream), from a generator seeded
by the run's seed and the task's name, so every process of a distributed run and every resumed
run holds exactly the same buffer.

The buffer stores (task name, record id) pairs, never images or text: its state is a few bytes
per record and survives a resume as JSON. Turning the references back into records needs the
benchmark's tasks (`ctx.tasks`), which methods have in `train_data` and the training hooks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from mcit.core.configs import ConfigError, option
from mcit.core.errors import UserError
from mcit.data.schema import Record, Task
from mcit.methods.components.sampling import permutation, sample_indices, stable_seed


@dataclass
class BufferOptions:
    """Options of the replay buffer (shared by the methods that keep one)."""

    buffer_fraction: float = option(0.01, "share of each task's training records kept in the buffer "
                                     "(at least one record; ignored when buffer_size is set)", min=0, max=1)
    buffer_size: int | None = option(None, "records kept per task (overrides buffer_fraction)", min=1)
    selection: Literal["uniform", "reservoir"] = option(
        "uniform", "how a task's records are chosen: uniform random draw, or reservoir sampling in one pass "
                   "over the task in order")

    def validate(self) -> None:
        if self.buffer_size is None and self.buffer_fraction <= 0:
            raise ConfigError("config key 'method.buffer_fraction': must be above 0 (or set method.buffer_size)")


class ReplayBuffer:
    """Per-task references to training records. See the module docstring."""

    def __init__(self, fraction: float = 0.01, size: int | None = None, selection: str = "uniform"):
        if selection not in ("uniform", "reservoir"):
            raise ConfigError(f"config key 'method.selection': {selection!r} is not allowed; choose uniform or reservoir")
        self.fraction, self.size, self.selection = fraction, size, selection
        self.entries: dict[str, list[str]] = {}

    @classmethod
    def from_options(cls, options: BufferOptions) -> ReplayBuffer:
        return cls(options.buffer_fraction, options.buffer_size, options.selection)

    def quota(self, task_size: int) -> int:
        """How many records of a task of `task_size` records the buffer keeps."""
        wanted = self.size if self.size is not None else max(1, round(self.fraction * task_size))
        return min(wanted, task_size)

    def add_task(self, task: Task, seed: int) -> list[str]:
        """Choose the task's records (replacing an earlier choice for the same task); returns their ids."""
        records = task.train
        count = self.quota(len(records))
        if self.selection == "uniform":
            chosen = sample_indices(len(records), count, seed, "replay", task.name)
        else:
            chosen = _reservoir(len(records), count, random.Random(stable_seed(seed, "replay", task.name)))
        self.entries[task.name] = [records[i].id for i in chosen]
        return self.entries[task.name]

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.entries.values())

    def counts(self) -> dict[str, int]:
        """Records held per task."""
        return {name: len(ids) for name, ids in self.entries.items()}

    def records(self, tasks: Sequence[Task]) -> list[Record]:
        """The buffered records, task by task, resolved against the benchmark's tasks."""
        by_name = {t.name: t for t in tasks}
        out: list[Record] = []
        for name, ids in self.entries.items():
            if name not in by_name:
                raise UserError(f"the replay buffer holds records of task '{name}', which this benchmark does not "
                                "have; resume with the benchmark the run was started with")
            index = {r.id: r for r in by_name[name].train}
            missing = [i for i in ids if i not in index]
            if missing:
                raise UserError(f"the replay buffer refers to record '{missing[0]}' of task '{name}', which its "
                                "training set no longer holds; resume with the same benchmark data")
            out.extend(index[i] for i in ids)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"entries": {name: list(ids) for name, ids in self.entries.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.entries = {name: list(ids) for name, ids in state.get("entries", {}).items()}


def _reservoir(total: int, count: int, rng: random.Random) -> list[int]:
    """Algorithm R: a uniform sample of `count` of the indices 0..total-1 in one sequential pass."""
    kept = list(range(min(count, total)))
    for i in range(count, total):
        j = rng.randint(0, i)
        if j < count:
            kept[j] = i
    return kept


def mix(new: Sequence[Record], replay: Sequence[Record], ratio: float | None, *seed_parts: object) -> list[Record]:
    """The training records of a task with buffer records mixed in.

    The loop draws batches uniformly from the returned sequence, so a buffer share of `ratio` in
    every batch (on average) is reached by repeating the buffer records (in a seeded order) until
    they are ratio / (1 − ratio) times as many as the new ones, or by taking fewer of them when the
    buffer is larger than that. `ratio=None` gives the plain union of the two. With epoch-based
    training a stage's steps grow with the added records.
    """
    if ratio is None or not replay:
        return list(new) + list(replay)
    if not 0 <= ratio < 1:
        raise ConfigError(f"config key 'method.replay_ratio': {ratio} must be at least 0 and below 1")
    wanted = math.ceil(ratio / (1 - ratio) * len(new))
    order = permutation(len(replay), *seed_parts)
    repeated = [replay[order[i % len(order)]] for i in range(wanted)]
    return list(new) + repeated
