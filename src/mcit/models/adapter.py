"""One object for a loaded vision-language model: its network, processor, parts and generation.

Methods and the loop talk to a model only through this adapter: they build batches from records,
run forward passes, generate answers, read the frozen image features, and reach the projector
and the language model's input embeddings without knowing the family's module names.
"""

from __future__ import annotations

from typing import Sequence

import torch

from mcit.core.errors import UserError
from mcit.data.schema import Record
from mcit.models import batches
from mcit.models.families import Family, find_module


class VisionLanguageModel:
    """A Hugging Face vision-language model, its processor and where its parts live.

    Attributes:
        network: the model as built (a peft model when LoRA is on); methods may replace
            submodules of it (a task's projector) between tasks.
        module: what forward passes run on; the loop sets it to the `accelerate`-prepared
            wrapper of `network` (DDP, FSDP, DeepSpeed) and back.
        processor: the model's processor (tokenizer and image processor).
        family: where the vision encoder, projector and language model live.
        name: the model's name or path as given.
    """

    def __init__(self, network: torch.nn.Module, processor, family: Family, name: str):
        self.network = network
        self.module = network
        self.processor = processor
        self.family = family
        self.name = name
        base = self.base
        self.vision_path, _ = find_module(base, family.vision, "vision encoder")
        self.projector_path, _ = find_module(base, family.projector, "projector")
        self.language_model_path, _ = find_module(base, family.language_model, "language model")

    @property
    def base(self) -> torch.nn.Module:
        """The underlying `...ForConditionalGeneration` model, without the peft wrapper."""
        get_base = getattr(self.network, "get_base_model", None)
        return get_base() if callable(get_base) else self.network

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def projector(self) -> torch.nn.Module:
        return self.base.get_submodule(self.projector_path)

    def set_projector(self, module: torch.nn.Module) -> None:
        """Replace the projector (expansion methods keep one per task)."""
        parent_path, _, attribute = self.projector_path.rpartition(".")
        parent = self.base.get_submodule(parent_path) if parent_path else self.base
        setattr(parent, attribute, module)

    @property
    def vision_encoder(self) -> torch.nn.Module:
        return self.base.get_submodule(self.vision_path)

    @property
    def language_model(self) -> torch.nn.Module:
        return self.base.get_submodule(self.language_model_path)

    def input_embeddings(self) -> torch.nn.Embedding:
        return self.base.get_input_embeddings()

    # ---- batches -----------------------------------------------------------------------------

    def _check_images(self, records: Sequence[Record]) -> None:
        if self.family.image_required:
            for record in records:
                if record.image is None:
                    raise UserError(f"record {record.source or record.id} has no image, but {self.family.name} models "
                                    "need one in every record; drop text-only records or use another model family")

    def training_batch(self, records: Sequence[Record]) -> dict[str, torch.Tensor]:
        self._check_images(records)
        return batches.training_batch(self.processor, records, template=self.family.template,
                                      nested=self.family.nested_images)

    def generation_batch(self, records: Sequence[Record]) -> dict[str, torch.Tensor]:
        self._check_images(records)
        return batches.generation_batch(self.processor, records, template=self.family.template,
                                        nested=self.family.nested_images)

    def projector_rows(self, batch: dict[str, torch.Tensor]) -> list[int]:
        """Rows each image of `batch` sends through the projector, in image order (1 for LLaVA;
        crops, sub-images or vision patches for other families: `mcit.models.layouts`)."""
        return self.family.rows(self.base.config, batch)

    def to_device(self, batch: dict) -> dict:
        device = self.device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    # ---- forward and generation --------------------------------------------------------------

    def forward(self, batch: dict[str, torch.Tensor]):
        """A forward pass with the language-model loss over the answer tokens."""
        inputs = {k: v for k, v in batch.items() if not k.startswith("mcit_")}
        return self.module(**inputs)

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], max_new_tokens: int) -> list[str]:
        """Greedy answers for a left-padded generation batch."""
        inputs = {k: v for k, v in batch.items() if not k.startswith("mcit_")}
        tokenizer = self.processor.tokenizer
        output = self.network.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    @torch.no_grad()
    def image_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean-pooled frozen vision features per image (the projector's input), shape [images, D].

        Read at the projector's input, so whatever the family's vision encoder and feature
        selection are, this is exactly what the model itself feeds into the language side. Where
        the projector's input is itself trained (BLIP-2's Q-Former output), the family reads the
        vision encoder's output instead. A family whose projector gets several rows per image
        (crops, sub-images, patches) has them averaged per image.
        """
        captured: list[torch.Tensor] = []

        def capture(_module, args, kwargs):
            captured.append((args[0] if args else next(iter(kwargs.values()))).detach())

        if self.family.features == "vision":
            pixels = batch["pixel_values"].to(next(self.vision_encoder.parameters()).dtype)
            return self.vision_encoder(pixel_values=pixels)[0].mean(dim=1).float()
        handle = self.projector.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            image_keys = {k: v for k, v in batch.items() if k.startswith("pixel") or k.startswith("image_")}
            self.base.get_image_features(**image_keys)
        finally:
            handle.remove()
        features = captured[0]
        rows = self.projector_rows(batch)
        if any(n != 1 for n in rows):
            flat = features.reshape(sum(rows), -1, features.shape[-1])
            return torch.stack([part.reshape(-1, part.shape[-1]).mean(dim=0)
                                for part in flat.split(rows)]).float()
        if features.dim() == 3:
            features = features.mean(dim=1)
        return features.float()

    @torch.no_grad()
    def instruction_embeddings(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean of the frozen input embeddings of each sample's text tokens (image tokens excluded), [B, D]."""
        input_ids = batch["input_ids"]
        mask = batch["attention_mask"].bool()
        image_token = getattr(self.base.config, "image_token_index", getattr(self.base.config, "image_token_id", None))
        if image_token is not None:
            mask = mask & (input_ids != image_token)
        embeddings = self.input_embeddings()(input_ids).float()
        weights = mask.unsqueeze(-1).float()
        return (embeddings * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    # ---- parameters --------------------------------------------------------------------------

    def trainable_named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        """The parameters that currently require gradients, by name."""
        return [(n, p) for n, p in self.network.named_parameters() if p.requires_grad]

    def count_parameters(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.network.parameters())
        trainable = sum(p.numel() for _, p in self.trainable_named_parameters())
        return {"total": total, "trainable": trainable}
