"""Tiny random-weight models of each vision-language family, built from configs in-process.

Each builder makes the family's real processor (its own processor class over a real image
processor made from its constructor and an in-process WordPiece tokenizer with the family's
special tokens) and its real `...ForConditionalGeneration` model from a small config, and saves
both with `save_pretrained` (safetensors), so `mcit run --model FOLDER` loads them exactly as it
would load a hub checkpoint. Images are the built-in benchmark's 48-pixel ones; every model has
two small layers per tower, so a run of two tasks takes seconds.

Processors that include a video processor (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision, SmolVLM) need
torchvision; `NEEDS_TORCHVISION` names those builders.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mcit.models.prompts import LLAVA as LLAVA_TEMPLATE
from mcit.models.tiny.vocabulary import build_vocabulary

SIZE = 48  # the built-in images' side
PATCH = 8
MEAN_STD = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


def tokenizer(extra: tuple[str, ...] = (), eos: str = "</s>", bos: str | None = "<s>", named: dict | None = None):
    """A fast WordPiece tokenizer over the tiny vocabulary plus `extra` special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = build_vocabulary()
    for token in extra:
        vocab.setdefault(token, len(vocab))
    core = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=64))
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    result = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=bos, eos_token=eos, unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"} if named is None else named, padding_side="left",
        model_input_names=["input_ids", "attention_mask"])
    result.add_tokens(list(extra), special_tokens=True)
    return result


def llama(tok, hidden: int = 64, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                       tie_word_embeddings=False, **extra)


def clip_vision():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            image_size=SIZE, patch_size=PATCH, projection_dim=32)


def siglip_vision():
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=SIZE, patch_size=PATCH)


def _ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _model(cls, config, tok, seed: int = 0):
    torch.manual_seed(seed)
    model = cls(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    return model


# ---- families ----------------------------------------------------------------------------------

QWEN_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def _qwen_processor(cls, with_template: bool):
    from transformers import Qwen2VLImageProcessorPil, Qwen2VLVideoProcessor

    from mcit.models.prompts import QWEN

    tok = tokenizer(QWEN_TOKENS, eos="<|im_end|>", bos=None,
                    named={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                           "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"})
    grid = dict(patch_size=PATCH, merge_size=2, temporal_patch_size=2, **MEAN_STD)
    images = Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=SIZE * SIZE, **grid)
    videos = Qwen2VLVideoProcessor(**grid)
    return cls(image_processor=images, tokenizer=tok, video_processor=videos,
               chat_template=QWEN if with_template else None)


def qwen2_vl(folder: Path, with_template: bool = True) -> Path:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    processor = _qwen_processor(Qwen2VLProcessor, with_template)
    tok = processor.tokenizer
    image, video, start, end = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    config = Qwen2VLConfig(
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=PATCH,
                           spatial_merge_size=2, temporal_patch_size=2),
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                         bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        image_token_id=image, video_token_id=video, vision_start_token_id=start, vision_end_token_id=end)
    return save(_model(Qwen2VLForConditionalGeneration, config, tok), processor, folder)


def qwen2_5_vl(folder: Path) -> Path:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor = _qwen_processor(Qwen2_5_VLProcessor, True)
    tok = processor.tokenizer
    image, video, start, end = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    config = Qwen2_5_VLConfig(
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, out_hidden_size=64, num_heads=4,
                           patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2, window_size=32,
                           fullatt_block_indexes=[1]),
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                         bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        image_token_id=image, video_token_id=video, vision_start_token_id=start, vision_end_token_id=end)
    return save(_model(Qwen2_5_VLForConditionalGeneration, config, tok), processor, folder)


def _qformer():
    return dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                encoder_hidden_size=32, max_position_embeddings=128)


def blip2(folder: Path) -> Path:
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessorPil,
                              OPTConfig)

    tok = tokenizer(named={})  # the processor registers its own image token
    images = BlipImageProcessorPil(size={"height": SIZE, "width": SIZE}, **MEAN_STD)
    processor = Blip2Processor(image_processor=images, tokenizer=tok, num_query_tokens=4)
    text = OPTConfig(vocab_size=len(tok), hidden_size=64, ffn_dim=128, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=512, word_embed_proj_dim=64, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = Blip2Config(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, image_size=SIZE, patch_size=PATCH),
                         qformer_config=_qformer(), text_config=text.to_dict(), num_query_tokens=4,
                         image_token_index=tok.convert_tokens_to_ids("<image>"))
    return save(_model(Blip2ForConditionalGeneration, config, tok), processor, folder)


def instructblip(folder: Path) -> Path:
    from transformers import (BlipImageProcessorPil, InstructBlipConfig, InstructBlipForConditionalGeneration,
                              InstructBlipProcessor)

    tok, qformer_tok = tokenizer(named={}), tokenizer(named={})  # the processor registers its own image token
    images = BlipImageProcessorPil(size={"height": SIZE, "width": SIZE}, **MEAN_STD)
    processor = InstructBlipProcessor(image_processor=images, tokenizer=tok, qformer_tokenizer=qformer_tok,
                                      num_query_tokens=4)
    config = InstructBlipConfig(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                   num_attention_heads=4, image_size=SIZE, patch_size=PATCH),
                                qformer_config={**_qformer(), "vocab_size": len(qformer_tok),
                                                "pad_token_id": qformer_tok.pad_token_id},
                                text_config=llama(tok).to_dict(), num_query_tokens=4,
                                image_token_index=tok.convert_tokens_to_ids("<image>"))
    return save(_model(InstructBlipForConditionalGeneration, config, tok), processor, folder)


