"""The drawn world of the built-in stream: coloured shapes on a 3×3 grid.

An image is IMAGE_SIZE pixels square, divided into a 3×3 grid of cells; each object is one shape
in one colour filling most of one cell, drawn with a pixel or two of jitter. Cells give every
object a position word ("top left", ..., "center") and a bounding box in pixel coordinates, so
questions about attributes, relations, counts and boxes all have answers that are true of the
pixels. Generators get their randomness from a `random.Random` passed in, so a seed fixes the data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

IMAGE_SIZE = 48
GRID = 3
CELL = IMAGE_SIZE // GRID
BACKGROUND = (38, 38, 38)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (60, 100, 240),
    "yellow": (235, 215, 40),
    "purple": (160, 60, 210),
    "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle", "diamond")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds"}

#: Position words of the grid cells, row-major (row 0 is the top).
POSITIONS = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)


@dataclass(frozen=True)
class Shape:
    """One object of a scene: its shape, colour name, grid cell (0..8) and pixel box."""

    shape: str
    color: str
    cell: int
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, inclusive of the drawn extent

    @property
    def row(self) -> int:
        return self.cell // GRID

    @property
    def col(self) -> int:
        return self.cell % GRID

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    @property
    def name(self) -> str:
        """'red circle'."""
        return f"{self.color} {self.shape}"


def _box_for_cell(cell: int, rng: random.Random) -> tuple[int, int, int, int]:
    """A box of 11–13 pixels near the middle of the cell, shifted by up to a pixel each way.

    The jitter keeps boxes off a fixed lattice while a box predicted from the cell alone still
    overlaps the true one by IoU ≥ 0.5, so grounding tests seeing the object, not sub-pixel regression.
    """
    size = rng.randint(11, 13)
    x0 = (cell % GRID) * CELL + (CELL - size) // 2 + rng.randint(-1, 1)
    y0 = (cell // GRID) * CELL + (CELL - size) // 2 + rng.randint(-1, 1)
    return (x0, y0, x0 + size - 1, y0 + size - 1)


#: The spatial relations questions ask about, between two objects' grid cells.
RELATIONS = ("above", "below", "left of", "right of")


def relation_holds(relation: str, a: Shape, b: Shape) -> bool:
    """Whether `a` is `relation` `b` ("above" means a row nearer the top)."""
    return {"above": a.row < b.row, "below": a.row > b.row, "left of": a.col < b.col, "right of": a.col > b.col}[relation]


def random_scene(rng: random.Random, n_objects: int, *, unique: bool = True,
                 shapes: tuple[str, ...] = SHAPES, colors: tuple[str, ...] | None = None) -> list[Shape]:
    """`n_objects` objects in distinct cells.

    With `unique`, no two objects share a shape and no two share a colour, so "the red shape" and
    "the circle" each name exactly one object (at most as many objects as shapes).
    """
    if unique and n_objects > len(shapes):
        raise ValueError(f"cannot draw {n_objects} objects with distinct shapes from {len(shapes)} shapes")
    colors = colors or tuple(COLORS)
    cells = rng.sample(range(GRID * GRID), n_objects)
    if unique:
        picked_shapes = rng.sample(shapes, n_objects)
        picked_colors = rng.sample(colors, n_objects)
    else:
        picked_shapes = [rng.choice(shapes) for _ in range(n_objects)]
        picked_colors = [rng.choice(colors) for _ in range(n_objects)]
    objects = [Shape(s, c, cell, _box_for_cell(cell, rng)) for s, c, cell in zip(picked_shapes, picked_colors, cells)]
    return sorted(objects, key=lambda o: o.cell)


def draw_shape(draw: ImageDraw.ImageDraw, obj: Shape) -> None:
    """Draw one object filling its box."""
    x1, y1, x2, y2 = obj.box
    fill = COLORS[obj.color]
    if obj.shape == "circle":
        draw.ellipse((x1, y1, x2, y2), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x1 + 1, y1 + 1, x2 - 1, y2 - 1), fill=fill)
    elif obj.shape == "triangle":
        draw.polygon([((x1 + x2) / 2, y1), (x2, y2), (x1, y2)], fill=fill)
    elif obj.shape == "diamond":
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render_scene(objects: list[Shape]) -> Image.Image:
    """The RGB image of a scene."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        draw_shape(draw, obj)
    return image


def format_box(box: tuple[int, int, int, int]) -> str:
    """The answer format of the grounding task: '[x1, y1, x2, y2]'."""
    return "[" + ", ".join(str(v) for v in box) + "]"


def join_names(names: list[str]) -> str:
    """'a, b and c'."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
