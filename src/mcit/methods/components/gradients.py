"""Vector operations over lists of gradient tensors, for plain and sharded parameters.

A method that edits gradients (A-GEM's projection, DGG's guidance) treats the gradients of all
trainable tensors as one long vector. These functions compute dot products and norms of such
vectors with `torch._foreach_*` multi-tensor kernels and return 0-dimensional float32 tensors on
the device, so nothing waits for the device per tensor, and a conditional update (project only
when the dot product is negative) needs no host synchronisation at all.

Sharded parameters: when a tensor is a `DTensor` (FSDP2 and other `torch.distributed.tensor`
users), each process holds a piece of it. Sums are then taken over the local pieces and
all-reduced over the mesh dimensions the tensor is sharded on (not over replicated ones), so every
process gets the value for the whole vectors. In-place updates act on the local pieces, which is
correct because the scalars involved are already global. Plain tensors are whole on every process
and are never reduced.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

Tensors = Sequence[torch.Tensor]


def _is_dtensor(tensor: torch.Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch built without distributed support
        return False
    return isinstance(tensor, DTensor)


def local(tensors: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """The local pieces of DTensors (views: writing to them writes the DTensor), plain tensors as they are."""
    return [t.to_local() if _is_dtensor(t) else t for t in tensors]


def _shard_groups(tensors: Tensors) -> dict[tuple, tuple[object, tuple[int, ...], list[int]]]:
    """Indices of `tensors` grouped by (mesh, sharded mesh dims); plain tensors under key ()."""
    from_key: dict[tuple, tuple[object, tuple[int, ...], list[int]]] = {}
    for i, t in enumerate(tensors):
        mesh, dims = None, ()
        if _is_dtensor(t):
            from torch.distributed.tensor import Shard

            dims = tuple(d for d, placement in enumerate(t.placements) if isinstance(placement, Shard))
            mesh = t.device_mesh if dims else None
        key = (id(mesh), dims) if dims else ()
        from_key.setdefault(key, (mesh, dims, []))[2].append(i)
    return from_key


def _global_sum(tensors: Tensors, partials: list[torch.Tensor]) -> torch.Tensor:
    """Σ partials, where partials[i] is the local contribution of tensors[i]; contributions of
    sharded tensors are all-reduced over their shard dimensions."""
    if not partials:
        return torch.zeros(())
    total = None
    for mesh, dims, indices in _shard_groups(tensors).values():
        part = torch.stack([partials[i].float() for i in indices]).sum()
        if dims:
            import torch.distributed as dist

            for dim in dims:
                dist.all_reduce(part, op=dist.ReduceOp.SUM, group=mesh.get_group(dim))
        total = part if total is None else total + part.to(total.device)
    return total


def _float(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t if t.dtype == torch.float32 else t.float() for t in tensors]


def dot(a: Tensors, b: Tensors) -> torch.Tensor:
    """Σ over all elements of a · b (the two lists pair tensor by tensor)."""
    if len(a) != len(b):
        raise ValueError(f"dot product of {len(a)} and {len(b)} tensors")
    if not a:
        return torch.zeros(())
    products = torch._foreach_mul(_float(local(a)), _float(local(b)))
    return _global_sum(a, [p.sum() for p in products])


def squared_norm(a: Tensors) -> torch.Tensor:
    """Σ over all elements of a²."""
    if not a:
        return torch.zeros(())
    norms = torch._foreach_norm(_float(local(a)))
    return _global_sum(a, torch._foreach_mul(norms, norms))


def norms(a: Tensors, layout: Tensors | None = None) -> list[torch.Tensor]:
    """Each tensor's Euclidean norm, as 0-dimensional float32 tensors on the device.

    A sharded tensor's norm is over the whole tensor: the squared norms of the local pieces are
    all-reduced over its shard dimensions, one collective per mesh dimension for all tensors
    sharded alike. `layout`: when `a` holds local pieces (e.g. θ − θ* computed piece by piece),
    the DTensors whose sharding they follow; by default `a` itself.
    """
    if not a:
        return []
    out = list(torch._foreach_norm(_float(local(a))))
    for mesh, dims, indices in _shard_groups(layout if layout is not None else a).values():
        if dims:
            import torch.distributed as dist

            squared = torch.stack([out[i] for i in indices]).square()
            for dim in dims:
                dist.all_reduce(squared, op=dist.ReduceOp.SUM, group=mesh.get_group(dim))
            for i, value in zip(indices, squared.sqrt().unbind()):
                out[i] = value
    return out


def norm(a: Tensors) -> torch.Tensor:
    """The Euclidean norm of the concatenation of `a`."""
    return squared_norm(a).sqrt()


def add_scaled_(a: Tensors, b: Tensors, alpha: float | torch.Tensor) -> None:
    """a ← a + alpha · b in place; alpha a number or a 0-dim tensor (no host synchronisation)."""
    pieces_a, pieces_b = local(a), local(b)
    if isinstance(alpha, torch.Tensor):
        scaled = torch._foreach_mul(pieces_b, alpha.to(pieces_a[0].device) if pieces_a else alpha)
        scaled = [s.to(p.dtype) for s, p in zip(scaled, pieces_a)]
        torch._foreach_add_(pieces_a, scaled)
    else:
        torch._foreach_add_(pieces_a, [x.to(p.dtype) for x, p in zip(pieces_b, pieces_a)], alpha=alpha)


def projection_coefficient(g: Tensors, r: Tensors, only_if_negative: bool = False,
                           eps: float = 1e-12) -> torch.Tensor:
    """c = (g·r) / (r·r), the amount of r in g; with `only_if_negative`, min(g·r, 0) / (r·r),
    which is zero when g and r already agree (A-GEM's rule)."""
    dot_gr = dot(g, r)
    if only_if_negative:
        dot_gr = dot_gr.clamp(max=0.0)
    return dot_gr / squared_norm(r).clamp(min=eps)


def project_out_(g: Tensors, r: Tensors, only_if_negative: bool = False) -> torch.Tensor:
    """g ← g − (g·r / r·r) r in place (see `projection_coefficient`); returns the coefficient."""
    coefficient = projection_coefficient(g, r, only_if_negative)
    add_scaled_(g, r, -coefficient)
    return coefficient


def project_out(g: Tensors, r: Tensors, only_if_negative: bool = False) -> list[torch.Tensor]:
    """g − (g·r / r·r) r as new tensors (see `project_out_`)."""
    out = [t.clone() for t in g]
    project_out_(out, r, only_if_negative)
    return out


# ---- reading and writing the gradients of parameters -------------------------------------------


def gradients(parameters: Sequence[torch.nn.Parameter]) -> list[torch.Tensor]:
    """Each parameter's `.grad`, with a zero tensor created (and attached) where it is None, so the
    result can be edited in place and pairs one to one with `parameters`."""
    grads = []
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    return grads


def set_gradients(parameters: Sequence[torch.nn.Parameter], values: Tensors) -> None:
    """Write `values` into the parameters' gradients (copying into existing ones)."""
    if len(parameters) != len(values):
        raise ValueError(f"{len(values)} gradients for {len(parameters)} parameters")
    existing = [p for p in parameters if p.grad is not None]
    if len(existing) == len(parameters):
        torch._foreach_copy_(local([p.grad for p in parameters]), local(values))
        return
    for p, v in zip(parameters, values):
        p.grad = v.detach().clone().to(p.dtype)


def ordered(named: dict[str, torch.Tensor], names: Sequence[str]) -> list[torch.Tensor]:
    """The tensors of a {name: tensor} mapping in the order of `names` (e.g. `ctx.gradient_of`'s
    result in the order of the trainable parameters)."""
    return [named[n] for n in names]


# ---- whole tensors and their local pieces -------------------------------------------------------


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor: a DTensor gathered from all processes (a collective every process must
    call), a plain tensor as it is."""
    return tensor.full_tensor() if _is_dtensor(tensor) else tensor


def local_like(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """This process's piece of the whole tensor `value`, laid out as `reference`, on its device:
    for a DTensor reference the local piece of its sharding (cut locally, without communication,
    so `value` must be the same on every process), for a plain one `value` itself."""
    if _is_dtensor(reference):
        from torch.distributed.tensor import distribute_tensor

        piece = value.to(reference.to_local().device)
        return distribute_tensor(piece, reference.device_mesh, reference.placements, src_data_rank=None).to_local()
    return value.to(reference.device)
