"""`mcit compare`: finished runs side by side, mean ± sample standard deviation over seeds.

Runs are found from run directories, their `results.json` files, or parent folders searched for
finished runs. Runs whose resolved configuration differs only in `seed` (and `output`) form one
group; a group is labelled by method, model and benchmark, plus the settings that tell it apart
from other groups of the same method, model and benchmark (e.g. `ewc (method.lam=50)`).

Each metric is the mean over the group's seeds and the sample standard deviation (n − 1
denominator); with one seed the deviation is shown as "–". A metric a run does not define (BWT
of a multitask run, FWT without a zero-shot row) is "n/a" for its group. The table is written as
aligned text, Markdown, CSV or LaTeX. A group whose seeds ran on different package versions or
processors, or did not all record them, gets a note under a text or Markdown table (on standard
error for CSV and LaTeX).
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from mcit.core.configs import load_yaml
from mcit.core.errors import UserError
from mcit.core.files import read_json
from mcit.run.compare_environment import environment_notes

FORMATS = ("text", "markdown", "csv", "latex")

FOOTNOTE = ("mean ± sample standard deviation (n−1 denominator) over seeds; – : one seed, no deviation; "
            "n/a: not defined for these runs (e.g. BWT of a multitask run)")


@dataclass(frozen=True)
class Column:
    """One compared quantity: its key, header, how to read it from results.json, and its digits."""

    key: str
    header: str
    read: Callable[[dict[str, Any]], Any]
    digits: int = 2


def _metric(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda results: (results.get("metrics") or {}).get(name)


def _path(*keys: str) -> Callable[[dict[str, Any]], Any]:
    def read(results: dict[str, Any]) -> Any:
        value: Any = results
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return read


COLUMNS = (
    Column("ACC", "ACC", _metric("ACC")),
    Column("FAA", "FAA", _metric("FAA")),
    Column("BWT", "BWT", _metric("BWT")),
    Column("FWT", "FWT", _metric("FWT")),
    Column("MFT", "MFT", _metric("MFT")),
    Column("MAA", "MAA", _metric("MAA")),
    Column("forgetting", "forgetting", _metric("forgetting")),
    Column("trainable", "trainable params", _path("parameters", "trainable"), digits=0),
    Column("train_s", "train time (s)", _path("timing", "train_s"), digits=1),
    Column("total_s", "total time (s)", _path("timing", "total_s"), digits=1),
)


@dataclass(frozen=True)
class Run:
    """One finished run: its folder, its results and its resolved configuration (None if absent)."""

    path: Path
    results: dict[str, Any]
    config: dict[str, Any] | None

    @property
    def seed(self) -> Any:
        return self.results.get("seed")


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of one quantity over a group's runs."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[Any]) -> "Stat":
        """None for the mean if any run lacks the value; None for the deviation with fewer than two runs."""
        if not values or any(v is None or isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            return cls(None, None, len(values))
        numbers = [float(v) for v in values]
        return cls(statistics.fmean(numbers), statistics.stdev(numbers) if len(numbers) > 1 else None, len(numbers))


@dataclass
class Group:
    """Runs that differ only in their seed."""

    method: str
    model: str
    benchmark: str
    fingerprint: str
    runs: list[Run] = field(default_factory=list)
    variant: str = ""

    @property
    def label(self) -> str:
        return f"{self.method} ({self.variant})" if self.variant else self.method

    @property
    def seeds(self) -> list[Any]:
        return [run.seed for run in self.runs]

    def stat(self, column: Column) -> Stat:
        return Stat.of([column.read(run.results) for run in self.runs])

    @property
    def acc(self) -> Stat:
        """The final accuracy over the group's seeds."""
        return self.stat(COLUMNS[0])


# finding runs
def _is_results(data: Any) -> bool:
    return isinstance(data, dict) and "accuracy_matrix" in data and "method" in data


