"""What the user sees: a progress bar per task and per evaluation, then the matrix and metrics."""

from __future__ import annotations

import sys
from typing import Any, Sequence


class Console:
    """Progress bars and messages, shown by the main process only."""

    def __init__(self, enabled: bool = True, quiet: bool = False):
        self.enabled = enabled and not quiet
        self.show_results = enabled

    def say(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        """A warning on stderr, shown even with --quiet (on the main process only)."""
        if self.show_results:
            print(f"mcit: warning: {text}", file=sys.stderr, flush=True)

    def result(self, text: str) -> None:
        if self.show_results:
            print(text, flush=True)

    def bar(self, total: int, description: str, unit: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=description, unit=unit, disable=not self.enabled, leave=False,
                    dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def _cell(value: float | None, width: int) -> str:
    return ("-" if value is None else f"{value:.1f}").rjust(width)


def format_matrix(tasks: Sequence[str], rows: Sequence[str], matrix: Sequence[Sequence[float | None]]) -> str:
    """The accuracy matrix as a text table: one row per evaluation point, one column per task."""
    width = max(7, *(len(t) for t in tasks)) + 1
    label_width = max(len("after"), *(len(r) for r in rows)) + 2
    lines = ["".ljust(label_width) + "".join(t.rjust(width) for t in tasks)]
    for label, row in zip(rows, matrix):
        lines.append(label.ljust(label_width) + "".join(_cell(v, width) for v in row))
    return "\n".join(lines)


METRIC_ORDER = ("ACC", "FAA", "MAA", "MFT", "BWT", "FWT", "forgetting")


def format_metrics(metrics: dict[str, Any]) -> str:
    """The headline metrics on one line each."""
    lines = []
    for key in METRIC_ORDER:
        value = metrics.get(key)
        lines.append(f"  {key:<11}{'n/a' if value is None else f'{value:8.2f}'}")
    return "\n".join(lines)
