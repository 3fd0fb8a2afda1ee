"""Build a tiny LLaVA from a config: CLIP vision tower, Llama language model, LLaVA processor.

The result is a standard `LlavaForConditionalGeneration` with a `LlavaProcessor`, saved with
`save_pretrained` and loaded back with `AutoModelForImageTextToText` / `AutoProcessor` exactly like
a hub model, so every code path the tiny model takes is the one a 7B LLaVA takes. Weights are
initialised from a seed, so the same seed gives the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcit.data.builtin.scene import IMAGE_SIZE

#: The tiny models' format: LLaVA-1.5's turns (`USER: ... ASSISTANT:`) with the instruction
#: *before* the image. A causal language model reads the image tokens after the question, so each
#: image token can already tell whether it shows the object asked about (as InstructBLIP's
#: instruction-aware Q-Former lets the visual features depend on the instruction); with the image
#: first, a 4-layer model has to find the object from the answer position alone and does not learn
#: to at the stream's budget (docs/benchmark.md measures both orders).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: "
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}\n{% endif %}{% endfor %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>{% endif %}{% endfor %} "
    "{% elif message['role'] == 'assistant' %}ASSISTANT: "
    "{% for part in message['content'] %}{{ part['text'] }}{% endfor %}</s>"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


@dataclass(frozen=True)
class TinySize:
    """Dimensions of a tiny model."""

    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 192
    text_layers: int = 4
    text_heads: int = 4
    text_intermediate: int = 512
    patch_size: int = 8
    image_size: int = IMAGE_SIZE
    max_positions: int = 256


def build_processor(size: TinySize = TinySize()):
    """The tiny models' `LlavaProcessor`: in-process tokenizer and a PIL-backed CLIP image processor."""
    from transformers import LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    from mcit.models.tiny.vocabulary import build_tokenizer

    image_processor = CLIPImageProcessorPil(
        size={"height": size.image_size, "width": size.image_size}, do_center_crop=False,
        do_resize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=build_tokenizer(), patch_size=size.patch_size,
        num_additional_image_tokens=1, vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
    )


def build_model(processor, size: TinySize = TinySize(), seed: int = 0):
    """A randomly initialised tiny `LlavaForConditionalGeneration`, identical for the same seed."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    tokenizer = processor.tokenizer
    vision = CLIPVisionConfig(
        hidden_size=size.vision_hidden, intermediate_size=size.vision_hidden * 2,
        num_hidden_layers=size.vision_layers, num_attention_heads=size.vision_heads,
        image_size=size.image_size, patch_size=size.patch_size, projection_dim=size.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=size.text_hidden, intermediate_size=size.text_intermediate,
        num_hidden_layers=size.text_layers, num_attention_heads=size.text_heads,
        num_key_value_heads=size.text_heads, max_position_embeddings=size.max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1, vision_feature_select_strategy="default", projector_hidden_act="gelu",
        pad_token_id=tokenizer.pad_token_id,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlavaForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def save_tiny(model, processor, folder: str | Path, dtype: str = "float32") -> Path:
    """Save model and processor as a Hugging Face folder (safetensors), optionally in half precision."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # A tokenizer keeps the keyword arguments it was loaded with and saves them as its settings;
    # how this process reached the hub (HF_HUB_OFFLINE=1 loads with local_files_only) is not one.
    processor.tokenizer.init_kwargs.pop("local_files_only", None)
    if dtype != "float32":
        model = model.to(getattr(torch, dtype))
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    for path in folder.iterdir():  # readable by everyone, like any installed package data
        path.chmod(0o644)
    return folder
