"""A test hook: the process kills itself at a named point, to test recovery from crashes.

With the environment variable `MCIT_TEST_KILL_AT=POINT:N` (e.g. `step:5`) the process sends
itself SIGKILL the N-th time it reaches POINT: no exception handler, `finally` block or buffer
flush runs, as after a power cut or the out-of-memory killer. Unset, as in every normal run, it
does nothing. Only mcit's tests set it.

Points: `step` (after an optimiser step and the checkpoint at that step, if any), `checkpoint`
(half-way through writing a checkpoint: after its weights), `eval` (after one task's evaluation).
"""

from __future__ import annotations

import os
import signal

VARIABLE = "MCIT_TEST_KILL_AT"
_passes: dict[str, int] = {}


def reached(point: str) -> None:
    """Count a pass through `point`; SIGKILL this process on the pass `MCIT_TEST_KILL_AT` names."""
    spec = os.environ.get(VARIABLE)
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if _passes[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
