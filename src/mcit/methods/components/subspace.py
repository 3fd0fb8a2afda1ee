"""Subspace bases of input embeddings, and projection of gradients onto and away from them.

A basis is an orthonormal d × k matrix U. From a set of vectors X (d × n, one column per vector) it
is the top-k left singular vectors of X, with k the smallest number such that
Σ_{i≤k} σ_i² ≥ ε ‖X‖²_F (`energy_rank`). Everything is computed from the Gram matrix G = X Xᵀ
(d × d, accumulated batch by batch in float64), whose eigenvectors are X's left singular vectors
and whose eigenvalues are σ_i², so X itself is never held whole.

Growing a basis (`merge_basis`): the new vectors' part not already spanned is the residual
R = (I − U Uᵀ) X, with Gram P G P (P = I − U Uᵀ); R's top left singular vectors are added, and only
those with energy above a tiny tolerance, so no direction is added twice. How many:
- rule `total` (the default, as in Gradient Projection Memory, Saha et al. 2021): the smallest k
  with ‖Uᵀ X‖²_F + Σ_{i≤k} σ_i(R)² ≥ ε ‖X‖²_F, i.e. the merged basis captures a share ε of the new
  vectors' energy; nothing is added when the old basis already does;
- rule `residual`: the smallest k with Σ_{i≤k} σ_i(R)² ≥ ε ‖R‖²_F, the energy rule applied to
  the residual alone.
With an empty old basis both are the plain energy rule.

Projection (`project_rows`) acts on the rows of a gradient (each row one vector of the embedding
space): `residual` g ← (I − U_old U_oldᵀ) g, `pretrained` g ← U_pre U_preᵀ g, `both` the first then
the second, g ← U_pre U_preᵀ (I − U_old U_oldᵀ) g. The result of `both` always lies in the
pre-trained subspace; it is also orthogonal to the old one when the two projections commute (e.g.
U_old inside span(U_pre)); otherwise the second projection can bring back a part along U_old.
`intersection_basis` gives the exact alternative: an orthonormal basis of span(U_pre) ∩ span(U_old)^⊥
(U_pre times the null space of U_oldᵀ U_pre), onto which a gradient is both in the pre-trained
subspace and orthogonal to the old one; it shrinks as old tasks fill the space.

`language_input_gram` collects G for a model: the vectors are the language model's input
embeddings (token embeddings and projected image features, after the model merged them) at the
non-padding positions, read by a pre-hook on the language model that stops the forward pass there.
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch

Projection = Literal["none", "residual", "pretrained", "both", "intersection"]
MergeRule = Literal["total", "residual"]

#: Eigenvalues below this share of the total energy are numerical noise, never a new direction.
TOLERANCE = 1e-10


def energy_rank(energies: torch.Tensor, fraction: float, total: float | torch.Tensor | None = None,
                captured: float | torch.Tensor = 0.0) -> int:
    """The smallest k with captured + Σ_{i<k} energies_i ≥ fraction · total (energies sorted
    descending; total defaults to their sum); 0 when `captured` already reaches it."""
    energies = energies.double().clamp(min=0)
    total = float(energies.sum()) if total is None else float(total)
    target = fraction * total - float(captured)
    if target <= 0 or energies.numel() == 0:
        return 0
    cumulative = energies.cumsum(0)
    k = int(torch.searchsorted(cumulative, torch.tensor([target], dtype=cumulative.dtype, device=cumulative.device)))
    return min(k + 1, energies.numel())


def gram(vectors: torch.Tensor) -> torch.Tensor:
    """X Xᵀ in float64 for vectors given as rows ([n, d] -> [d, d])."""
    rows = vectors.detach().double()
    return rows.T @ rows


def _eigen_descending(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    symmetric = (matrix + matrix.T) / 2
    values, vectors = torch.linalg.eigh(symmetric)
    return values.flip(0).clamp(min=0), vectors.flip(1)


def basis_from_gram(matrix: torch.Tensor, fraction: float) -> torch.Tensor:
    """[d, k] float64: the top-k eigenvectors of a Gram matrix by the energy rule."""
    values, vectors = _eigen_descending(matrix.double())
    total = values.sum()
    k = energy_rank(values, fraction, total) if float(total) > 0 else 0
    k = min(k, int((values > TOLERANCE * total).sum()))
    return vectors[:, :k].contiguous()


def _orthogonalise(vectors: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    for _ in range(2):  # twice: one pass leaves rounding errors of the size of the first
        vectors = vectors - basis @ (basis.T @ vectors)
    q, _ = torch.linalg.qr(vectors)
    return q


def merge_basis(basis: torch.Tensor | None, matrix: torch.Tensor, fraction: float,
                rule: MergeRule = "total") -> tuple[torch.Tensor, int]:
    """(the old basis with the new vectors' unspanned directions appended, how many were added);
    `matrix` is the new vectors' Gram matrix. See the module docstring for the rules."""
    matrix = matrix.double()
    if basis is None or basis.shape[1] == 0:
        new = basis_from_gram(matrix, fraction)
        return new, new.shape[1]
    old = basis.double().to(matrix.device)
    total = torch.trace(matrix)
    if float(total) <= 0:
        return old, 0
    captured = torch.trace(old.T @ matrix @ old)
    projector = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device) - old @ old.T
    values, vectors = _eigen_descending(projector @ matrix @ projector)
    if rule == "total":
        k = energy_rank(values, fraction, total, captured=captured)
    elif rule == "residual":
        k = energy_rank(values, fraction) if float(values.sum()) > TOLERANCE * float(total) else 0
    else:
        raise ValueError(f"unknown merge rule {rule!r}")
    k = min(k, int((values > TOLERANCE * total).sum()), matrix.shape[0] - old.shape[1])
    if k == 0:
        return old, 0
    return torch.cat([old, _orthogonalise(vectors[:, :k], old)], dim=1), k


