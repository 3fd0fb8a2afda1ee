"""The report's figures, drawn on `svg.Canvas`: heatmaps, line plots and bar charts of run results.

`run_figures(results)` gives every figure one run supports: the accuracy-matrix heatmap, the
average accuracy A_t over the stream, the forgetting of each task, and the task-similarity
heatmap of methods that measure it. `comparison_figure` draws the final accuracy of compared
groups. Each figure is a `Figure` that renders to SVG (inlined in the HTML report) or PNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from mcit.run.svg import Canvas, text_width

#: the heatmap colour scale, light to dark: (position in [0, 1], RGB)
SCALE = ((0.0, (247, 251, 255)), (0.25, (198, 219, 239)), (0.5, (107, 174, 214)),
         (0.75, (33, 113, 181)), (1.0, (8, 48, 107)))
MISSING = "#dddddd"
LINE_COLOURS = ("#1f5fa8", "#d0632b", "#2f8f4e", "#8a4fb3", "#b23b3b", "#6b6b6b")
BAR_COLOUR = "#3b7dc4"
FONT = 12
MAX_LABEL = 18


@dataclass
class Figure:
    """A named figure: `name` is its file stem, `title` its caption."""

    name: str
    title: str
    canvas: Canvas

    def svg(self) -> str:
        return self.canvas.to_svg(self.title)

    def write(self, folder: Path, stem: str) -> list[Path]:
        """Write `stem`.svg and `stem`.png into `folder`; returns both paths."""
        from mcit.core.files import write_text

        svg, png = folder / f"{stem}.svg", folder / f"{stem}.png"
        write_text(svg, '<?xml version="1.0" encoding="UTF-8"?>\n' + self.svg() + "\n")
        self.canvas.to_png(png)
        return [svg, png]


def scale_colour(value: float, low: float, high: float) -> tuple[int, int, int]:
    """The RGB colour of `value` on the heatmap scale spanning [low, high] (clamped)."""
    t = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    for (p0, c0), (p1, c1) in zip(SCALE, SCALE[1:]):
        if t <= p1:
            f = (t - p0) / (p1 - p0)
            return tuple(round(a + (b - a) * f) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return SCALE[-1][1]


def hex_colour(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _is_dark(rgb: Sequence[int]) -> bool:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140


def short(label: str, limit: int = MAX_LABEL) -> str:
    """`label` cut to `limit` characters with an ellipsis, so that long task names keep figures readable."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about `count` of them)."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def title_width(title: str) -> float:
    """Room for a figure's bold 14-pixel title and its margins."""
    return text_width(title, 14) * 1.1 + 24


