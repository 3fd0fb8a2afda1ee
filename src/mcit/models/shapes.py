"""Random-weight models with the shapes of published ones, for timing on a GPU (`mcit bench`).

`llava-7b-shape` has LLaVA-1.5-7B's shape: a CLIP ViT-L/14 vision tower at 336 pixels (24 layers,
width 1024; 576 image tokens per image, read at the penultimate layer), the two-layer GELU
projector, and a 7B Llama language model (32 layers, width 4096, MLP width 11008, 32 heads,
32,064-token vocabulary): about 7.06 billion parameters. Its weights are random, so its speed and
memory are those of the real model while its answers are noise. It is built from configs directly
on the GPU in the configured dtype (no download, no meta device, no copy through CPU memory), and
refused without a GPU. Its processor is the tiny models' tokenizer (every id is below the
vocabulary size) with a 336-pixel CLIP image processor, so training batches carry the real
model's 576 image tokens per sample.
"""

from __future__ import annotations

from mcit.core.errors import UserError
from mcit.models.adapter import VisionLanguageModel
from mcit.models.config import ModelConfig

#: The benchmark shapes by name, each with one line for help texts.
SHAPES = {
    "llava-7b-shape": "LLaVA-1.5-7B's shape (CLIP ViT-L/14-336, 7B Llama) with random weights, built on a GPU",
}


def llava_7b_shape_config(tokenizer):
    """The `LlavaConfig` of LLaVA-1.5-7B, with the special-token ids of `tokenizer`."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu",
                       pad_token_id=tokenizer.pad_token_id)


def shape_processor():
    """The tiny models' processor at LLaVA-1.5's image size (336 pixels, 14-pixel patches)."""
    from mcit.models.tiny.build import TinySize, build_processor

    return build_processor(TinySize(image_size=336, patch_size=14))


def build_shape(config: ModelConfig, device, seed: int = 0) -> VisionLanguageModel:
    """The shape `config.name` with random weights on `device` (a GPU), tuned per `config`."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from mcit.models.assemble import assemble

    if config.name not in SHAPES:
        raise UserError(f"unknown model shape '{config.name}'; shapes: {', '.join(SHAPES)}")
    device = torch.device(device)
    if device.type != "cuda":
        raise UserError(f"'{config.name}' is a 7-billion-parameter model built with random weights directly on a "
                        "GPU, and no GPU is available here; on a CPU benchmark the tiny model (the default)")
    processor = shape_processor()
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with torch.device(device):
            network = LlavaForConditionalGeneration._from_config(llava_7b_shape_config(processor.tokenizer),
                                                                 dtype=getattr(torch, config.dtype))
    finally:
        torch.random.set_rng_state(generator_state)
    return assemble(network, processor, config)
