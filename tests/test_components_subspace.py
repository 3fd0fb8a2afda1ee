"""Subspace bases by the energy rule, merging them, and the four gradient projections."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.subspace import (basis_from_gram, embedding_gram, energy_rank, gram, merge_basis,
                                              project_rows)

D = 12


def orthonormal(d: int, k: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q[:, :k]


def vectors_with(singular: list[float], directions: torch.Tensor, n: int = 40, seed: int = 1) -> torch.Tensor:
    """[n, d] rows whose matrix Xᵀ (d × n) has these singular values along these left directions."""
    right = orthonormal(n, len(singular), seed)  # n × k, orthonormal columns
    return right @ torch.diag(torch.tensor(singular, dtype=torch.float64)) @ directions.T


def spans(basis: torch.Tensor, directions: torch.Tensor) -> bool:
    """Whether every column of `directions` lies in the span of `basis`."""
    residual = directions - basis @ (basis.T @ directions)
    return bool(residual.norm() < 1e-8)


def is_orthonormal(basis: torch.Tensor) -> bool:
    return torch.allclose(basis.T @ basis, torch.eye(basis.shape[1], dtype=basis.dtype), atol=1e-10)


def test_energy_rank_is_the_smallest_k_reaching_the_share():
    energies = torch.tensor([50.0, 30.0, 15.0, 4.0, 1.0])  # total 100; cumulative 50, 80, 95, 99, 100
    assert [energy_rank(energies, f) for f in (0.4, 0.5, 0.6, 0.9, 0.97, 0.995, 1.0)] == [1, 1, 2, 3, 4, 5, 5]
    assert energy_rank(energies, 0.9, captured=85.0) == 1  # 85 + 50 ≥ 90
    assert energy_rank(energies, 0.9, captured=90.0) == 0  # already captured
    assert energy_rank(torch.zeros(0), 0.9) == 0


def test_the_basis_is_the_top_left_singular_vectors_by_energy():
    directions = orthonormal(D, 5, seed=0)
    x = vectors_with([50 ** 0.5, 30 ** 0.5, 15 ** 0.5, 4 ** 0.5, 1.0], directions)
    for fraction, k in ((0.9, 3), (0.97, 4), (0.45, 1), (0.55, 2)):
        basis = basis_from_gram(gram(x), fraction)
        assert basis.shape == (D, k) and is_orthonormal(basis)
        assert spans(basis, directions[:, :k])
    # the Gram route gives the same subspace as an SVD of X itself
    u, _, _ = torch.linalg.svd(x.T, full_matrices=False)
    basis = basis_from_gram(gram(x), 0.97)
    assert torch.allclose(basis @ basis.T, u[:, :4] @ u[:, :4].T, atol=1e-10)


def test_embedding_gram_adds_up_chunks():
    table = torch.randn(50, D, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(embedding_gram(table, chunk=7), gram(table), atol=1e-9)


def test_merging_keeps_the_basis_orthonormal_and_never_duplicates_a_direction():
    directions = orthonormal(D, 6, seed=2)
    first = vectors_with([3.0, 2.0], directions[:, :2])
    basis, added = merge_basis(None, gram(first), 0.99)
    assert added == 2 and spans(basis, directions[:, :2])
    again, added = merge_basis(basis, gram(first), 0.99)
    assert added == 0 and torch.equal(again, basis.double()), "data already spanned adds nothing"
    # new data: one old direction and two new ones, one of them mixed with an old one
    mixed = torch.stack([directions[:, 0], (directions[:, 1] + directions[:, 2]) / 2 ** 0.5, directions[:, 3]], 1)
    second = vectors_with([2.0, 2.0, 2.0], mixed, seed=4)
    merged, added = merge_basis(basis, gram(second), 0.99)
    assert added == 2 and merged.shape == (D, 4) and is_orthonormal(merged)
    assert torch.equal(merged[:, :2], basis.double()), "old directions stay as they are"
    assert spans(merged, directions[:, :4]) and not spans(merged, directions[:, 4:5])


def test_merge_rules_total_and_residual():
    directions = orthonormal(D, 4, seed=5)
    basis, _ = merge_basis(None, gram(vectors_with([1.0], directions[:, :1])), 0.97)
    # 96% of the new data's energy lies along the old direction, 3% and 1% along two new ones
    new = gram(vectors_with([96 ** 0.5, 3 ** 0.5, 1.0], directions[:, :3], seed=6))
    _, added_total = merge_basis(basis, new, 0.97, rule="total")  # 96 + 3 ≥ 97: one direction
    _, added_residual = merge_basis(basis, new, 0.97, rule="residual")  # 3 of 4 < 97% of the residual: two
    assert (added_total, added_residual) == (1, 2)
    _, added = merge_basis(basis, new, 0.95, rule="total")
    assert added == 0, "the old basis already holds 96% ≥ 95%"


def test_projections_behave_as_named():
    old = orthonormal(D, 3, seed=7).float()
    pretrained = orthonormal(D, 8, seed=8).float()
    grad = torch.randn(2, 5, D, generator=torch.Generator().manual_seed(9))
    outside_pretrained = lambda g: (g - (g @ pretrained) @ pretrained.T).norm()  # noqa: E731
    assert torch.equal(project_rows(grad, old, pretrained, "none"), grad)
    residual = project_rows(grad, old, pretrained, "residual")
    assert (residual @ old).norm() < 1e-5 and outside_pretrained(residual) > 1e-1
    assert torch.allclose(residual + (grad @ old) @ old.T, grad, atol=1e-5), "only the old-task part is removed"
    into = project_rows(grad, old, pretrained, "pretrained")
    assert outside_pretrained(into) < 1e-5 and (into @ old).norm() > 1e-1
    both = project_rows(grad, old, pretrained, "both")
    assert outside_pretrained(both) < 1e-5
    assert torch.allclose(both, project_rows(residual, old, pretrained, "pretrained"), atol=1e-6), "residual first"
    assert torch.equal(project_rows(grad, None, pretrained, "both"), into), "no old tasks: only the pre-trained step"
    assert torch.equal(project_rows(grad, None, None, "residual"), grad)


@pytest.mark.parametrize("seed", [10, 11])
def test_both_projections_leave_no_old_part_and_stay_pretrained_when_the_old_space_is_pretrained(seed):
    """When U_old lies in span(U_pre) (old tasks' inputs are pre-trained directions) the two steps
    commute: the gradient ends orthogonal to U_old and inside span(U_pre)."""
    pretrained = orthonormal(D, 8, seed=seed).float()
    mix = orthonormal(8, 3, seed=seed + 100).float()
    old = pretrained @ mix  # three orthonormal directions inside span(U_pre)
    grad = torch.randn(7, D, generator=torch.Generator().manual_seed(seed))
    both = project_rows(grad, old, pretrained, "both")
    assert (both @ old).norm() < 1e-5 * grad.norm()
    assert (both - (both @ pretrained) @ pretrained.T).norm() < 1e-5 * grad.norm()
    assert both.norm() > 0.1 * grad.norm()


def test_intersection_projection_is_orthogonal_to_old_and_inside_pretrained():
    """The exact mode holds both properties even when the projections do not commute."""
    from mcit.methods.components.subspace import intersection_basis, project_rows

    generator = torch.Generator().manual_seed(0)
    d = 12
    pre, _ = torch.linalg.qr(torch.randn(d, 8, generator=generator))
    old, _ = torch.linalg.qr(torch.randn(d, 3, generator=generator))  # generic: not inside span(pre)
    grad = torch.randn(4, d, generator=generator)
    sequential = project_rows(grad, old, pre, "both")
    assert (sequential @ old).norm() > 1e-3  # the paper's form brings back a part along U_old here
    basis = intersection_basis(old, pre)
    assert basis.shape == (d, 8 + (d - 3) - d)  # dim of the intersection of generic subspaces
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-5)
    exact = project_rows(grad, None, basis, "pretrained")
    assert (exact @ old).norm() < 1e-5 * grad.norm()
    assert (exact - (exact @ pre) @ pre.T).norm() < 1e-5 * grad.norm()
    assert exact.norm() > 0.1 * grad.norm()
    assert torch.equal(intersection_basis(None, pre), pre.float())
