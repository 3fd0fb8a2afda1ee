"""Importance estimators: Fisher and MAS on the tiny model through the loop's gradient service,
SI's path integral on a toy problem, and the quadratic penalty they feed."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.importance import (PathIntegral, answer_log_likelihood, fisher_diagonal,
                                                 mas_importance)
from mcit.methods.components.quadratic import QuadraticPenalty
from test_methods_support import tiny_context


@pytest.fixture(scope="module")
def tiny():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tiny_context()
    torch.set_num_threads(previous)


def test_answer_log_likelihood_matches_the_language_model_loss(tiny):
    ctx, task = tiny
    model = ctx.model
    batch = model.to_device(model.training_batch(task.train[:3]))
    with torch.no_grad():
        outputs = model.forward(batch)
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        assert float(-answer_log_likelihood(outputs, batch) / tokens) == pytest.approx(float(outputs.loss), rel=1e-4)


@pytest.mark.parametrize("estimate", [fisher_diagonal, mas_importance])
def test_importance_is_finite_non_negative_and_covers_the_trainable_parameters(tiny, estimate):
    ctx, task = tiny
    importance = estimate(ctx, task.train[:3])
    named = ctx.model.trainable_named_parameters()
    assert list(importance) == [n for n, _ in named]
    for (name, p), value in zip(named, importance.values()):
        assert value.shape == p.shape and value.dtype == torch.float32
        assert torch.isfinite(value).all() and (value >= 0).all(), name
    assert sum(float(v.sum()) for v in importance.values()) > 0
    assert all(p.grad is None for _, p in named), "estimating importance leaves the optimiser's gradients alone"


def test_fisher_is_the_mean_of_per_record_squared_gradients(tiny):
    ctx, task = tiny
    records = task.train[:2]
    both = fisher_diagonal(ctx, records)
    singles = [fisher_diagonal(ctx, [r]) for r in records]
    for name in both:
        assert torch.allclose(both[name], (singles[0][name] + singles[1][name]) / 2, rtol=1e-4, atol=1e-10)


def test_path_integral_with_sgd_is_the_sum_of_lr_times_squared_gradients():
    torch.manual_seed(0)
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    path = PathIntegral()
    path.begin([("theta", theta)])
    expected = torch.zeros(2)
    optimizer = torch.optim.SGD([theta], lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        theta.pow(2).sum().backward()
        expected += 0.1 * theta.grad.pow(2)
        path.record_gradients([theta])
        optimizer.step()
        path.accumulate([theta])
    assert torch.allclose(path.omega[0], expected)
    start = torch.tensor([1.0, -2.0])
    omega = path.importance([theta], xi=0.1)["theta"]
    assert torch.allclose(omega, expected / ((theta.detach() - start) ** 2 + 0.1))
    assert path.names == [], "importance() ends the task's path"


def test_path_integral_importance_is_non_negative_when_a_step_goes_uphill():
    """Adaptive optimisers can step against the gradient; such a path must not give negative importance."""
    theta = torch.nn.Parameter(torch.zeros(3))
    path = PathIntegral()
    path.begin([("theta", theta)])
    theta.grad = torch.tensor([1.0, 1.0, 0.0])
    path.record_gradients([theta])
    with torch.no_grad():
        theta.add_(torch.tensor([0.5, -0.5, 0.3]))  # uphill, downhill, and a move the loss ignores
    path.accumulate([theta])
    assert path.omega[0].tolist() == [-0.5, 0.5, 0.0]
    omega = path.importance([theta], xi=0.1)["theta"]
    assert omega[0] == 0 and omega[1] > 0 and omega[2] == 0
    assert (omega >= 0).all()


def test_quadratic_penalty_accumulates_and_decays():
    theta = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    penalty = QuadraticPenalty()
    assert penalty([("w", theta)]) is None
    penalty.consolidate({"w": torch.tensor([1.0, 3.0])}, [("w", theta)])
    penalty.consolidate({"w": torch.tensor([2.0, 1.0])}, [("w", theta)], decay=0.5)
    assert torch.equal(penalty.importance["w"], torch.tensor([2.5, 2.5]))
    assert penalty([("w", theta)]).item() == 0.0
    with torch.no_grad():
        theta.add_(1.0)
    value = penalty([("w", theta)])
    assert value.requires_grad and value.item() == pytest.approx(5.0)


def test_quadratic_matches_the_per_tensor_formula_for_float_and_bfloat16_parameters():
    from mcit.methods.components.quadratic import quadratic

    generator = torch.Generator().manual_seed(1)
    params = [("a", torch.nn.Parameter(torch.randn(4, 3, generator=generator))),
              ("b", torch.nn.Parameter(torch.randn(6, generator=generator).to(torch.bfloat16))),
              ("c", torch.nn.Parameter(torch.randn(2, generator=generator)))]  # no importance: left out
    importance = {n: torch.rand(p.shape, generator=generator) for n, p in params[:2]}
    anchor = {n: torch.randn(p.shape, generator=generator) for n, p in params[:2]}
    value = quadratic(params, importance, anchor, scale=3.0)
    expected = 3.0 * sum((importance[n] * (p.float() - anchor[n]) ** 2).sum() for n, p in params[:2])
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    grads = torch.autograd.grad(value, [p for _, p in params[:2]])
    wanted = torch.autograd.grad(expected, [p for _, p in params[:2]])
    for (name, p), got, want in zip(params, grads, wanted):
        assert got.dtype == p.dtype and torch.allclose(got.float(), want.float(), rtol=1e-2), name
    assert quadratic(params[2:], importance, anchor) is None
