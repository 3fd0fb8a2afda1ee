"""The `deterministic` switch: deterministic kernels for the length of a run.

On a CPU a run is already deterministic for a given seed and machine. On a GPU some kernels are
not (atomic additions in scatter/index_add and in some backward passes, cuBLAS's split-K
reductions, cuDNN's autotuned algorithm choice); `deterministic: true` asks PyTorch for
deterministic kernels (`torch.use_deterministic_algorithms`, which raises on an operation that
has none), turns cuDNN's autotuner off and sets `CUBLAS_WORKSPACE_CONFIG`, which cuBLAS needs
for reproducible results; see docs/determinism.md.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

#: cuBLAS's documented workspace setting for reproducible results (CUDA 10.2 and later).
CUBLAS_WORKSPACE = ":4096:8"


@contextlib.contextmanager
def deterministic_kernels(enabled: bool) -> Iterator[None]:
    """Within the block, use deterministic kernels when `enabled`; restore the previous settings after."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    # Read when cuBLAS creates its handle: effective when set before the run's first matrix product on the GPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[2], previous[3]
