"""SeqFT (also "LoRA-FT"): train on each task in turn with nothing against forgetting.

The lower bound every continual-learning method is measured against.
"""

from __future__ import annotations

from mcit.methods.base import Method
from mcit.methods.registry import register


@register
class SeqFT(Method):
    name = "seqft"
    summary = "sequential fine-tuning on each task in turn, nothing against forgetting (lower bound)"
