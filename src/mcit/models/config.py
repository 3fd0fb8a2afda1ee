"""Configuration of the model: which one, in which precision, and which parts train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mcit.core.configs import ConfigError, option


@dataclass
class LoraOptions:
    """LoRA adapters on the language model's linear layers (Hu et al., 2021)."""

    rank: int = option(8, "LoRA rank r", min=1)
    alpha: float = option(16.0, "LoRA scaling alpha (the update is scaled by alpha / rank)", min=0)
    dropout: float = option(0.0, "dropout on the LoRA input", min=0, max=1)
    targets: list[str] = option(
        default_factory=lambda: ["all-linear"],
        help="names of the language model's linear layers to adapt (e.g. q_proj,v_proj), or all-linear")


@dataclass
class ModelConfig:
    """Which vision-language model to load and how it trains."""

    name: str = option("tiny-instruct", "a built-in model (tiny-instruct, tiny-base, tiny-random), "
                       "a Hugging Face hub id (from the local cache when offline) or a local folder")
    tune: Literal["lora", "projector", "full", "none"] = option(
        "lora", "what trains in the language model: LoRA adapters, nothing (projector only), all weights, or nothing at all")
    tune_projector: bool = option(True, "train the vision-to-language projector (ignored when tune=none)")
    tune_vision: bool = option(False, "also train the vision encoder (rarely wanted; off by default)")
    lora: LoraOptions = option(default_factory=LoraOptions, help="LoRA settings when tune=lora")
    dtype: Literal["float32", "bfloat16", "float16"] = option("float32", "dtype the weights are loaded in")
    trust_remote_code: bool = option(False, "allow a hub model's own Python code to run (only for models you trust)")
    allow_pickle: bool = option(False, "accept weights stored only as pickle files (pytorch_model.bin, .pt); they are "
                                       "read with torch's weights_only loader, but prefer safetensors")
    gradient_checkpointing: bool = option(False, "recompute activations in backward to save memory")
    revision: str | None = option(None, "hub revision (branch, tag or commit) of the model")

    def validate(self) -> None:
        if not self.name.strip():
            raise ConfigError("config key 'model.name': empty; give a built-in name, a hub id or a folder")