def _load_run(results_file: Path, strict: bool) -> Run | None:
    data = read_json(results_file)
    if not _is_results(data):
        if strict:
            raise UserError(f"{results_file}: not an mcit results file (no method or accuracy_matrix); "
                            "pass the folder of a run made with `mcit run`")
        return None
    config_file = results_file.parent / "config.yaml"
    config = load_yaml(config_file) if config_file.exists() else None
    return Run(results_file.parent, data, config if isinstance(config, dict) else None)


def _files_named(folder: Path, name: str) -> list[Path]:
    """Every file called `name` below `folder`, sorted, following links to folders.

    A folder of links to runs made elsewhere (to compare a chosen set) is searched like a folder
    of runs; each real folder is entered once, so a link back up the tree ends the walk there.
    """
    found: list[Path] = []
    entered: set[Path] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = Path(root).resolve()
        if real in entered:
            dirs[:] = []
            continue
        entered.add(real)
        if name in files and (Path(root) / name).is_file():
            found.append(Path(root) / name)
    return sorted(found)


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Finished runs under `paths`, in the order given (folders searched in sorted path order).

    A path is a run directory, its results.json, or a folder whose subfolders hold runs. Each run
    appears once even when reached twice.
    """
    runs: list[Run] = []
    seen: set[Path] = set()
    paths = list(paths)
    if not paths:
        raise UserError("no runs given; pass run directories or folders that contain them")
    for item in paths:
        path = Path(item).expanduser()
        if not path.exists():
            raise UserError(f"{path}: no such file or folder; pass run directories or folders that contain them")
        if path.is_file():
            if path.name != "results.json":
                raise UserError(f"{path}: not a run; pass a run directory, its results.json or a folder of runs")
            candidates, strict = [path], True
        elif (path / "results.json").exists():
            candidates, strict = [path / "results.json"], True
        else:
            candidates, strict = _files_named(path, "results.json"), False
        found = [run for file in candidates if (run := _load_run(file, strict)) is not None]
        if not found:
            unfinished = (path / "config.yaml").exists() or bool(_files_named(path, "progress.json"))
            hint = ("; its runs are unfinished: continue them with `mcit run ... --resume`" if unfinished
                    else "; pass a run directory or a folder of runs made with `mcit run`")
            raise UserError(f"{path}: no finished runs (no results.json in it or its subfolders){hint}")
        for run in found:
            key = run.path.resolve()
            if key not in seen:
                seen.add(key)
                runs.append(run)
    return runs


# grouping
def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`train.lr`); lists and scalars are leaves."""
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}


IGNORED_KEYS = ("seed", "output")


