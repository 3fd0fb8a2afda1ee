"""`mcit compare --by-type`: every task's score split by question type, mean ± std over seeds.

A task's score can hide that one kind of question is answered and another never is ("how many
circles" right, "subtract all red objects" wrong). Runs record each task's score per question
type (`per_task.TASK.by_type_by_row` in `results.json`) when the task's records carry one, as
the built-in stream's `choice`, `vqa`, `unanswerable`, `ground` and `count` do. This table has
one row per group of runs, task and question type with two scores: right after the task was
learned (the matrix row after its own stage; n/a for a joint run) and at the end of the stream,
so forgetting shows per question type too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Sequence

from mcit.core.errors import UserError
from mcit.run.compare import FOOTNOTE, Group, Stat, cell, latex_cell, latex_footnote
from mcit.run.compare_environment import environment_notes

HEADERS = ("method", "model", "benchmark", "seeds", "task", "question type", "n", "learned", "final")


@dataclass(frozen=True)
class TypeRow:
    """One group's scores on one question type of one task."""

    group: Group
    task: str
    question_type: str
    n: int | None
    learned: Stat
    final: Stat


def _by_row(results: dict[str, Any], task: str) -> list[dict]:
    entry = (results.get("per_task") or {}).get(task) or {}
    rows = entry.get("by_type_by_row")
    return rows if isinstance(rows, list) else []


def _learned_row(results: dict[str, Any], task: str) -> int | None:
    """The matrix row right after the stage that trained `task` alone, if the run had one."""
    labels = results.get("rows") or []
    return labels.index(f"after {task}") if f"after {task}" in labels else None


def _score(rows: list[dict], index: int | None, question_type: str) -> float | None:
    if index is None or not -len(rows) <= index < len(rows):
        return None
    entry = (rows[index] or {}).get(question_type)
    return entry.get("score") if isinstance(entry, dict) else None


def type_rows(groups: Sequence[Group]) -> list[TypeRow]:
    """The rows of the table, in the groups' order, then their tasks' order, then the order the
    question types first appear. A group whose runs lack a type (or a score) gets n/a for it."""
    table: list[TypeRow] = []
    for group in groups:
        for task in group.runs[0].results.get("tasks") or []:
            kinds: dict[str, int | None] = {}
            for run in group.runs:
                for row in _by_row(run.results, task):
                    for kind, entry in (row or {}).items():
                        kinds.setdefault(kind, entry.get("n") if isinstance(entry, dict) else None)
            for kind, n in kinds.items():
                learned = [_score(_by_row(r.results, task), _learned_row(r.results, task), kind) for r in group.runs]
                final = [_score(_by_row(r.results, task), -1, kind) for r in group.runs]
                table.append(TypeRow(group, task, kind, n, Stat.of(learned), Stat.of(final)))
    if not table:
        raise UserError("none of these runs has scores by question type: their tasks' test records carry no "
                        "'question_type' (the built-in stream's choice, vqa, unanswerable, ground and count do, "
                        "in runs made with this version of mcit); add one to the records to split a task's score")
    return table


def row_cells(row: TypeRow, plus_minus: str = "±", dash: str = "–") -> list[str]:
    """The row's cells as strings, in the order of `HEADERS`."""
    g = row.group
    seeds = f"{len(g.runs)} ({', '.join(str(s) for s in g.seeds)})"
    return [g.label, g.model, g.benchmark, seeds, row.task, row.question_type, "" if row.n is None else str(row.n),
            cell(row.learned, 2, plus_minus, dash), cell(row.final, 2, plus_minus, dash)]


def _text(rows: list[TypeRow]) -> str:
    table = [list(HEADERS), *(row_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    lines = []
    for index, line in enumerate(table):
        cells = (v.rjust(w) if i >= 6 else v.ljust(w) for i, (v, w) in enumerate(zip(line, widths)))
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n\n{FOOTNOTE}\n"


def _markdown(rows: list[TypeRow]) -> str:
    rule = "|".join("---:" if i >= 6 else "---" for i in range(len(HEADERS)))
    lines = ["| " + " | ".join(HEADERS) + " |", f"|{rule}|"]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + f"\n\n{FOOTNOTE}\n"


def _csv(rows: list[TypeRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "variant", "model", "benchmark", "n_runs", "seeds", "task", "question_type", "n",
                     "learned_mean", "learned_sample_std", "final_mean", "final_sample_std"])
    for r in rows:
        g = r.group
        values = (r.learned.mean, r.learned.std, r.final.mean, r.final.std)
        writer.writerow([g.method, g.variant, g.model, g.benchmark, len(g.runs), " ".join(str(s) for s in g.seeds),
                         r.task, r.question_type, "" if r.n is None else r.n,
                         *("" if v is None else repr(v) for v in values)])
    return out.getvalue()


def _latex(rows: list[TypeRow]) -> str:
    lines = ["% mcit compare --by-type: needs \\usepackage{booktabs}", f"\\begin{{tabular}}{{{'l' * 6 + 'rrr'}}}",
             r"\toprule", " & ".join(latex_cell(h) for h in HEADERS) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_cell(v) for v in row_cells(r, "PLUSMINUS", "DASH")) + r" \\" for r in rows]
    lines += [r"\bottomrule", latex_footnote(len(HEADERS)), r"\end{tabular}"]
    return "\n".join(lines) + "\n"


FORMATTERS = {"text": _text, "markdown": _markdown, "csv": _csv, "latex": _latex}


def format_type_table(groups: Sequence[Group], fmt: str = "text") -> str:
    """The by-type table of `groups` in one of the formats of `mcit compare`, with the notes on
    groups whose seeds ran on different package versions or processors under a text or Markdown table."""
    if fmt not in FORMATTERS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATTERS)}")
    table = FORMATTERS[fmt](type_rows(groups))
    if fmt in ("text", "markdown"):
        table += "".join(f"\n{note}\n" for note in environment_notes(groups))
    return table
