"""`mcit report`: one self-contained HTML page (and optionally SVG/PNG files) for finished runs.

The page holds the comparison table of `mcit compare` (and its scores by question type, for runs
whose tasks have them) and, per run, its metrics, accuracy-matrix
heatmap, A_t curve, per-task forgetting, task-similarity heatmap (methods that measure it) and the
resolved configuration. CSS and figures are inline (SVG drawn by `mcit.run.figures`), so the file
opens anywhere without network access. Every text that comes from a run is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from mcit.core.errors import UserError
from mcit.run.compare import FOOTNOTE, HEADERS, Group, Run, find_runs, group_runs, table_rows
from mcit.run.compare_types import HEADERS as TYPE_HEADERS
from mcit.run.compare_types import row_cells, type_rows
from mcit.run.figures import Figure, comparison_figure, run_figures

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1400px;
       color: #1d1d1d; background: #ffffff; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #d6d6d6; padding-bottom: 4px; }
.muted { color: #666666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d6d6d6; padding: 4px 8px; white-space: nowrap; }
.scroll { overflow-x: auto; }
th { background: #f2f4f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; }
figure svg { display: block; max-width: 100%; height: auto; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px; font-size: 12px; overflow-x: auto; }
nav a { margin-right: 12px; font-size: 13px; }
"""

METRICS = ("ACC", "FAA", "MAA", "MFT", "BWT", "FWT", "forgetting")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def run_title(run: Run) -> str:
    r = run.results
    return f"{r.get('method')} · {r.get('model')} · {r.get('benchmark')} · seed {r.get('seed')}"


def _table_html(headers: Sequence[str], rows: Sequence[Sequence[str]], first_number: int) -> str:
    """A scrolling table with the footnote; columns from `first_number` on are right-aligned numbers."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{_e(v)}</td>' if i >= first_number else f"<td>{_e(v)}</td>"
                        for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f'<p class="muted">{_e(FOOTNOTE)}</p>')


def _comparison_html(groups: Sequence[Group]) -> str:
    return _table_html(HEADERS, table_rows(groups), 4)


def _types_html(groups: Sequence[Group]) -> str:
    """The scores by question type, or nothing when no run has them."""
    try:
        rows = type_rows(groups)
    except UserError:
        return ""
    return ("<h2>Scores by question type</h2>"
            '<p class="muted">each question type right after its task was learned and at the end of the stream</p>'
            + _table_html(TYPE_HEADERS, [row_cells(r) for r in rows], 6))


def _metrics_html(run: Run) -> str:
    metrics = run.results.get("metrics") or {}
    cells = "".join(f"<th>{_e(k)}</th>" for k in METRICS)
    values = "".join(
        f'<td class="num">{"n/a" if metrics.get(k) is None else _e(f"{metrics[k]:.2f}")}</td>' for k in METRICS)
    params = run.results.get("parameters") or {}
    timing = run.results.get("timing") or {}
    extra = []
    if params:
        extra.append(f"trainable parameters {params.get('trainable', 0):,} of {params.get('total', 0):,}")
    if timing:
        extra.append(f"training {timing.get('train_s', 0):.1f} s, evaluation {timing.get('eval_s', 0):.1f} s, "
                     f"total {timing.get('total_s', 0):.1f} s")
    return (f"<table><tr>{cells}</tr><tr>{values}</tr></table>"
            f'<p class="muted">{_e("; ".join(extra))}</p>')


def _figure_html(figure: Figure) -> str:
    return f"<figure>{figure.svg()}</figure>"


def _config_text(run: Run) -> str:
    config_file = run.path / "config.yaml"
    try:
        return config_file.read_text(encoding="utf-8")
    except OSError:
        return "(this run directory has no config.yaml)"


def _run_html(run: Run, anchor: str, figures: Sequence[Figure]) -> str:
    parts = [f'<section id="{anchor}"><h2>{_e(run_title(run))}</h2>',
             f'<p class="muted">{_e(run.path)}</p>', _metrics_html(run),
             '<div class="figures">', *(_figure_html(f) for f in figures), "</div>"]
    missing = []
    if not any(f.name == "average" for f in figures):
        missing.append("A_t needs one evaluation row per task (not defined for zero-shot or multitask runs)")
    if not any(f.name == "forgetting" for f in figures):
        missing.append("per-task forgetting needs two or more tasks trained one after another")
    if missing:
        parts.append(f'<p class="muted">{_e("; ".join(missing))}.</p>')
    parts.append(f"<details><summary>Resolved configuration (config.yaml)</summary>"
                 f"<pre>{_e(_config_text(run))}</pre></details></section>")
    return "\n".join(parts)


def _comparison_figure(groups: Sequence[Group]) -> Figure | None:
    """ACC bars of the groups that define it (None unless two or more do)."""
    shown = [g for g in groups if g.acc.mean is not None]
    if len(shown) < 2:
        return None
    return comparison_figure([g.label for g in shown], [g.acc.mean for g in shown], [g.acc.std for g in shown])


def render_html(runs: Sequence[Run], groups: Sequence[Group]) -> str:
    """The whole report page as one string."""
    from mcit import __version__

    comparison = _comparison_figure(groups)
    nav = "".join(f'<a href="#run-{i}">{_e(run_title(run))}</a>' for i, run in enumerate(runs))
    sections = [_run_html(run, f"run-{i}", run_figures(run.results)) for i, run in enumerate(runs)]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mcit report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>mcit report</h1>",
        f'<p class="muted">{len(runs)} finished run(s) in {len(groups)} group(s); mcit {_e(__version__)}</p>',
        "<h2>Comparison</h2>", _comparison_html(groups),
        f"<figure>{comparison.svg()}</figure>" if comparison else "", _types_html(groups),
        f"<nav>{nav}</nav>", *sections, "</body></html>",
    ]) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


@dataclass
class ReportFiles:
    """What `write_report` wrote."""

    html: Path | None = None
    figures: list[Path] = field(default_factory=list)


def write_figures(runs: Sequence[Run], groups: Sequence[Group], folder: Path) -> list[Path]:
    """Every figure as SVG and PNG in `folder`: `RUNDIR-NAME.svg/.png` and `comparison-acc.svg/.png`."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: --figures needs a folder, and this is a file; choose another path")
    written: list[Path] = []
    comparison = _comparison_figure(groups)
    if comparison:
        written += comparison.write(folder, "comparison-acc")
    used: set[str] = set()
    for run in runs:
        stem = base = _slug(run.path.name)
        counter = 2
        while stem in used:
            stem, counter = f"{base}-{counter}", counter + 1
        used.add(stem)
        for figure in run_figures(run.results):
            written += figure.write(folder, f"{stem}-{figure.name}")
    return written


def write_report(paths: Iterable[str | Path], html_file: str | Path | None = None,
                 figures_dir: str | Path | None = None) -> ReportFiles:
    """Find the finished runs under `paths`; write the HTML page and/or the figure files."""
    from mcit.core.files import write_text

    if html_file is None and figures_dir is None:
        raise UserError("mcit report: say what to write: --html FILE for the page, --figures DIR for SVG/PNG files, or both")
    runs = find_runs(paths)
    groups = group_runs(runs)
    out = ReportFiles()
    if html_file is not None:
        out.html = Path(html_file).expanduser()
        if out.html.is_dir():
            raise UserError(f"{out.html}: --html needs a file name, and this is a folder; e.g. {out.html / 'report.html'}")
        write_text(out.html, render_html(runs, groups))
    if figures_dir is not None:
        out.figures = write_figures(runs, groups, Path(figures_dir).expanduser())
    return out
