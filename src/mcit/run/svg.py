"""A small vector canvas that renders the same drawing as SVG text and as a PNG image.

The report's figures (heatmaps, line plots, bar charts) are lists of rectangles, lines, circles
and text on a canvas. `Canvas.to_svg` writes them as a standalone SVG element, which the HTML
report inlines so that the page needs no network and no plotting library; `Canvas.to_png` draws
the very same shapes with Pillow, so the PNG files of `mcit report --figures` match the SVGs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

Anchor = Literal["start", "middle", "end"]

FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"
#: average glyph width as a share of the font size, to lay out labels without measuring them
CHAR_WIDTH = 0.6


def text_width(text: str, size: float) -> float:
    """An estimate of the rendered width of `text` at `size` pixels (sans-serif)."""
    return len(text) * size * CHAR_WIDTH


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass
class Canvas:
    """A drawing of `width` × `height` pixels: shapes in the order they are painted."""

    width: int
    height: int
    background: str = "#ffffff"
    shapes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str | None = None) -> None:
        self.shapes.append(("rect", {"x": x, "y": y, "w": w, "h": h, "fill": fill, "stroke": stroke}))

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#444444", width: float = 1) -> None:
        self.shapes.append(("line", {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "stroke": stroke, "width": width}))

    def polyline(self, points: Sequence[tuple[float, float]], stroke: str, width: float = 2) -> None:
        self.shapes.append(("polyline", {"points": list(points), "stroke": stroke, "width": width}))

    def circle(self, cx: float, cy: float, r: float, fill: str) -> None:
        self.shapes.append(("circle", {"cx": cx, "cy": cy, "r": r, "fill": fill}))

    def text(self, x: float, y: float, text: str, size: float = 12, anchor: Anchor = "start",
             fill: str = "#222222", bold: bool = False) -> None:
        """Text whose vertical centre is at `y`; `anchor` says where `x` lies on it."""
        self.shapes.append(("text", {"x": x, "y": y, "text": str(text), "size": size, "anchor": anchor,
                                     "fill": fill, "bold": bold}))

    # SVG
    def to_svg(self, title: str = "") -> str:
        """The drawing as one `<svg>` element (valid as a standalone file and inline in HTML)."""
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                 f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{html.escape(title)}" '
                 f'font-family="{FONT_FAMILY}">']
        if title:
            parts.append(f"<title>{html.escape(title)}</title>")
        parts.append(f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="{self.background}"/>')
        for kind, s in self.shapes:
            parts.append(_svg_shape(kind, s))
        parts.append("</svg>")
        return "\n".join(parts)

    # PNG
    def to_png(self, path: str | Path, scale: float = 2.0) -> None:
        """Draw the same shapes with Pillow and save a PNG (`scale` × the SVG's pixel size), atomically."""
        from PIL import Image, ImageDraw

        from mcit.core.files import atomic_path

        image = Image.new("RGB", (round(self.width * scale), round(self.height * scale)), self.background)
        draw = ImageDraw.Draw(image)
        for kind, s in self.shapes:
            _png_shape(draw, kind, s, scale)
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")


def _svg_shape(kind: str, s: dict[str, Any]) -> str:
    n = _number
    if kind == "rect":
        stroke = f' stroke="{s["stroke"]}" stroke-width="1"' if s["stroke"] else ""
        return (f'<rect x="{n(s["x"])}" y="{n(s["y"])}" width="{n(s["w"])}" height="{n(s["h"])}" '
                f'fill="{s["fill"]}"{stroke}/>')
    if kind == "line":
        return (f'<line x1="{n(s["x1"])}" y1="{n(s["y1"])}" x2="{n(s["x2"])}" y2="{n(s["y2"])}" '
                f'stroke="{s["stroke"]}" stroke-width="{n(s["width"])}"/>')
    if kind == "polyline":
        points = " ".join(f"{n(x)},{n(y)}" for x, y in s["points"])
        return (f'<polyline points="{points}" fill="none" stroke="{s["stroke"]}" '
                f'stroke-width="{n(s["width"])}" stroke-linejoin="round"/>')
    if kind == "circle":
        return f'<circle cx="{n(s["cx"])}" cy="{n(s["cy"])}" r="{n(s["r"])}" fill="{s["fill"]}"/>'
    if kind == "text":
        weight = ' font-weight="bold"' if s["bold"] else ""
        return (f'<text x="{n(s["x"])}" y="{n(s["y"])}" font-size="{n(s["size"])}" text-anchor="{s["anchor"]}" '
                f'dominant-baseline="central" fill="{s["fill"]}"{weight}>{html.escape(s["text"])}</text>')
    raise ValueError(f"unknown shape {kind!r}")


_FONTS: dict[tuple[int, bool], Any] = {}


def _font(size: int, bold: bool):
    """DejaVu Sans when the system has it (the SVG's first choice), else Pillow's built-in font."""
    from PIL import ImageFont

    key = (size, bold)
    if key not in _FONTS:
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        try:
            _FONTS[key] = ImageFont.truetype(name, size)
        except OSError:
            try:
                _FONTS[key] = ImageFont.load_default(size=size)
            except TypeError:  # Pillow without FreeType: a fixed-size bitmap font
                _FONTS[key] = ImageFont.load_default()
    return _FONTS[key]


_PIL_ANCHOR = {"start": "lm", "middle": "mm", "end": "rm"}


def _png_shape(draw, kind: str, s: dict[str, Any], k: float) -> None:
    if kind == "rect":
        box = [s["x"] * k, s["y"] * k, (s["x"] + s["w"]) * k - 1, (s["y"] + s["h"]) * k - 1]
        draw.rectangle(box, fill=s["fill"], outline=s["stroke"], width=max(1, round(k)) if s["stroke"] else 0)
    elif kind == "line":
        draw.line([s["x1"] * k, s["y1"] * k, s["x2"] * k, s["y2"] * k], fill=s["stroke"],
                  width=max(1, round(s["width"] * k)))
    elif kind == "polyline":
        draw.line([(x * k, y * k) for x, y in s["points"]], fill=s["stroke"], width=max(1, round(s["width"] * k)),
                  joint="curve")
    elif kind == "circle":
        r = s["r"] * k
        draw.ellipse([s["cx"] * k - r, s["cy"] * k - r, s["cx"] * k + r, s["cy"] * k + r], fill=s["fill"])
    elif kind == "text":
        font = _font(max(1, round(s["size"] * k)), s["bold"])
        try:
            draw.text((s["x"] * k, s["y"] * k), s["text"], fill=s["fill"], font=font, anchor=_PIL_ANCHOR[s["anchor"]])
        except ValueError:  # bitmap fonts take no anchor
            draw.text((s["x"] * k, s["y"] * k), s["text"], fill=s["fill"], font=font)
    else:
        raise ValueError(f"unknown shape {kind!r}")
