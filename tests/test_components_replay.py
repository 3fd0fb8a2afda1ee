"""The replay buffer: quotas, seeded selection, references resolved back to records, state, mixing."""

from __future__ import annotations

import json

import pytest

from mcit.core.configs import ConfigError, from_dict
from mcit.core.errors import UserError
from mcit.data.schema import Record, Task
from mcit.methods.components.replay import BufferOptions, ReplayBuffer, _reservoir, mix
from mcit.methods.components.state import join_state, split_state


def make_task(name: str, size: int) -> Task:
    records = [Record(id=f"{name}-{i}", image=None, instruction=f"q{i}", answers=(f"a{i}",)) for i in range(size)]
    return Task(name=name, metric="exact_match", train=records, test=[])


@pytest.mark.parametrize("selection", ["uniform", "reservoir"])
def test_quota_per_task_by_fraction_and_by_count(selection):
    a, b = make_task("a", 200), make_task("b", 50)
    buffer = ReplayBuffer(fraction=0.05, selection=selection)
    buffer.add_task(a, seed=0)
    buffer.add_task(b, seed=0)
    assert buffer.counts() == {"a": 10, "b": 2} and len(buffer) == 12
    assert ReplayBuffer(fraction=0.01).quota(50) == 1, "at least one record per task"
    counted = ReplayBuffer(fraction=0.5, size=7, selection=selection)
    counted.add_task(a, seed=0)
    counted.add_task(make_task("tiny", 3), seed=0)
    assert counted.counts() == {"a": 7, "tiny": 3}, "a count overrides the fraction, capped by the task's size"
    ids = counted.entries["a"]
    assert len(set(ids)) == 7 and all(i.startswith("a-") for i in ids)


@pytest.mark.parametrize("selection", ["uniform", "reservoir"])
def test_selection_is_deterministic_from_seed_and_task(selection):
    task = make_task("a", 300)

    def chosen(seed):
        buffer = ReplayBuffer(size=10, selection=selection)
        return buffer.add_task(task, seed)

    assert chosen(0) == chosen(0)
    assert chosen(0) != chosen(1)
    other = ReplayBuffer(size=10, selection=selection).add_task(make_task("b", 300), 0)
    assert [i.split("-")[1] for i in other] != [i.split("-")[1] for i in chosen(0)], "the task's name seeds the draw"


def test_reservoir_sampling_is_uniform():
    import random

    hits = [0] * 20
    rng = random.Random(0)
    for _ in range(4000):
        for i in _reservoir(20, 5, rng):
            hits[i] += 1
    assert sum(hits) == 20_000 and min(hits) > 850 and max(hits) < 1150  # 1000 expected each


def test_references_resolve_to_records_and_survive_a_state_round_trip():
    tasks = [make_task("a", 40), make_task("b", 40)]
    buffer = ReplayBuffer(size=4)
    for task in tasks:
        buffer.add_task(task, seed=3)
    skeleton, tensors = split_state(buffer.state_dict())
    assert not tensors, "the buffer stores references only"
    restored = ReplayBuffer(size=4)
    restored.load_state_dict(join_state(json.loads(json.dumps(skeleton)), tensors))
    records = restored.records(tasks)
    assert [r.id for r in records] == buffer.entries["a"] + buffer.entries["b"]
    assert all(isinstance(r, Record) for r in records)


def test_unresolvable_references_are_user_errors():
    buffer = ReplayBuffer(size=2)
    buffer.add_task(make_task("a", 10), seed=0)
    with pytest.raises(UserError, match="task 'a'"):
        buffer.records([make_task("b", 10)])
    with pytest.raises(UserError, match="no longer holds"):
        buffer.records([make_task("a", 1)])


def test_mixing_reaches_the_requested_share():
    new = make_task("new", 90).train
    old = make_task("old", 4).train
    assert mix(new, old, None) == new + old
    mixed = mix(new, old, 0.25, 0, "t")
    share = sum(r.id.startswith("old") for r in mixed) / len(mixed)
    assert share == pytest.approx(0.25, abs=0.01)
    assert mix(new, old, 0.25, 0, "t") == mixed, "seeded"
    assert mix(new, old, 0.0, 0, "t") == new
    few = mix(new, make_task("old", 500).train, 0.1, 0, "t")
    assert sum(r.id.startswith("old") for r in few) == 10, "a large buffer is subsampled"
    assert mix(new, [], 0.5) == new


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match="method.selection"):
        ReplayBuffer(selection="newest")
    with pytest.raises(ConfigError, match="buffer_fraction"):
        from_dict(BufferOptions, {"buffer_fraction": 0}, prefix="method")
    with pytest.raises(ConfigError, match="replay_ratio"):
        mix(make_task("a", 2).train, make_task("b", 2).train, 1.0)
