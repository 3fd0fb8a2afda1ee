"""TIR's per-task terms: similarity weights, the penalty, and the bounded (merging) variant."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.tir import TaskTerms, merge, task_weights

SIMILARITY = {frozenset(("new", "a")): 0.9, frozenset(("new", "b")): 0.3, frozenset(("new", "c")): -0.2,
              frozenset(("a", "b")): 0.2, frozenset(("a", "c")): 0.1, frozenset(("b", "c")): 0.8}


def similarity(x: str, y: str) -> float:
    return 1.0 if x == y else SIMILARITY[frozenset((x, y))]


def test_weights_follow_similarity_or_dissimilarity():
    w = task_weights("new", ["a", "b", "c"], similarity, "similarity", "sum")
    assert w == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0}), "negative similarity counts as none"
    w = task_weights("new", ["a", "b", "c"], similarity, "similarity", "mean")
    assert sum(w.values()) == pytest.approx(3.0), "mean normalisation: the weights average 1"
    w = task_weights("new", ["a", "b", "c"], similarity, "dissimilarity", "sum")
    assert w == pytest.approx({"a": 0.05, "b": 0.35, "c": 0.6})
    assert task_weights("new", [], similarity, "similarity", "mean") == {}
    flat = task_weights("new", ["c"], similarity, "similarity", "mean")
    assert flat == {"c": 1.0}, "with nothing similar, old tasks count equally"


def named(values):
    return [("w", torch.nn.Parameter(torch.tensor(values)))]


def test_penalty_is_the_weighted_sum_of_task_terms():
    terms = TaskTerms()
    terms.add("a", {"w": torch.tensor([1.0, 2.0])}, named([0.0, 0.0]))
    terms.add("b", {"w": torch.tensor([3.0, 0.0])}, named([1.0, 1.0]))
    at = named([1.0, 0.0])
    # a: 1·1 + 2·0 = 1; b: 3·0 + 0 = 0
    assert terms.penalty(at, [2.0, 5.0]).item() == pytest.approx(2.0)
    at = named([0.0, 0.0])
    assert terms.penalty(at, [1.0, 1.0]).item() == pytest.approx(3.0)
    assert TaskTerms().penalty(at, []) is None


def test_bounded_terms_merge_the_most_similar_pair():
    terms = TaskTerms()
    terms.add("a", {"w": torch.tensor([1.0])}, named([0.0]), max_terms=2, similarity=similarity)
    terms.add("b", {"w": torch.tensor([1.0])}, named([1.0]), max_terms=2, similarity=similarity)
    terms.add("c", {"w": torch.tensor([3.0])}, named([2.0]), max_terms=2, similarity=similarity)
    assert [t["members"] for t in terms.terms] == [["a"], ["b", "c"]], "b and c are the most similar pair"
    merged = terms.terms[1]
    assert merged["importance"]["w"].item() == pytest.approx(4.0)
    assert merged["anchor"]["w"].item() == pytest.approx((1 * 1.0 + 3 * 2.0) / 4), "importance-weighted anchor"
    assert terms.term_weights({"a": 1.0, "b": 0.5, "c": 1.5}) == [1.0, 1.0]


def test_a_merged_term_has_the_gradient_of_the_two_it_replaces():
    a = {"members": ["a"], "importance": {"w": torch.tensor([1.0, 0.5, 0.0])}, "anchor": {"w": torch.tensor([0.0, 1.0, 2.0])}}
    b = {"members": ["b"], "importance": {"w": torch.tensor([2.0, 0.0, 0.0])}, "anchor": {"w": torch.tensor([3.0, -1.0, 5.0])}}
    separate, together = TaskTerms(), TaskTerms()
    separate.terms, together.terms = [a, b], [merge(a, b)]
    assert together.terms[0]["anchor"]["w"].tolist() == [2.0, 1.0, 3.5], "zero importance: the plain mean"
    theta = named([0.7, -0.3, 1.1])
    separate.penalty(theta, [1.0, 1.0]).backward()
    expected = theta[0][1].grad.clone()
    theta[0][1].grad = None
    together.penalty(theta, [1.0]).backward()
    assert torch.allclose(theta[0][1].grad, expected)


def test_several_terms_give_the_value_and_gradient_of_their_weighted_sum():
    generator = torch.Generator().manual_seed(0)
    shapes = {"a": (3, 4), "b": (5,)}

    def draw(shape, low=0.0):
        return torch.rand(shape, generator=generator) + low

    terms = TaskTerms()
    for task in ("x", "y", "z"):
        importance = {n: draw(s) * (torch.rand(s, generator=generator) > 0.3) for n, s in shapes.items()}
        terms.add(task, importance, [(n, draw(s, -0.5)) for n, s in shapes.items()])
    theta = [(n, torch.nn.Parameter(draw(s, -0.5))) for n, s in shapes.items()]
    weights = [0.5, 0.0, 2.0]
    expected = sum(w * sum((t["importance"][n] * (p - t["anchor"][n]) ** 2).sum() for n, p in theta)
                   for w, t in zip(weights, terms.terms))
    expected_grads = torch.autograd.grad(expected, [p for _, p in theta])
    for _ in range(2):  # the second call reuses the combined term
        value = terms.penalty(theta, weights)
        assert value.item() == pytest.approx(expected.item(), rel=1e-5)
        for got, want in zip(torch.autograd.grad(value, [p for _, p in theta]), expected_grads):
            assert torch.allclose(got, want, atol=1e-6)
