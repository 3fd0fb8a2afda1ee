"""Deciding which parameters train: LoRA on the language model, the projector, or everything.

The projector trains together with the family's bridge pieces (BLIP-2's Q-Former and query
tokens, LLaVA-NeXT's image-newline vector), which sit between vision and language like it does.

LoRA adapters go only on linear layers inside the language model (never the vision tower or the
output head by accident): the targets are turned into one regular expression anchored at the
language model's module path, which peft matches against full module names.
"""

from __future__ import annotations

import re

import torch

from mcit.core.errors import UserError
from mcit.models.config import ModelConfig
from mcit.models.families import bridge_parameters, family_for


def lora_target_pattern(model, language_model_path: str, targets: list[str]) -> str:
    """A regex over full module names selecting the language model's linear layers named in `targets`."""
    language_model = model.get_submodule(language_model_path)
    leaf_names = sorted({name.rsplit(".", 1)[-1] for name, module in language_model.named_modules()
                         if isinstance(module, torch.nn.Linear)})
    if targets != ["all-linear"]:
        unknown = sorted(set(targets) - set(leaf_names))
        if unknown:
            raise UserError(f"config key 'model.lora.targets': {', '.join(unknown)} not found in the language model; "
                            f"its linear layers are: {', '.join(leaf_names)}")
        leaf_names = sorted(targets)
    if not leaf_names:
        raise UserError("the language model has no linear layers for LoRA; use model.tune=full or projector")
    return rf"^{re.escape(language_model_path)}\..*\.({'|'.join(map(re.escape, leaf_names))})$"


def apply_tuning(model, config: ModelConfig, vision_path: str, projector_path: str, language_model_path: str):
    """Freeze and unfreeze parts of `model` per `config`; wraps it in peft for LoRA. Returns the model."""
    if config.tune == "lora":
        from peft import LoraConfig, get_peft_model

        pattern = lora_target_pattern(model, language_model_path, list(config.lora.targets))
        lora = LoraConfig(r=config.lora.rank, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                          target_modules=pattern, bias="none")
        model = get_peft_model(model, lora)
        base = model.get_base_model()
    else:
        base = model
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        if config.tune == "full":
            for parameter in base.get_submodule(language_model_path).parameters():
                parameter.requires_grad_(True)
            head = base.get_output_embeddings()
            if head is not None:
                for parameter in head.parameters():
                    parameter.requires_grad_(True)
    if config.tune != "none":
        for parameter in base.get_submodule(projector_path).parameters():
            parameter.requires_grad_(config.tune_projector)
        for parameter in bridge_parameters(base, family_for(base.config.model_type)):
            parameter.requires_grad_(config.tune_projector)
        if config.tune_vision:
            for parameter in base.get_submodule(vision_path).parameters():
                parameter.requires_grad_(True)
    return model
