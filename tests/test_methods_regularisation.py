"""EWC, MAS, SI and their TIR variants, called directly on stand-in models: each one's invariant."""

from __future__ import annotations

import pytest
import torch

from mcit.core.configs import ConfigError
from mcit.methods.components import encoders
from mcit.methods.ewc import EWC, EWCOptions
from mcit.methods.ewc_tir import EWCTIR, EWCTIROptions
from mcit.methods.mas import MAS
from mcit.methods.registry import build_method
from mcit.methods.si import SI
from test_methods_support import ParameterModel, fake_context, make_task


def per_record_gradients(table: dict[str, list[float]]):
    """A gradient_of whose gradient for record i is table[...][i]."""
    calls = []

    def gradient_of(records, objective=None, synchronize=True):
        calls.append((len(records), synchronize))
        index = int(records[0].id.rsplit("-", 1)[1])
        return {name: torch.tensor(values[index]) for name, values in table.items()}

    gradient_of.calls = calls
    return gradient_of


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    model = ParameterModel(w=torch.tensor([0.5, -1.0, 2.0]))
    task = make_task("a", 2)
    gradient_of = per_record_gradients({"w": [[1.0, 0.0, 2.0], [3.0, 0.0, -2.0]]})
    method = EWC(EWCOptions(lam=10.0, samples=2))
    assert method.extra_losses(model, {}, None, fake_context()) == {}, "no penalty before the first task ends"
    method.after_task(model, task, fake_context([task], model=model, gradient_of=gradient_of))
    assert gradient_of.calls == [(1, False), (1, False)], "per-record gradients, not synchronised"
    assert method.penalty.importance["w"].tolist() == [5.0, 0.0, 4.0], "mean of squared per-record gradients"
    values = []
    for distance in (0.0, 0.1, 0.2, 0.4):
        with torch.no_grad():
            model.parameters["w"].copy_(torch.tensor([0.5, -1.0, 2.0]) + distance)
        values.append(method.extra_losses(model, {}, None, fake_context())["ewc"].item())
    assert values[0] == 0.0
    assert values[1] < values[2] < values[3]
    assert values[1] == pytest.approx(10.0 * (5.0 + 0.0 + 4.0) * 0.01)


def test_online_ewc_decays_the_accumulated_importance():
    model = ParameterModel(w=torch.zeros(2))
    method = EWC(EWCOptions(samples=1, gamma=0.5))
    for name, grads in (("a", [[2.0, 0.0]]), ("b", [[0.0, 1.0]])):
        task = make_task(name, 1)
        method.after_task(model, task, fake_context([task], model=model, gradient_of=per_record_gradients({"w": grads})))
    assert method.penalty.importance["w"].tolist() == [2.0, 1.0], "0.5 · [4, 0] + [0, 1]"


def test_mas_importance_is_the_mean_absolute_gradient():
    model = ParameterModel(w=torch.zeros(2))
    task = make_task("a", 2)
    method = MAS()
    method.options.samples = 2
    ctx = fake_context([task], model=model, gradient_of=per_record_gradients({"w": [[-2.0, 1.0], [4.0, -1.0]]}))
    method.after_task(model, task, ctx)
    importance = method.penalty.importance["w"]
    assert importance.tolist() == [3.0, 1.0] and (importance >= 0).all()


def test_si_importance_is_non_negative_and_penalises_moving_away():
    model = ParameterModel(w=torch.tensor([1.0, -1.0, 0.5]))
    parameter = model.parameters["w"]
    method = SI()
    task = make_task("a", 1)
    ctx = fake_context([task])
    method.before_task(model, task, ctx)
    optimizer = torch.optim.Adam([parameter], lr=0.2)
    for _ in range(15):
        optimizer.zero_grad()
        (parameter[:2] - torch.tensor([3.0, 2.0])).pow(2).sum().backward()
        method.after_backward(model, ctx)
        optimizer.step()
        method.after_step(model, ctx)
    method.after_task(model, task, ctx)
    importance = method.penalty.importance["w"]
    assert (importance >= 0).all() and importance[0] > 0 and importance[2] == 0
    assert method.extra_losses(model, {}, None, ctx)["si"].item() == 0.0
    with torch.no_grad():
        parameter.add_(0.3)
    assert method.extra_losses(model, {}, None, ctx)["si"].item() > 0


def test_tir_weights_old_tasks_by_similarity(monkeypatch):
    monkeypatch.setitem(encoders.TEXT_ENCODERS, "words",
                        lambda texts, model, ctx: torch.stack([torch.tensor([t.startswith("cat"), t.startswith("dog"), 1.0])
                                                               for t in texts]).float())
    model = ParameterModel(w=torch.zeros(2))
    tasks = [make_task("cat", 2), make_task("dog", 2), make_task("cats", 2)]
    for task in tasks:  # instructions start with the task's name
        task.train = [r.__class__(id=r.id, image=None, instruction=f"{task.name} {r.instruction}", answers=r.answers)
                      for r in task.train]
    gradient_of = per_record_gradients({"w": [[1.0, 0.0], [1.0, 0.0]]})
    method = EWCTIR(EWCTIROptions(text_encoder="words", samples=2, lam=1.0))
    for index, task in enumerate(tasks):
        ctx = fake_context(tasks, model=model, gradient_of=gradient_of, stage_index=index)
        method.before_task(model, task, ctx)
        if index < 2:
            method.after_task(model, task, ctx)
    weights = method.weight_log["cats"]
    assert weights["cat"] > weights["dog"] and sum(weights.values()) == pytest.approx(2.0)
    assert method.report()["terms"] == [["cat"], ["dog"]]
    with torch.no_grad():
        model.parameters["w"].fill_(1.0)
    value = method.extra_losses(model, {}, None, fake_context())["ewc_tir"].item()
    assert value == pytest.approx(weights["cat"] * 1.0 + weights["dog"] * 1.0)


def test_bad_option_values_name_the_option():
    with pytest.raises(ConfigError, match="method.gamma"):
        build_method("ewc", {"gamma": 1.5})
    with pytest.raises(ConfigError, match="method.weighting"):
        build_method("si-tir", {"weighting": "both"})
    with pytest.raises(ConfigError, match="method.max_terms"):
        build_method("mas-tir", {"max_terms": 0})
