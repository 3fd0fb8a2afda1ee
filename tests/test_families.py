"""Every supported vision-language family end to end: a tiny random-weight model of the family,
built from its config with its real processor and saved like a hub checkpoint, runs `mcit run`
for two built-in tasks with a LoRA method (seqft), the prompt method (fwd-prompt) and an expansion
method (eproj), and its default trainable parts are the family's projector (and bridge), LoRA on
the language model, and never the vision encoder.

Families whose processor needs a package that is missing (torchvision for Qwen2-VL, Qwen2.5-VL,
LLaVA-OneVision and SmolVLM, num2words for SmolVLM) are skipped with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import family_models
from mcit.core.errors import UserError
from mcit.data.builtin.streams import TASKS, generate
from mcit.data.schema import Record
from mcit.methods.components.routing import RoutedProjector
from mcit.models.batches import IGNORE_INDEX
from mcit.models.config import ModelConfig
from mcit.models.families import FAMILIES, family_for, missing_packages, requirement_error
from mcit.models.loading import load_model
from mcit.run.cli import main

FAST = ["benchmark.train_size=8", "benchmark.test_size=4", "train.max_steps=2", "train.batch_size=4",
        "eval.batch_size=4", "train.checkpoint_every=null"]
#: Small settings per method, so that each run takes a second or two.
METHODS = {
    "seqft": [],
    "fwd-prompt": ["method.prompts_per_task=2", "method.prompt_length=2", "method.top_n=1",
                   "method.key_init_samples=4", "method.basis_samples=4"],
    "eproj": ["method.key_samples=8"],
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _skip_unless_buildable(model_type: str) -> None:
    missing = missing_packages(family_for(model_type))
    if missing:
        pytest.skip(f"the {model_type} processor needs {', '.join(missing)}, not installed")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """`folders(model_type)`: a saved tiny model of that type (built once per module)."""
    root = tmp_path_factory.mktemp("families")
    built: dict[str, Path] = {}

    def get(model_type: str) -> Path:
        _skip_unless_buildable(model_type)
        if model_type not in built:
            built[model_type] = family_models.BUILDERS[model_type](root / model_type)
        return built[model_type]

    return get


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[Record]:
    folder = tmp_path_factory.mktemp("images")
    out = []
    for name in ("ocr", "digits"):
        for i, sample in enumerate(generate(TASKS[name], 0, "test", 2)):
            path = folder / f"{name}-{i}.png"
            sample.image.save(path)
            out.append(Record(f"{name}-{i}", path, sample.instruction, sample.answers))
    return out


MODEL_TYPES = list(family_models.BUILDERS)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_family_runs_lora_prompt_and_expansion_methods(model_type, folders, tmp_path):
    folder = folders(model_type)
    for method, options in METHODS.items():
        output = tmp_path / method
        code = main(["run", "--model", str(folder), "--order", "ocr,digits", "--method", method,
                     "--output", str(output), "--quiet", *FAST, *options])
        assert code == 0, f"{model_type} with {method}"
        results = json.loads((output / "results.json").read_text())
        assert results["rows"] == ["zero-shot", "after ocr", "after digits"]
        matrix = results["accuracy_matrix"]
        assert len(matrix) == 3 and all(len(row) == 2 for row in matrix)
        assert all(isinstance(value, float) and 0.0 <= value <= 1.0 for row in matrix for value in row)
        if method == "eproj":
            assert results["method_report"]["projectors"] == 2


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_family_defaults_train_projector_and_lora_never_vision(model_type, folders, records):
    model = load_model(ModelConfig(name=str(folders(model_type))))
    family = model.family
    names = [n for n, _ in model.trainable_named_parameters()]
    lora = [n for n in names if "lora_" in n]
    assert lora and all(f".{model.language_model_path}." in n for n in lora)
    projector = f".{model.projector_path}."
    assert [n for n in names if projector in n]
    vision = f".{model.vision_path}."
    assert not [n for n in names if vision in n and projector not in n], "the vision encoder trains"
    assert not [n for n in names if "lora_" not in n and projector not in n and not _in_bridge(n, family)]

    batch = model.training_batch(records)
    tokenizer = model.processor.tokenizer
    for i, record in enumerate(records):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX].tolist()
        assert labelled == tokenizer(record.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    generation = model.generation_batch(records)
    assert model.image_features(generation).shape[0] == len(records)
    assert len(model.projector_rows(generation)) == len(records)
    model.network.eval()
    assert len(model.generate(generation, 3)) == len(records)


def _in_bridge(name: str, family) -> bool:
    return any(f".{path}" in name for candidates in family.bridge for path in candidates)


def test_processor_without_chat_template_gets_the_family_format(folders, records):
    model = load_model(ModelConfig(name=str(folders("blip-2"))))
    assert not getattr(model.processor, "chat_template", None)
    batch = model.generation_batch(records[:1])
    text = model.processor.tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True)
    assert text.startswith("Question :") and text.endswith("Answer :")


def test_text_only_record_is_refused_where_the_family_needs_images(folders, records):
    model = load_model(ModelConfig(name=str(folders("paligemma"))))
    text_only = Record("no-image", None, "Say hello.", ["hello"])
    with pytest.raises(UserError, match="no-image has no image"):
        model.training_batch([records[0], text_only])


def test_routed_projector_sends_each_images_rows_to_its_projector():
    """Rows of consecutive images with the same route go through their projector together, and a
    projector that merges rows (2 -> 1, like Qwen2-VL's patch merger) still lines up per image."""
    torch.manual_seed(0)

    class Merge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.linear(x.reshape(-1, 8))

    experts = [Merge(), Merge()]
    routed = RoutedProjector(experts)
    rows = [4, 2, 6]
    features = torch.randn(sum(rows), 4)
    routed.route, routed.rows = [1, 0, 1], rows
    out = routed(features)
    parts = features.split(rows)
    expected = torch.cat([experts[1](parts[0]), experts[0](parts[1]), experts[1](parts[2])])
    assert torch.equal(out, expected)
    routed.route = [1, 1]
    with pytest.raises(RuntimeError, match="route for 2 images"):
        routed(features)


def test_every_family_is_covered_and_families_needing_packages_say_so(tmp_path):
    covered = {family_for(t).name for t in MODEL_TYPES} | {"llava"}  # the tiny LLaVA: tests/test_models.py
    assert covered == {f.name for f in FAMILIES}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "qwen2_vl"}))
    error = requirement_error(str(tmp_path))
    if missing_packages(family_for("qwen2_vl")):
        assert error is not None and "torchvision" in str(error)
    else:
        assert error is None
