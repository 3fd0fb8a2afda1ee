"""Plain-text tables of `mcit bench` results: the step table and, when measured, the growth tables."""

from __future__ import annotations

from typing import Any


def format_bytes(value: float | None) -> str:
    """Bytes in binary units: 512 B, 1.4 KiB, 10.1 MiB, 13.5 GiB."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(results: dict[str, Any]) -> str:
    """The step table: time, peak memory and state of the plain loop and every method."""
    settings = results["settings"]
    lines = [f"mcit bench: {results['model']} on {results['device']}, batch {results['batch']}",
             f"step time: median over {settings['repeats']} rounds of {settings['steps']} steps after "
             f"{settings['warmup']} warm-up steps; methods timed on task {settings['timed_task']} of a synthetic "
             "stream; ratios against seqft in this run", ""]
    header = f"{'':<12} {'step':>9} {'x seqft':>8} {'peak memory':>12} {'x seqft':>8} {'state':>10} {'added params':>13}"
    lines.append(header)
    lines.append("-" * len(header))
    rows = [("plain loop", results["baseline"])] + list(results["methods"].items())
    for name, entry in rows:
        lines.append(f"{name:<12} {entry['step_time_s'] * 1000:>7.1f}ms {_ratio(entry['step_time_ratio']):>8} "
                     f"{format_bytes(entry['peak_memory_bytes']):>12} {_ratio(entry['peak_memory_ratio']):>8} "
                     f"{format_bytes(entry.get('state_bytes')):>10} {format_bytes(entry.get('added_parameter_bytes')):>13}")
    return "\n".join(lines) + "\n"


def format_growth(results: dict[str, Any]) -> str:
    """Two tables over the growth points: state (plus added parameters) and step time against seqft."""
    growth = results.get("growth") or {}
    if not growth:
        return ""
    width = 24
    points = [row["tasks"] for row in next(iter(growth.values()))]
    head = f"{'':<12}" + "".join(f"{f'{k} task' + ('s' if k > 1 else ''):>{width}}" for k in points)
    lines = ["state + added parameters after N finished tasks", head, "-" * len(head)]
    for name, rows in growth.items():
        cells = [format_bytes(r["state_bytes"]) + " + " + format_bytes(r["added_parameter_bytes"]) for r in rows]
        lines.append(f"{name:<12}" + "".join(f"{c:>{width}}" for c in cells))
    lines += ["", "step time against seqft after N finished tasks", head, "-" * len(head)]
    for name, rows in growth.items():
        lines.append(f"{name:<12}" + "".join(f"{_ratio(r['step_time_ratio']):>{width}}" for r in rows))
    return "\n".join(lines) + "\n"
