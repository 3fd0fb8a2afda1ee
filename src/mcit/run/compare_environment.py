"""Say when the seeds of one `mcit compare` group ran on different software or processors, or did
not all record what they ran on.

A mean ± std over seeds is read as seed noise. When the seeds also ran on different package
versions or processor generations, part of the spread is the install or the machine, and a
seed rerun elsewhere will not reproduce the cell (docs/determinism.md). The notes name each
recorded quantity that differs within a group and which seeds had which value.
"""

from __future__ import annotations

from typing import Any, Sequence

#: The sections of `results.json`'s `environment` that are compared key by key.
SECTIONS = ("cpu", "packages")
#: Top-level entries compared as they are; `platform` (the kernel and C library) is left out.
SCALARS = ("python", "torch", "device")


def _seeds(seeds: Sequence[Any]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def _by_value(pairs: Sequence[tuple[Any, Any]]) -> str:
    """'a (seeds 0, 1), b (seed 2)' for (seed, value) pairs, values in order of first appearance."""
    groups: dict[str, list[Any]] = {}
    for seed, value in pairs:
        groups.setdefault("not recorded" if value is None else str(value), []).append(seed)
    return ", ".join(f"{value} ({_seeds(seeds)})" for value, seeds in groups.items())


def _sections(runs: Sequence[tuple[Any, dict[str, Any]]]) -> list[tuple[str, list[tuple[Any, dict]], list[str]]]:
    """For each of `SECTIONS`: the (seed, section) pairs of the runs that recorded it, and the
    sorted union of their keys."""
    out = []
    for section in SECTIONS:
        having = [(seed, env[section]) for seed, env in runs if isinstance(env.get(section), dict)]
        out.append((section, having, sorted(set().union(*(values for _, values in having)))))
    return out


def unrecorded(runs: Sequence[tuple[Any, dict[str, Any]]]) -> list[str]:
    """The sections, and the keys within a section, that some of the (seed, environment) pairs lack:
    runs made before they were recorded."""
    parts = []
    for section, having, keys in _sections(runs):
        if having and len(having) < len(runs):
            parts.append(f"{section} recorded for {_seeds([seed for seed, _ in having])} only")
        for key in keys:
            seeds = [seed for seed, values in having if key in values]
            if len(seeds) < len(having):
                parts.append(f"{section}.{key} recorded for {_seeds(seeds)} only")
    return parts


def differences(runs: Sequence[tuple[Any, dict[str, Any]]]) -> list[str]:
    """What differs among (seed, environment) pairs, one phrase per quantity; empty when nothing does.

    Each key of a section is compared among the runs that recorded it (see `unrecorded`).
    """
    parts: list[str] = []
    for key in SCALARS:
        pairs = [(seed, env.get(key)) for seed, env in runs]
        if len({str(v) for _, v in pairs}) > 1:
            parts.append(f"{key} {_by_value(pairs)}")
    for section, having, keys in _sections(runs):
        for key in keys:
            pairs = [(seed, values[key]) for seed, values in having if key in values]
            if len({str(v) for _, v in pairs}) > 1:
                parts.append(f"{section}.{key} {_by_value(pairs)}")
    return parts


def environment_notes(groups: Sequence[Any]) -> list[str]:
    """One line per `compare.Group` whose seeds ran on different software or processors, or did not
    all record what they ran on."""
    notes = []
    for group in groups:
        runs = [(run.seed, run.results.get("environment") or {}) for run in group.runs]
        if len(runs) < 2:
            continue
        name = f"{group.label} ({group.model})"
        if parts := differences(runs):
            notes.append(f"note: the seeds of {name} ran on different software or processors: {'; '.join(parts)}")
        if missing := unrecorded(runs):
            notes.append(f"note: not every seed of {name} recorded what it ran on: {'; '.join(missing)}")
    return notes