def _settings(run: Run) -> dict[str, Any]:
    """What defines a run apart from its seed: the resolved config, or what results.json tells."""
    if run.config is not None:
        return {k: v for k, v in flatten(run.config).items() if k not in IGNORED_KEYS}
    r = run.results
    return {"method.name": r.get("method"), "model.name": r.get("model"), "benchmark.name": r.get("benchmark"),
            "benchmark.tasks": r.get("tasks")}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs grouped by everything but their seed, in order of first appearance."""
    groups: dict[str, Group] = {}
    settings: dict[str, dict[str, Any]] = {}
    for run in runs:
        values = _settings(run)
        r = run.results
        fingerprint = json.dumps([r.get("method"), r.get("model"), r.get("benchmark"), r.get("tasks"), values],
                                 sort_keys=True, default=str)
        if fingerprint not in groups:
            groups[fingerprint] = Group(str(r.get("method")), str(r.get("model")), str(r.get("benchmark")), fingerprint)
            settings[fingerprint] = values
        groups[fingerprint].runs.append(run)
    # groups that share method, model and benchmark are told apart by the settings that differ
    by_label: dict[tuple[str, str, str], list[str]] = {}
    for key, group in groups.items():
        by_label.setdefault((group.method, group.model, group.benchmark), []).append(key)
    for keys in by_label.values():
        if len(keys) < 2:
            continue
        names = sorted(set().union(*(settings[k] for k in keys)))
        differing = [n for n in names if len({_show(settings[k].get(n)) for k in keys}) > 1]
        for k in keys:
            groups[k].variant = ", ".join(f"{n}={_show(settings[k].get(n))}" for n in differing)
    return list(groups.values())


def compare(paths: Iterable[str | Path]) -> list[Group]:
    """Find the finished runs under `paths` and group them."""
    return group_runs(find_runs(paths))


# formatting
def _number(value: float, digits: int) -> str:
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def cell(stat: Stat, digits: int, plus_minus: str = "±", dash: str = "–") -> str:
    """`mean ± std`, `mean ± –` for one seed, `n/a` when undefined; counts (no digits, e.g.
    trainable parameters) show only their mean when they do not vary."""
    if stat.mean is None:
        return "n/a"
    mean = _number(stat.mean, digits)
    if digits == 0 and not stat.std:
        return mean
    if stat.std is None:
        return f"{mean} {plus_minus} {dash}"
    return f"{mean} {plus_minus} {_number(stat.std, digits)}"


def _seeds(group: Group) -> str:
    return f"{len(group.runs)} ({', '.join(str(s) for s in group.seeds)})"


HEADERS = ("method", "model", "benchmark", "seeds", *(c.header for c in COLUMNS))


def table_rows(groups: Sequence[Group], plus_minus: str = "±", dash: str = "–") -> list[list[str]]:
    """One row of cell strings per group, in the order of `HEADERS`."""
    return [[g.label, g.model, g.benchmark, _seeds(g), *(cell(g.stat(c), c.digits, plus_minus, dash) for c in COLUMNS)]
            for g in groups]


def format_text(groups: Sequence[Group]) -> str:
    rows = [list(HEADERS), *table_rows(groups)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(v.ljust(w) if i < 4 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n\n{FOOTNOTE}\n" + _notes(groups)


def _notes(groups: Sequence[Group]) -> str:
    """The environment notes under a text or Markdown table, one paragraph each."""
    return "".join(f"\n{note}\n" for note in environment_notes(groups))


def format_markdown(groups: Sequence[Group]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(escape(v) for v in row) + " |" for row in table_rows(groups)]
    return "\n".join(lines) + f"\n\n{FOOTNOTE}\n" + _notes(groups)


def format_csv(groups: Sequence[Group]) -> str:
    """Machine-readable: a mean and a sample-std column per quantity; empty cells where undefined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["method", "variant", "model", "benchmark", "tasks", "n", "seeds",
                     *(f"{c.key}_{part}" for c in COLUMNS for part in ("mean", "sample_std"))])
    for g in groups:
        stats = [g.stat(c) for c in COLUMNS]
        writer.writerow([g.method, g.variant, g.model, g.benchmark, " ".join(g.runs[0].results.get("tasks", [])),
                         len(g.runs), " ".join(str(s) for s in g.seeds),
                         *(("" if v is None else repr(v)) for s in stats for v in (s.mean, s.std))])
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_cell(text: str) -> str:
    """A cell made with `plus_minus="PLUSMINUS", dash="DASH"` as LaTeX: escaped, with $\\pm$, -- and $-$."""
    return latex_escape(text).replace("PLUSMINUS", r"$\pm$").replace("DASH", "--").replace("−", "$-$")


def latex_footnote(columns: int) -> str:
    """The table's footnote as a last row spanning `columns` columns."""
    note = latex_cell(FOOTNOTE.replace("–", "DASH").replace("±", "PLUSMINUS"))
    return f"\\multicolumn{{{columns}}}{{l}}{{\\footnotesize {note}}} \\\\"


def format_latex(groups: Sequence[Group]) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}) with the footnote as its last line."""
    rows = table_rows(groups, plus_minus="PLUSMINUS", dash="DASH")
    spec = "llll" + "r" * len(COLUMNS)
    lines = ["% mcit compare: needs \\usepackage{booktabs}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_cell(h) for h in HEADERS) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_cell(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", latex_footnote(len(HEADERS)), r"\end{tabular}"]
    return "\n".join(lines) + "\n"


FORMATTERS = {"text": format_text, "markdown": format_markdown, "csv": format_csv, "latex": format_latex}


def format_table(groups: Sequence[Group], fmt: str = "text") -> str:
    """The comparison table in one of `FORMATS`."""
    if fmt not in FORMATTERS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return FORMATTERS[fmt](groups)
