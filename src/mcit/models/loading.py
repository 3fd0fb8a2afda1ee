"""Loading a model by name: a built-in tiny model, a local folder, or a hub id from the cache.

Nothing in a model's files runs as code unless the user asks. Weights are read from safetensors;
a model whose weights are only pickle files (`pytorch_model.bin`, `.pt`), which can hide code that
runs on loading, is refused unless `model.allow_pickle` is set, and even then they are read with
`torch.load(weights_only=True)` (transformers' loader, which refuses pickled objects other than
tensors and plain containers). A model's own Python code runs only with `model.trust_remote_code`.
"""

from __future__ import annotations

from pathlib import Path

from mcit.core.errors import UserError
from mcit.models.adapter import VisionLanguageModel
from mcit.models.assemble import assemble
from mcit.models.config import ModelConfig

WEIGHTS_DIR = Path(__file__).parent / "tiny" / "weights"
#: Suffixes of weight files stored with pickle.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")

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
    import pickle  # only for its exception type: nothing is unpickled here

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # mcit's console reports progress; no bar per weight file

    kwargs = {"trust_remote_code": config.trust_remote_code, "revision": config.revision}
    # Without allow_pickle only safetensors; with it safetensors when present, else pickle read weights_only.
    weights = {"use_safetensors": None, "weights_only": True} if config.allow_pickle else {"use_safetensors": True}
    try:
        processor = AutoProcessor.from_pretrained(source, **kwargs)
        network = AutoModelForImageTextToText.from_pretrained(
            source, dtype=getattr(torch, config.dtype), **weights, **kwargs)
    except ImportError as exc:  # a family whose processor needs an optional package (torchvision, ...)
        from mcit.models.families import requirement_error

        raise (requirement_error(source) or UserError(f"cannot load model '{source}': {exc}")) from None
    except pickle.UnpicklingError:
        raise UserError(f"cannot load model '{source}': its pickle weights hold objects other than tensors, which "
                        "mcit does not load (they could run code); convert the weights to safetensors") from None
    except (OSError, ValueError) as exc:
        message = (str(exc).splitlines()[0] if str(exc) else type(exc).__name__).rstrip(". ")
        hint = ("; if it has only pickle weights, convert them to safetensors or set model.allow_pickle=true"
                if not config.allow_pickle and "safetensors" in message else "")
        raise UserError(
            f"cannot load model '{source}': {message}{hint}. Give a built-in name ({', '.join(BUILTIN_MODELS)}), "
            "a folder with config.json and safetensors weights, or a hub id already in the local "
            "Hugging Face cache (download it on a connected machine first)") from None
    return network, processor


def _refuse_pickle_only(folder: Path, config: ModelConfig) -> None:
    """Refuse a model folder whose weights are only pickle files, unless `model.allow_pickle` is set."""
    if config.allow_pickle or any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"{folder}: the weights are stored only with pickle ({pickles[0]}), which can run code "
                        "hidden in the file, so mcit does not load them; convert them to safetensors "
                        "(save_pretrained(..., safe_serialization=True)), or set model.allow_pickle=true "
                        "if you trust where they come from (they are then read with weights_only)")


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
            _refuse_pickle_only(folder, config)
            source = str(folder)
        else:
            source = config.name
        network, processor = _load_pretrained(source, config)
    return assemble(network, processor, config)
