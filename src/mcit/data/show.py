"""`mcit data show`: print a few samples of a task and draw them on a contact sheet."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mcit.core.errors import UserError
from mcit.core.files import atomic_path
from mcit.data.schema import Record

TILE = 192
TEXT_HEIGHT = 120


def contact_sheet(records: list[Record], columns: int = 3) -> Image.Image:
    """Each record's image (scaled to a tile) above its instruction and answer."""
    rows = (len(records) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + TEXT_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for i, record in enumerate(records):
        x, y = (i % columns) * TILE, (i // columns) * (TILE + TEXT_HEIGHT)
        if record.image is not None:
            with Image.open(record.image) as image:
                tile = image.convert("RGB")
                tile.thumbnail((TILE - 8, TILE - 8), Image.Resampling.NEAREST if max(tile.size) < TILE else Image.Resampling.BICUBIC)
                if max(tile.size) < TILE - 8:
                    scale = (TILE - 8) // max(tile.size)
                    tile = tile.resize((tile.width * scale, tile.height * scale), Image.Resampling.NEAREST)
                sheet.paste(tile, (x + 4, y + 4))
        text = "\n".join(textwrap.wrap(record.instruction.replace("\n", " "), 30)[:5])
        text += "\n→ " + textwrap.shorten(record.target, 60)
        draw.multiline_text((x + 4, y + TILE + 2), text, fill="black", font=font, spacing=2)
    return sheet


def show_task(task_name: str, benchmark: str, images: str | None, n: int, split: str, sheet: str | None) -> None:
    """Print `n` samples of `task_name` from `benchmark` and optionally save a contact sheet PNG."""
    from mcit.data.benchmarks import load_benchmark
    from mcit.data.config import BenchmarkConfig

    loaded = load_benchmark(BenchmarkConfig(name=benchmark, images=images))
    try:
        task = loaded.task(task_name)
    except KeyError:
        raise UserError(f"no task '{task_name}' in {benchmark}; its tasks are: {', '.join(loaded.task_names)}") from None
    records = (task.test if split == "test" else task.train)[: max(1, n)]
    print(f"{task.name} ({task.metric}; {len(task.train)} train / {len(task.test)} test records)")
    for record in records:
        kind = f" ({record.question_type})" if record.question_type else ""
        print(f"\n[{record.id}]{kind} {record.image}")
        print("  " + record.instruction.replace("\n", "\n  "))
        extra = f" (+{len(record.answers) - 1} more references)" if len(record.answers) > 1 else ""
        print(f"  → {record.target}{extra}")
    if sheet:
        with atomic_path(Path(sheet)) as tmp:
            contact_sheet(records).save(tmp, format="PNG")
        print(f"\ncontact sheet: {sheet}")