def llava_next(folder: Path) -> Path:
    from transformers import (LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil,
                              LlavaNextProcessor)

    tok = tokenizer()
    pinpoints = [[SIZE, SIZE], [SIZE, 2 * SIZE]]
    images = LlavaNextImageProcessorPil(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE},
                                        image_grid_pinpoints=pinpoints, **MEAN_STD)
    processor = LlavaNextProcessor(image_processor=images, tokenizer=tok, patch_size=PATCH,
                                   num_additional_image_tokens=1,  # CLIP's class token
                                   vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE)
    config = LlavaNextConfig(vision_config=clip_vision(), text_config=llama(tok), image_grid_pinpoints=pinpoints,
                             image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
                             vision_feature_select_strategy="default")
    return save(_model(LlavaNextForConditionalGeneration, config, tok), processor, folder)


def llava_onevision(folder: Path) -> Path:
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessorPil, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor)

    from mcit.models.prompts import ONEVISION

    tok = tokenizer(("<|im_start|>", "<|im_end|>", "<video>"), eos="<|im_end|>", bos=None,
                    named={"image_token": "<image>", "video_token": "<video>"})
    pinpoints = [[SIZE, SIZE], [SIZE, 2 * SIZE]]
    images = LlavaOnevisionImageProcessorPil(size={"height": SIZE, "width": SIZE}, image_grid_pinpoints=pinpoints,
                                             **MEAN_STD)
    videos = LlavaOnevisionVideoProcessor(size={"height": SIZE, "width": SIZE}, **MEAN_STD)
    processor = LlavaOnevisionProcessor(image_processor=images, tokenizer=tok, video_processor=videos,
                                        num_image_tokens=(SIZE // PATCH) ** 2, vision_feature_select_strategy="full",
                                        chat_template=ONEVISION)
    text = llama(tok).to_dict()
    config = LlavaOnevisionConfig(vision_config=siglip_vision(), text_config=text, image_grid_pinpoints=pinpoints,
                                  image_token_index=_ids(tok, "<image>")[0], video_token_index=_ids(tok, "<video>")[0],
                                  vision_feature_layer=-1, vision_feature_select_strategy="full")
    return save(_model(LlavaOnevisionForConditionalGeneration, config, tok), processor, folder)


IDEFICS_TOKENS = ("<fake_token_around_image>", "<global-img>", "<end_of_utterance>", "<|im_start|>",
                  *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)))


def _idefics_parts(processor_cls, image_cls, extra: dict):
    from mcit.models.prompts import IDEFICS

    tok = tokenizer(IDEFICS_TOKENS, eos="<end_of_utterance>")
    images = image_cls(do_image_splitting=False, size={"longest_edge": SIZE}, max_image_size={"longest_edge": SIZE},
                       **MEAN_STD)
    processor = processor_cls(image_processor=images, tokenizer=tok, image_seq_len=(SIZE // PATCH // 2) ** 2,
                              chat_template=IDEFICS, **extra)
    return processor, tok


def idefics3(folder: Path) -> Path:
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor)

    processor, tok = _idefics_parts(Idefics3Processor, Idefics3ImageProcessorPil, {})
    config = Idefics3Config(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                               num_attention_heads=4, image_size=SIZE, patch_size=PATCH),
                            text_config=llama(tok).to_dict(), scale_factor=2,
                            image_token_id=_ids(tok, "<image>")[0], pad_token_id=tok.pad_token_id)
    return save(_model(Idefics3ForConditionalGeneration, config, tok), processor, folder)


def smolvlm(folder: Path) -> Path:
    from transformers import (SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMImageProcessorPil,
                              SmolVLMProcessor, SmolVLMVideoProcessor)

    videos = SmolVLMVideoProcessor(size={"longest_edge": SIZE}, max_image_size={"longest_edge": SIZE}, **MEAN_STD)
    processor, tok = _idefics_parts(SmolVLMProcessor, SmolVLMImageProcessorPil, {"video_processor": videos})
    config = SmolVLMConfig(vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=4, image_size=SIZE, patch_size=PATCH),
                           text_config=llama(tok).to_dict(), scale_factor=2,
                           image_token_id=_ids(tok, "<image>")[0], pad_token_id=tok.pad_token_id)
    return save(_model(SmolVLMForConditionalGeneration, config, tok), processor, folder)


def paligemma(folder: Path) -> Path:
    from transformers import GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers import SiglipImageProcessorPil

    tok = tokenizer(eos="</s>")
    images = SiglipImageProcessorPil(size={"height": SIZE, "width": SIZE}, **MEAN_STD)
    images.image_seq_length = (SIZE // PATCH) ** 2
    processor = PaliGemmaProcessor(image_processor=images, tokenizer=tok)
    tok = processor.tokenizer  # the processor adds its location and segmentation tokens
    text = GemmaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = PaliGemmaConfig(vision_config=siglip_vision().to_dict(), text_config=text.to_dict(),
                             image_token_index=tok.convert_tokens_to_ids("<image>"), projection_dim=64,
                             pad_token_id=tok.pad_token_id)
    return save(_model(PaliGemmaForConditionalGeneration, config, tok), processor, folder)


def save(model, processor, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


BUILDERS = {"qwen2_vl": qwen2_vl, "qwen2_5_vl": qwen2_5_vl, "blip-2": blip2, "instructblip": instructblip,
            "llava_next": llava_next, "llava_onevision": llava_onevision, "idefics3": idefics3, "smolvlm": smolvlm,
            "paligemma": paligemma}
NEEDS_TORCHVISION = ("qwen2_vl", "qwen2_5_vl", "llava_onevision", "smolvlm")
