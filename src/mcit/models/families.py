"""Where each vision-language family keeps its parts.

mcit treats every model as three parts: a vision encoder (frozen unless asked), a projector
that maps vision features into the language model (trained by default), and a language model
(LoRA by default). Families name these submodules differently; this table maps a config's
`model_type` to the candidate paths, tried in order on the loaded Hugging Face model.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.errors import UserError


@dataclass(frozen=True)
class Family:
    """Submodule paths of one model family, relative to the `...ForConditionalGeneration` model."""

    name: str
    model_types: tuple[str, ...]
    vision: tuple[str, ...]
    projector: tuple[str, ...]
    language_model: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family("llava", ("llava", "llava_next", "llava_onevision", "vipllava"),
           vision=("model.vision_tower", "vision_tower"),
           projector=("model.multi_modal_projector", "multi_modal_projector"),
           language_model=("model.language_model", "language_model")),
)


def family_for(model_type: str) -> Family:
    """The family of a config's `model_type`, or a clear error listing the supported ones."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    supported = sorted(t for f in FAMILIES for t in f.model_types)
    raise UserError(f"model type '{model_type}' is not supported yet; supported model types: {', '.join(supported)}")


def find_module(model, candidates: tuple[str, ...], what: str):
    """The first of `candidates` that exists on `model`, with its path."""
    for path in candidates:
        try:
            return path, model.get_submodule(path)
        except AttributeError:
            continue
    raise UserError(f"cannot find the {what} of {type(model).__name__} (looked for {', '.join(candidates)})")
