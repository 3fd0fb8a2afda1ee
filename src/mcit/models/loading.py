"""Loading a model by name: a built-in tiny model, a local folder, or a hub id from the cache.

Weights are read from safetensors only (no pickle), and a model's own Python code runs only when
the user sets `model.trust_remote_code`.
"""

from __future__ import annotations

from pathlib import Path

from mcit.core.errors import UserError
from mcit.models.adapter import VisionLanguageModel
from mcit.models.config import ModelConfig
from mcit.models.families import family_for
from mcit.models.trainable import apply_tuning

WEIGHTS_DIR = Path(__file__).parent / "tiny" / "weights"

#: Built-in models: name -> one-line description.
BUILTIN_MODELS = {
    "tiny-instruct": "tiny LLaVA, caption-pretrained then jointly instruction-tuned (like InstructBLIP); the default",
    "tiny-base": "tiny LLaVA, caption-pretrained only (like BLIP-2)",
    "tiny-random": "tiny LLaVA with random weights, built from its config for a seed (for tests and pre-training)",
}


def builtin_folder(name: str) -> Path:
    """The shipped folder of a built-in pretrained model."""
    folder = WEIGHTS_DIR / name
    if not (folder / "config.json").exists():
        raise UserError(f"the built-in model '{name}' is missing from this installation ({folder}); "
                        f"rebuild it with `mcit pretrain --model {name}` or reinstall mcit")
    return folder


def _load_pretrained(source: str, config: ModelConfig):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs = {"trust_remote_code": config.trust_remote_code, "revision": config.revision}
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
        network = AutoModelForImageTextToText.from_pretrained(
            source, dtype=getattr(torch, config.dtype), use_safetensors=True, **kwargs)
    except (OSError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"cannot load model '{source}': {message}. Give a built-in name ({', '.join(BUILTIN_MODELS)}), "
            "a folder with config.json and safetensors weights, or a hub id already in the local "
            "Hugging Face cache (download it on a connected machine first)") from None
    return network, processor


def load_model(config: ModelConfig, seed: int = 0) -> VisionLanguageModel:
    """Load the model named in `config`, with its trainable parts set up."""
    import torch

    if config.name == "tiny-random":
        from mcit.models.tiny.build import build_model, build_processor

        processor = build_processor()
        network = build_model(processor, seed=seed).to(getattr(torch, config.dtype))
    else:
        if config.name in BUILTIN_MODELS:
            source = str(builtin_folder(config.name))
        elif Path(config.name).expanduser().exists():
            folder = Path(config.name).expanduser()
            if not (folder / "config.json").exists():
                raise UserError(f"{folder}: not a model folder (no config.json); pass a folder saved with save_pretrained")
            source = str(folder)
        else:
            source = config.name
        network, processor = _load_pretrained(source, config)
    family = family_for(network.config.model_type)
    plain = VisionLanguageModel(network, processor, family, config.name)
    network = apply_tuning(network, config, plain.vision_path, plain.projector_path, plain.language_model_path)
    if config.gradient_checkpointing:
        network.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(network, "enable_input_require_grads"):
            network.enable_input_require_grads()
    return VisionLanguageModel(network, processor, family, config.name)
