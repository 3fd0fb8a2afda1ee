"""`mcit report`: figures as SVG and PNG, a self-contained escaped HTML page, and how Chromium shows it."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from fake_runs import write_run
from mcit.run.cli import main
from mcit.run.figures import SCALE, hex_colour, scale_colour, task_forgetting
from mcit.run.report_html import write_report

DARKEST = SCALE[-1][1]  # the colour of a score of 100
MATRIX = [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [60.0, 100.0, 0.0], [50.0, 70.0, 100.0]]
SIMILARITY = {"tasks": ["ocr", "digits", "count"], "matrix": [[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 1.0]]}


def _count(image: Image.Image, rgb: tuple[int, int, int], tolerance: int = 3) -> int:
    """Pixels within `tolerance` of `rgb` in every channel."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int((np.abs(pixels - np.array(rgb, dtype=np.int16)) <= tolerance).all(axis=-1).sum())


def test_colour_scale_and_forgetting_per_task():
    assert scale_colour(100, 0, 100) == DARKEST and scale_colour(0, 0, 100) == SCALE[0][1]
    assert scale_colour(150, 0, 100) == DARKEST and hex_colour(DARKEST) == "#08306b"
    # task 1: best after learning it 100 (rows 1, 2), final 50; task 2: best 100, final 70
    assert task_forgetting(MATRIX) == [50.0, 30.0]
    assert task_forgetting([[0.0, 0.0], [90.0, 80.0]]) == []  # a joint run has no per-task forgetting


def test_figures_are_written_as_svg_and_png(tmp_path, capsys):
    run = write_run(tmp_path / "runs" / "ewc-tir-seed0", "ewc-tir", matrix=MATRIX,
                    method_report={"task_similarity": SIMILARITY})
    write_run(tmp_path / "runs" / "seqft-seed0", "seqft", matrix=MATRIX)
    figures = tmp_path / "figures"
    assert main(["report", str(run.parent), "--figures", str(figures)]) == 0
    assert "figures: 16 files" in capsys.readouterr().out
    stems = {"comparison-acc", *(f"{r}-{f}" for r in ("ewc-tir-seed0", "seqft-seed0")
                                 for f in ("matrix", "average", "forgetting")), "ewc-tir-seed0-similarity"}
    assert {p.name for p in figures.iterdir()} == {f"{s}.{ext}" for s in stems for ext in ("svg", "png")}
    for stem in stems:
        root = ET.parse(figures / f"{stem}.svg").getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        with Image.open(figures / f"{stem}.png") as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
    with Image.open(figures / "ewc-tir-seed0-matrix.png") as heatmap:
        assert _count(heatmap, DARKEST) > 3 * 1000  # three cells of 100, about 112 × 60 pixels each at 2×
    svg = (figures / "ewc-tir-seed0-matrix.svg").read_text()
    assert svg.count('fill="#08306b"') >= 3 and ">100.0</text>" in svg


def test_html_is_self_contained_and_escapes_run_text(tmp_path):
    tasks = ["<script>x</script>", "a&b", "count"]
    run = write_run(tmp_path / "run", "seqft", tasks=tasks, matrix=MATRIX,
                    config={"method": {"name": "seqft"}, "note": "</pre><b>bold</b>"})
    page = tmp_path / "report.html"
    files = write_report([run], html_file=page)
    assert files.html == page
    text = page.read_text()
    assert "<script" not in text and "<b>bold" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "a&amp;b" in text and "&lt;/pre&gt;&lt;b&gt;" in text
    assert "<link" not in text and "src=" not in text
    assert text.replace("http://www.w3.org/2000/svg", "").count("http") == 0
    assert "Accuracy matrix" in text and "sample standard deviation" in text
    assert "Scores by question type" not in text  # no task of these runs has question types


def test_html_shows_scores_by_question_type_when_runs_have_them(tmp_path):
    by_row = [{"<b>how</b> many": {"n": 4, "score": s}} for s in (0.0, 10.0, 20.0, 75.0)]
    run = write_run(tmp_path / "run", "seqft", tasks=["ocr", "count", "digits"], matrix=MATRIX,
                    per_task={"count": {"by_type": by_row[-1], "by_type_by_row": by_row}})
    page = tmp_path / "report.html"
    write_report([run], html_file=page)
    text = page.read_text()
    assert "Scores by question type" in text and "&lt;b&gt;how&lt;/b&gt; many" in text and "<b>how" not in text
    row = text.split("&lt;b&gt;how&lt;/b&gt; many</td>", 1)[1].split("</tr>", 1)[0]
    assert row == '<td class="num">4</td><td class="num">20.00 ± –</td><td class="num">75.00 ± –</td>'


def test_report_needs_an_output(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert main(["report", str(run)]) == 2
    assert "--html FILE" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Chromium is not installed (apt-get install chromium); it renders the report page")
def test_chromium_shows_the_heatmap(tmp_path):
    run = write_run(tmp_path / "runs" / "seqft-seed0", "seqft", matrix=MATRIX,
                    method_report={"task_similarity": SIMILARITY})
    page = tmp_path / "report.html"
    assert main(["report", str(run), "--html", str(page)]) == 0
    shot = tmp_path / "shot.png"
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
               page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1200, 900)
        # the three cells scoring 100 are drawn in the scale's darkest colour (about 56 × 30 pixels each)
        assert _count(image, DARKEST) > 3 * 1200
        # the cell scoring 50 has the scale's middle colour
        assert _count(image, SCALE[2][1]) > 1200
