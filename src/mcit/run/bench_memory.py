"""Peak memory of one training step, on a GPU and on a CPU (for `mcit bench`).

GPU: `torch.cuda.max_memory_allocated` over the step, after resetting the peak: the most bytes
torch tensors held on the device at any moment of the step, everything resident included (the
caching allocator's unused reserve is not counted).

CPU: torch keeps no allocator statistics for the CPU, so the figure is put together from two
parts of the same kind:
- resident tensors, counted: the model's parameters and buffers, the optimiser's state and every
  tensor the method holds (its state and its caches, found by walking its attributes), each
  storage once (what lives across steps);
- the step's transient peak, measured: the highest running total of bytes allocated minus bytes
  freed during the step, from the allocation events of torch's profiler (`profile_memory`), which
  sees every CPU tensor allocation (activations, gradients, optimiser and method temporaries).

It is the CPU counterpart of the GPU figure: bytes held by torch tensors, not the process's
resident set (Python objects, the allocator's free lists, libraries and code are left out). Frees
of tensors allocated before the step are invisible to the profiler, so a step that drops an older
tensor is counted as if it kept it (never less than the truth).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Iterable, Iterator

import torch


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (views and repeats counted once)."""
    seen: set[int] = set()
    total = 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in seen or storage.nbytes() == 0:
            continue
        seen.add(key)
        total += storage.nbytes()
    return total


def held_tensors(root: Any) -> Iterator[torch.Tensor]:
    """Every tensor reachable from `root` through mcit's own objects, dicts, lists, tuples and sets,
    and the parameters and buffers of modules met on the way (other libraries' objects are not
    entered)."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, torch.Tensor):
            yield node
        elif isinstance(node, torch.nn.Module):
            yield from node.parameters()
            yield from node.buffers()
        elif isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, (list, tuple, set, frozenset)):
            pending.extend(node)
        elif type(node).__module__.startswith("mcit.") and hasattr(node, "__dict__"):
            pending.extend(vars(node).values())


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side logs its start, stop and a
    warning about frees it cannot attribute, which would clutter the benchmark's output."""
    sys.stderr.flush()
    saved, sink = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(sink)


def cpu_transient_peak(step: Callable[[], object]) -> int:
    """The highest running total of CPU bytes allocated minus freed while `step` runs."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    events = [e for e in profiler.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def gpu_step_peak(step: Callable[[], object], device: torch.device) -> int:
    """`torch.cuda.max_memory_allocated` over `step`."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def step_peak_bytes(step: Callable[[], object], device: torch.device,
                    resident: Callable[[], Iterable[torch.Tensor]]) -> int:
    """Peak bytes of tensors while `step` runs (see the module docstring); `resident` gives the
    tensors that live across steps, counted on a CPU (a GPU's own statistics include them)."""
    if device.type == "cuda":
        return gpu_step_peak(step, device)
    return storage_bytes(resident()) + cpu_transient_peak(step)