def _format(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def heatmap(name: str, title: str, row_labels: Sequence[str], column_labels: Sequence[str],
            values: Sequence[Sequence[float | None]], low: float, high: float, digits: int = 1) -> Figure:
    """A matrix as coloured cells annotated with their values; missing cells are grey with a dash."""
    rows = [short(r, 24) for r in row_labels]
    columns = [short(c) for c in column_labels]
    cell_w = max([56.0, *(text_width(c, FONT) + 14 for c in columns)])
    cell_h = 30.0
    left = max([0.0, *(text_width(r, FONT) for r in rows)]) + 20
    top = 58.0
    legend_x = left + cell_w * len(columns) + 24
    width = max(legend_x + 70, title_width(title))
    height = max(top + cell_h * len(rows) + 16, top + 150)
    canvas = Canvas(round(width), round(height))
    canvas.text(10, 16, title, size=14, bold=True)
    for j, label in enumerate(columns):
        canvas.text(left + (j + 0.5) * cell_w, top - 12, label, size=FONT, anchor="middle")
    for i, (label, row) in enumerate(zip(rows, values)):
        y = top + i * cell_h
        canvas.text(left - 8, y + cell_h / 2, label, size=FONT, anchor="end")
        for j, value in enumerate(row[: len(columns)]):
            x = left + j * cell_w
            if value is None:
                canvas.rect(x, y, cell_w, cell_h, MISSING, stroke="#ffffff")
                canvas.text(x + cell_w / 2, y + cell_h / 2, "–", size=FONT, anchor="middle", fill="#555555")
                continue
            rgb = scale_colour(value, low, high)
            canvas.rect(x, y, cell_w, cell_h, hex_colour(rgb), stroke="#ffffff")
            canvas.text(x + cell_w / 2, y + cell_h / 2, _format(value, digits), size=FONT, anchor="middle",
                        fill="#ffffff" if _is_dark(rgb) else "#111111")
    # colour legend: the scale from low (bottom) to high (top)
    steps, legend_h = 20, 120.0
    for k in range(steps):
        value = low + (high - low) * (k + 0.5) / steps
        y = top + legend_h - (k + 1) * legend_h / steps
        canvas.rect(legend_x, y, 14, legend_h / steps + 0.5, hex_colour(scale_colour(value, low, high)))
    canvas.text(legend_x + 20, top + 4, _format(high, digits), size=10)
    canvas.text(legend_x + 20, top + legend_h - 4, _format(low, digits), size=10)
    return Figure(name, title, canvas)


def _plot_frame(canvas: Canvas, title: str, y_label: str, left: float, right: float, top: float,
                bottom: float, ticks: Sequence[float]) -> Callable[[float], float]:
    """Title, horizontal grid lines with tick labels, and the y mapping of a plot area."""
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    canvas.text(10, 16, title, size=14, bold=True)
    canvas.text(10, 36, y_label, size=10, fill="#555555")
    for tick in ticks:
        y = y_of(tick)
        canvas.line(left, y, right, y, stroke="#e3e3e3")
        canvas.text(left - 6, y, f"{tick:g}", size=10, anchor="end", fill="#555555")
    canvas.line(left, top, left, bottom, stroke="#888888")
    canvas.line(left, bottom, right, bottom, stroke="#888888")
    return y_of


def line_plot(name: str, title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
              y_label: str, low: float = 0.0, high: float = 100.0) -> Figure:
    """One line per (name, values) series over the x labels, with the value at each point."""
    labels = [short(x, 16) for x in x_labels]
    step = max([70.0, *(text_width(x, 10) + 10 for x in labels)])
    left, top = 52.0, 62.0
    width = max(360.0, left + step * len(labels) + 30, title_width(title))
    height = 270.0 + (16 * len(series) if len(series) > 1 else 0)
    bottom = 230.0
    step = (width - 20 - left) / max(1, len(labels))
    canvas = Canvas(round(width), round(height))
    finite = [v for _, values in series for v in values if v is not None]
    ticks = nice_ticks(min([low, *finite]), max([high, *finite]))
    y_of = _plot_frame(canvas, title, y_label, left, width - 20, top, bottom, ticks)

    def x_of(i: int) -> float:
        return left + step * (i + 0.5)

    for i, label in enumerate(labels):
        canvas.text(x_of(i), bottom + 14, label, size=10, anchor="middle", fill="#333333")
    for k, (series_name, values) in enumerate(series):
        colour = LINE_COLOURS[k % len(LINE_COLOURS)]
        points = [(x_of(i), y_of(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            canvas.polyline(points, colour, width=2)
        for (x, y), v in zip(points, [v for v in values if v is not None]):
            canvas.circle(x, y, 3.5, colour)
            if len(series) == 1:
                canvas.text(x, y - 11, f"{v:.1f}", size=10, anchor="middle", fill=colour)
        if len(series) > 1:
            y = bottom + 34 + 16 * k
            canvas.rect(left, y - 5, 10, 10, colour)
            canvas.text(left + 16, y, series_name, size=10)
    return Figure(name, title, canvas)


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float], y_label: str,
              errors: Sequence[float | None] | None = None, digits: int = 1, low: float = 0.0,
              high: float = 1.0) -> Figure:
    """Vertical bars from zero (negative values go below the axis), optional ± error whiskers.

    The y axis spans at least [low, high], so that bars of zero or tiny values keep a readable scale.
    """
    labels = [short(x, 16) for x in labels]
    step = max([64.0, *(text_width(x, 10) + 12 for x in labels)])
    left, top, bottom = 52.0, 62.0, 230.0
    width = max(320.0, left + step * len(labels) + 30, title_width(title))
    step = min((width - 20 - left) / max(1, len(labels)), 2 * step)
    canvas = Canvas(round(width), 260)
    spread = [v + (e or 0) for v, e in zip(values, errors or [None] * len(values))]
    spread += [v - (e or 0) for v, e in zip(values, errors or [None] * len(values))]
    ticks = nice_ticks(min(low, *spread), max(high, *spread))
    y_of = _plot_frame(canvas, title, y_label, left, width - 20, top, bottom, ticks)
    zero = y_of(0.0)
    canvas.line(left, zero, width - 20, zero, stroke="#888888")
    for i, (label, value) in enumerate(zip(labels, values)):
        centre = left + step * (i + 0.5)
        bar_w = step * 0.6
        y = y_of(value)
        canvas.rect(centre - bar_w / 2, min(y, zero), bar_w, max(abs(zero - y), 0.5), BAR_COLOUR)
        error = errors[i] if errors else None
        if error:
            hi, lo = y_of(value + error), y_of(value - error)
            canvas.line(centre, hi, centre, lo, stroke="#222222", width=1.2)
            canvas.line(centre - 5, hi, centre + 5, hi, stroke="#222222", width=1.2)
            canvas.line(centre - 5, lo, centre + 5, lo, stroke="#222222", width=1.2)
        label_y = (min(y, y_of(value + error)) if error else y) - 9 if value >= 0 else \
            (max(y, y_of(value - error)) if error else y) + 9
        canvas.text(centre, label_y, _format(value, digits), size=10, anchor="middle")
        canvas.text(centre, bottom + 14, label, size=10, anchor="middle", fill="#333333")
    return Figure(name, title, canvas)


def task_forgetting(matrix: Sequence[Sequence[float | None]]) -> list[float | None]:
    """Per task j < T: the best score after learning it and before the last task, minus the final score.

    Needs the full matrix (zero-shot row plus one row per task); the last task has no earlier
    score and is left out. None where a needed cell is missing.
    """
    tasks = len(matrix[0]) if matrix else 0
    if tasks < 2 or len(matrix) != tasks + 1:
        return []
    final = matrix[-1]
    drops: list[float | None] = []
    for j in range(tasks - 1):
        earlier = [matrix[row][j] for row in range(j + 1, tasks)]
        if final[j] is None or any(v is None for v in earlier):
            drops.append(None)
        else:
            drops.append(max(earlier) - final[j])
    return drops


def run_figures(results: dict[str, Any]) -> list[Figure]:
    """Every figure one run's `results.json` supports, in the order the report shows them."""
    tasks: list[str] = list(results.get("tasks", []))
    rows: list[str] = list(results.get("rows", []))
    matrix = results.get("accuracy_matrix") or []
    figures = []
    if tasks and matrix:
        figures.append(heatmap("matrix", "Accuracy matrix (score on each task, after each training stage)",
                               rows, tasks, matrix, 0.0, 100.0))
    a_t = (results.get("metrics") or {}).get("A_t")
    if a_t:
        figures.append(line_plot("average", "Average accuracy A_t over the tasks seen so far",
                                 tasks[: len(a_t)], [("A_t", a_t)], "A_t after each task"))
    drops = task_forgetting(matrix)
    if drops and all(d is not None for d in drops):
        figures.append(bar_chart("forgetting", "Forgetting per task (best score after learning it − final score)",
                                 tasks[: len(drops)], drops, "points lost by the end of the stream"))
    similarity = (results.get("method_report") or {}).get("task_similarity")
    if isinstance(similarity, dict) and similarity.get("matrix"):
        names = list(similarity.get("tasks", []))
        values = similarity["matrix"]
        finite = [v for row in values for v in row if v is not None]
        figures.append(heatmap("similarity", "Task similarity (mean cosine of image, instruction and output)",
                               names, names, values, min(0.0, *finite), 1.0, digits=2))
    return figures


def comparison_figure(labels: Sequence[str], means: Sequence[float], stds: Sequence[float | None]) -> Figure:
    """Final accuracy (ACC) of each compared group, with ± one sample standard deviation."""
    return bar_chart("comparison-acc", "Final accuracy ACC (mean ± sample std over seeds)", labels, means,
                     "ACC", errors=stds, high=100.0)
