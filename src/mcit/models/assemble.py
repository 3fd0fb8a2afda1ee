"""Turning a built Hugging Face network and its processor into mcit's model adapter.

The steps every model goes through once its weights exist, wherever they came from: find the
family's parts, set up what trains (`model.tune`, LoRA), and switch on gradient checkpointing
when asked. `mcit.models.shapes` uses it for the random-weight benchmark shapes built on a GPU.
"""

from __future__ import annotations

import warnings

from mcit.models.adapter import VisionLanguageModel
from mcit.models.config import ModelConfig
from mcit.models.families import family_for
from mcit.models.trainable import apply_tuning


def assemble(network, processor, config: ModelConfig) -> VisionLanguageModel:
    """The adapter over `network` with its trainable parts set up per `config`."""
    family = family_for(network.config.model_type)
    plain = VisionLanguageModel(network, processor, family, config.name)
    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`: a notice for peft, not for users
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        network = apply_tuning(network, config, plain.vision_path, plain.projector_path, plain.language_model_path)
    if config.gradient_checkpointing:
        network.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(network, "enable_input_require_grads"):
            network.enable_input_require_grads()
    return VisionLanguageModel(network, processor, family, config.name)
