"""Where each vision-language family keeps its parts, and how it formats and lays out images.

mcit treats every model as three parts: a vision encoder (frozen unless asked), a projector
that maps vision features into the language model (trained by default), and a language model
(LoRA by default). Families name these submodules differently; this table maps a config's
`model_type` to the candidate paths, tried in order on the loaded Hugging Face model.

Some families have more than one piece between vision and language: BLIP-2 and InstructBLIP
pass the image through learned query tokens and a Q-Former before their linear projection,
LLaVA-NeXT and LLaVA-OneVision add a learned image-newline vector. Those pieces are the family's
`bridge`: they train together with the projector (`model.tune_projector`), while the module at
`projector` is the one expansion methods copy per task.

Per family also: the prompt format used when a processor has no chat template
(`mcit.models.prompts`), where frozen image features are read (the projector's input, or the
vision encoder's output where the projector's input is already trained), how many projector rows
each image gives (`mcit.models.layouts`), and which optional packages its processor needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from mcit.core.errors import UserError
from mcit.models import layouts, prompts


@dataclass(frozen=True)
class Family:
    """Submodule paths of one model family, relative to the `...ForConditionalGeneration` model.

    Attributes:
        name: the family's name in messages and docs.
        model_types: the `model_type` values of its configs.
        vision, projector, language_model: candidate paths of the three parts, first match wins.
        bridge: candidate paths of each further piece (a module or a parameter) that trains with
            the projector; a piece none of whose paths exists is skipped.
        features: where `VisionLanguageModel.image_features` reads: at the projector's input, or at
            the vision encoder's output (BLIP-2's projector input is the trained Q-Former's output).
        rows: projector rows per image in a batch (`mcit.models.layouts`).
        template: the chat template used when the processor has none.
        nested_images: the processor takes images as one list per sample (SmolVLM), not a flat list.
        image_required: every record needs an image (BLIP-2, InstructBLIP and PaliGemma have no
            text-only path).
        needs: modules the family's processor imports (Qwen2-VL, LLaVA-OneVision and SmolVLM
            processors include a video processor, which needs torchvision).
    """

    name: str
    model_types: tuple[str, ...]
    vision: tuple[str, ...]
    projector: tuple[str, ...]
    language_model: tuple[str, ...]
    bridge: tuple[tuple[str, ...], ...] = ()
    features: Literal["projector", "vision"] = "projector"
    rows: Callable[[object, dict], list[int]] = layouts.one_row_per_image
    template: str | None = None
    nested_images: bool = False
    image_required: bool = False
    needs: tuple[str, ...] = ()


#: Paths of the LLaVA-style families (LLaVA, LLaVA-NeXT, LLaVA-OneVision, PaliGemma).
_LLAVA_PARTS = dict(vision=("model.vision_tower", "vision_tower"),
                    projector=("model.multi_modal_projector", "multi_modal_projector"),
                    language_model=("model.language_model", "language_model"))
_BLIP_PARTS = dict(vision=("vision_model", "model.vision_model"),
                   projector=("language_projection", "model.language_projection"),
                   language_model=("language_model", "model.language_model"),
                   bridge=(("qformer", "model.qformer"), ("query_tokens", "model.query_tokens")),
                   features="vision", image_required=True)
_IDEFICS_PARTS = dict(vision=("model.vision_model", "vision_model"), projector=("model.connector", "connector"),
                      language_model=("model.text_model", "text_model"), rows=layouts.real_subimages,
                      template=prompts.IDEFICS)
_NEWLINE = (("model.image_newline", "image_newline"),)

FAMILIES: tuple[Family, ...] = (
    Family("llava", ("llava", "vipllava"), **_LLAVA_PARTS, template=prompts.LLAVA),
    Family("llava-next", ("llava_next",), **_LLAVA_PARTS, bridge=_NEWLINE, rows=layouts.anyres_crops,
           template=prompts.LLAVA),
    Family("llava-onevision", ("llava_onevision",), **_LLAVA_PARTS, bridge=_NEWLINE, rows=layouts.anyres_crops,
           template=prompts.ONEVISION, needs=("torchvision",)),
    Family("qwen2-vl", ("qwen2_vl", "qwen2_5_vl"),
           vision=("model.visual", "visual"), projector=("model.visual.merger", "visual.merger"),
           language_model=("model.language_model", "language_model"),
           rows=layouts.vision_patches, template=prompts.QWEN, needs=("torchvision",)),
    Family("blip-2", ("blip-2",), **_BLIP_PARTS, template=prompts.BLIP2),
    Family("instructblip", ("instructblip",), **_BLIP_PARTS, template=prompts.PLAIN),
    Family("idefics3", ("idefics3",), **_IDEFICS_PARTS),
    Family("smolvlm", ("smolvlm",), **_IDEFICS_PARTS, nested_images=True, needs=("torchvision", "num2words")),
    Family("paligemma", ("paligemma",), **_LLAVA_PARTS, template=prompts.PALIGEMMA, image_required=True),
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


def bridge_parameters(model, family: Family) -> list:
    """The parameters of the family's bridge pieces that `model` has (modules or single parameters)."""
    found = []
    for candidates in family.bridge:
        for path in candidates:
            try:
                found += list(model.get_submodule(path).parameters())
                break
            except AttributeError:
                pass
            try:
                found.append(model.get_parameter(path))
                break
            except AttributeError:
                pass
    return found


def missing_packages(family: Family) -> list[str]:
    """The packages in `family.needs` that are not installed."""
    import importlib.util

    return [name for name in family.needs if importlib.util.find_spec(name) is None]


def requirement_error(source: str) -> UserError | None:
    """A clear error when the model at `source` is of a family whose processor needs packages that
    are missing (transformers then fails with an ImportError deep in processor loading); None
    when nothing is missing or the family is unknown. Reads only the model's config."""
    from transformers import AutoConfig

    try:
        model_type = AutoConfig.from_pretrained(source).model_type
        family = family_for(model_type)
    except (OSError, ValueError, UserError):
        return None
    missing = missing_packages(family)
    if not missing:
        return None
    return UserError(f"model '{source}' is a {family.name} model ({model_type}), whose processor needs "
                     f"{' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed; "
                     f"install {' '.join(missing)} (torchvision matching your torch version)")
