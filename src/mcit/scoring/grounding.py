"""Grounding: read a box from generated text and score it by intersection over union.

A grounding answer is a box [x1, y1, x2, y2] (top-left and bottom-right corners). Models write it
in many ways ("[1, 2, 3, 4]", "(1,2),(3,4)", "1 2 3 4", "x: 1.5 ..."), so the first four numbers in
the text are taken as the box. A prediction counts as correct when its IoU with a reference box is
at least 0.5, the criterion of the referring-expression benchmarks (RefCOCO: Yu et al., ECCV 2016;
Mao et al., CVPR 2016).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Box = tuple[float, float, float, float]

#: IoU at or above which a predicted box counts as correct.
IOU_THRESHOLD = 0.5

# A number that is not the tail of a word or of another number: "x1" holds no number, "-2.5" is -2.5.
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_box(text: str) -> Box | None:
    """The first four numbers of `text` as (x1, y1, x2, y2), or None when there are fewer than four."""
    numbers = [float(match) for match in _NUMBER.findall(text)]
    if len(numbers) < 4:
        return None
    x1, y1, x2, y2 = numbers[:4]
    return (x1, y1, x2, y2)


def is_degenerate(box: Box) -> bool:
    """True when the corners are out of order (x2 < x1 or y2 < y1)."""
    x1, y1, x2, y2 = box
    return x2 < x1 or y2 < y1


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes on continuous coordinates (area = (x2−x1)×(y2−y1)).

    Returns 0.0 when the union has no area (two empty boxes).
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    inter_w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    inter_h = max(0.0, min(ay2, by2) - max(ay1, by1))
    intersection = inter_w * inter_h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - intersection
    return intersection / union if union > 0 else 0.0


def grounding_hit(prediction: str, references: Sequence[str]) -> float:
    """1.0 if the predicted box has IoU ≥ 0.5 with any reference box, else 0.0.

    A prediction without four numbers or with corners out of order scores 0. A reference that holds
    no box is a data error and raises ValueError.
    """
    boxes = []
    for ref in references:
        box = parse_box(ref)
        if box is None:
            raise ValueError(f"grounding reference {ref!r} holds no box [x1, y1, x2, y2]")
        boxes.append(box)
    predicted = parse_box(prediction)
    if predicted is None or is_degenerate(predicted):
        return 0.0
    return 1.0 if any(box_iou(predicted, box) >= IOU_THRESHOLD for box in boxes) else 0.0
