"""How many rows of features each image sends through a family's projector.

The projector of a LLaVA sees one row per image ([images, patches, width]); other families feed it
several rows per image: LLaVA-NeXT and LLaVA-OneVision one per crop of their any-resolution
tiling, Idefics3 and SmolVLM one per sub-image of their image splitting, Qwen2-VL one per vision
patch (all images' patches in one sequence). Pooling image features per image and routing images
to per-task projectors (EProj) both need to know which rows belong to which image; each function
here answers that from a batch, in image order, computing the count exactly as the model itself
does.
"""

from __future__ import annotations

import torch


def one_row_per_image(config, batch: dict) -> list[int]:
    """LLaVA, BLIP-2, InstructBLIP, PaliGemma: the projector gets one row per image."""
    return [1] * int(batch["pixel_values"].shape[0])


def anyres_crops(config, batch: dict) -> list[int]:
    """LLaVA-NeXT and LLaVA-OneVision: the base image plus the crops of its best-fitting grid."""
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    return [int(image_size_to_num_patches(image_size=size, grid_pinpoints=config.image_grid_pinpoints,
                                          patch_size=config.vision_config.image_size))
            for size in batch["image_sizes"]]


def real_subimages(config, batch: dict) -> list[int]:
    """Idefics3 and SmolVLM: the sub-images of a sample that are not all-zero padding."""
    pixels = batch["pixel_values"]
    rows = pixels.shape[0]
    flat = pixels.reshape(rows * pixels.shape[1], -1)
    real = (flat == 0.0).sum(dim=1) != flat.shape[1]
    return [int(n) for n in real.view(rows, -1).sum(dim=1).tolist() if n > 0]


def vision_patches(config, batch: dict) -> list[int]:
    """Qwen2-VL and Qwen2.5-VL: t·h·w patches of each image (before the 2×2 merge)."""
    return [int(n) for n in torch.as_tensor(batch["image_grid_thw"]).prod(dim=-1).tolist()]
