"""ER and A-GEM called directly: buffer sizes, mixing, and A-GEM's projection rule."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.agem import AGEM, AGEMOptions
from mcit.methods.components import gradients as G
from mcit.methods.er import ER, EROptions
from test_methods_support import ParameterModel, fake_context, make_task


def test_er_buffer_holds_the_configured_number_per_task_and_mixes_it_in():
    tasks = [make_task("a", 300), make_task("b", 120), make_task("c", 80)]
    method = ER(EROptions(buffer_size=5))
    ctx = fake_context(tasks)
    assert method.train_data(tasks[0], ctx) == tasks[0].train, "nothing to replay on the first task"
    method.after_task(None, tasks[0], ctx)
    method.after_task(None, tasks[1], ctx)
    assert method.report()["buffer"] == {"a": 5, "b": 5}
    data = method.train_data(tasks[2], ctx)
    assert len(data) == 80 + 10 and {r.id.split("-")[0] for r in data[80:]} == {"a", "b"}
    by_fraction = ER(EROptions(buffer_fraction=0.1))
    by_fraction.after_task(None, tasks[0], ctx)
    assert by_fraction.report()["buffer"] == {"a": 30}
    ratio = ER(EROptions(buffer_size=5, replay_ratio=0.5))
    ratio.after_task(None, tasks[0], ctx)
    mixed = ratio.train_data(tasks[2], ctx)
    assert sum(r.id.startswith("a-") for r in mixed) == 80, "half of the data from the buffer"


class Reference:
    """A gradient_of returning a fixed reference gradient and recording what it was asked."""

    def __init__(self, reference: dict[str, torch.Tensor]):
        self.reference, self.calls = reference, []

    def __call__(self, records, objective=None, synchronize=True):
        self.calls.append((list(records), synchronize))
        return {n: t.clone() for n, t in self.reference.items()}


def agem_step(grads: dict[str, list[float]], reference: dict[str, list[float]]):
    model = ParameterModel(**{n: torch.zeros(len(v)) for n, v in grads.items()})
    for name, values in grads.items():
        model.parameters[name].grad = torch.tensor(values)
    tasks = [make_task("old", 100), make_task("new", 100)]
    method = AGEM(AGEMOptions(buffer_size=6, reference_batch=4))
    method.after_task(model, tasks[0], fake_context(tasks))
    method.train_data(tasks[1], fake_context(tasks))
    gradient_of = Reference({n: torch.tensor(v) for n, v in reference.items()})
    method.after_backward(model, fake_context(tasks, gradient_of=gradient_of, stage_index=1, step=3))
    applied = [model.parameters[n].grad for n in grads]
    return method, applied, [gradient_of.reference[n] for n in grads], gradient_of.calls


def test_agem_projects_a_gradient_that_conflicts_with_the_memory():
    grads, reference = {"a": [1.0, -2.0], "b": [0.5]}, {"a": [-1.0, 1.0], "b": [1.0]}
    assert G.dot([torch.tensor(v) for v in grads.values()], [torch.tensor(v) for v in reference.values()]) < 0
    method, applied, ref, calls = agem_step(grads, reference)
    assert G.dot(applied, ref).item() >= -1e-6
    assert G.dot(applied, ref).item() == pytest.approx(0.0, abs=1e-6), "projected onto the plane orthogonal to g_ref"
    (records, synchronize), = calls
    assert len(records) == 4 and synchronize and all(r.id.startswith("old-") for r in records)
    assert set(r.id for r in records) <= set(method.buffer.entries["old"])


def test_agem_leaves_an_agreeing_gradient_alone():
    grads, reference = {"a": [1.0, 2.0], "b": [0.5]}, {"a": [1.0, 1.0], "b": [-1.0]}
    _, applied, _, _ = agem_step(grads, reference)
    assert [t.tolist() for t in applied] == [[1.0, 2.0], [0.5]]


def test_agem_reference_batches_are_seeded_by_task_and_step():
    _, _, _, first = agem_step({"a": [1.0]}, {"a": [1.0]})
    _, _, _, again = agem_step({"a": [1.0]}, {"a": [1.0]})
    assert [r.id for r in first[0][0]] == [r.id for r in again[0][0]]


def test_agem_does_nothing_without_a_memory():
    model = ParameterModel(a=torch.zeros(1))
    model.parameters["a"].grad = torch.tensor([1.0])
    method = AGEM()
    method.train_data(make_task("first", 10), fake_context())
    method.after_backward(model, fake_context(gradient_of=lambda *a, **k: pytest.fail("no memory, no reference")))
    assert model.parameters["a"].grad.tolist() == [1.0]
