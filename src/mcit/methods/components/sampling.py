"""Seeded draws that are identical on every process and in a resumed run.

Methods draw samples (importance samples, buffer contents, reference batches) from generators
seeded by the run's seed and a description of the draw (the task's name, the step), never from
the global random state: the same draw then happens on every process of a distributed run and
again after a resume, whatever else consumed random numbers in between.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

import torch

T = TypeVar("T")


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from the given parts (stable across processes and Python runs, unlike hash())."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") >> 1


def generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded by `stable_seed(*parts)`."""
    return torch.Generator().manual_seed(stable_seed(*parts))


def permutation(total: int, *seed_parts: object) -> list[int]:
    """A seeded random order of `range(total)`."""
    return torch.randperm(total, generator=generator(*seed_parts)).tolist()


def sample_indices(total: int, count: int | None, *seed_parts: object) -> list[int]:
    """`count` distinct indices out of `range(total)` drawn uniformly (all of them when count is
    None or at least total), in the drawn order."""
    if count is None or count >= total:
        return list(range(total))
    return permutation(total, *seed_parts)[:count]


def sample(items: Sequence[T], count: int | None, *seed_parts: object) -> list[T]:
    """`count` distinct items of `items` drawn uniformly (see `sample_indices`)."""
    return [items[i] for i in sample_indices(len(items), count, *seed_parts)]


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """This process's share of `items` (item i goes to process i mod world)."""
    return list(items[rank::world])