def project_rows(grad: torch.Tensor, old: torch.Tensor | None, pretrained: torch.Tensor | None,
                 mode: Projection) -> torch.Tensor:
    """The gradient with each row (a vector of the last dimension) projected as `mode` says; a
    missing basis leaves its step out (no old tasks yet: nothing to project away from)."""
    if mode == "none":
        return grad
    rows = grad.reshape(-1, grad.shape[-1]).float()
    if mode in ("residual", "both") and old is not None and old.shape[1]:
        basis = old.to(rows.device, rows.dtype)
        rows = rows - (rows @ basis) @ basis.T
    if mode in ("pretrained", "both") and pretrained is not None:
        basis = pretrained.to(rows.device, rows.dtype)
        rows = (rows @ basis) @ basis.T
    return rows.reshape(grad.shape).to(grad.dtype)


def intersection_basis(old: torch.Tensor | None, pretrained: torch.Tensor, tolerance: float = 1e-5) -> torch.Tensor:
    """Orthonormal basis of span(pretrained) ∩ span(old)^⊥ (shape d × r, r possibly 0).

    A vector U_pre a is orthogonal to span(U_old) exactly when U_oldᵀ U_pre a = 0, so the
    intersection is U_pre times the null space of C = U_oldᵀ U_pre: the right singular vectors of
    C whose singular values (cosines of the principal angles between the subspaces) vanish.
    """
    pretrained = pretrained.double()
    if old is None or old.shape[1] == 0:
        return pretrained.float()
    cosines = old.double().T @ pretrained
    _, values, vh = torch.linalg.svd(cosines, full_matrices=True)
    rank = int((values > tolerance).sum())
    return (pretrained @ vh[rank:].T).float()


def embedding_gram(weight: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """The Gram matrix of an embedding table's rows (the vocabulary's vectors), chunk by chunk."""
    total = torch.zeros(weight.shape[1], weight.shape[1], dtype=torch.float64, device=weight.device)
    for start in range(0, weight.shape[0], chunk):
        total += gram(weight[start:start + chunk])
    return total


class _Captured(Exception):
    """Raised by the capture hook to stop a forward pass once the language model's inputs are read."""


@torch.no_grad()
def language_input_gram(model, batches: Iterable[dict]) -> tuple[torch.Tensor, int]:
    """(Gram matrix of the language model's input embeddings at the non-padding positions of the
    batches, the number of vectors). The forward pass stops at the language model's input."""
    captured: list[torch.Tensor] = []

    def capture(_module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = next((a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        if embeds is None:
            raise RuntimeError("the language model was not called with input embeddings; cannot read them")
        captured.append(embeds.detach())
        raise _Captured

    total, count = None, 0
    handle = model.language_model.register_forward_pre_hook(capture, with_kwargs=True)
    was_training = model.network.training
    model.network.eval()
    try:
        for batch in batches:
            captured.clear()
            try:
                model.forward(batch)
            except _Captured:
                pass
            if not captured:
                raise RuntimeError("the forward pass never reached the language model")
            vectors = captured[0][batch["attention_mask"].bool().to(captured[0].device)]
            part = gram(vectors)
            total = part if total is None else total + part
            count += vectors.shape[0]
    finally:
        handle.remove()
        model.network.train(was_training)
    return total, count
