"""The model adapter on the tiny LLaVA: tokenizer, batches, trainable parts, generation, features."""

from __future__ import annotations

import pytest
import torch

from mcit.data.builtin.probes import PROBE_TASKS
from mcit.data.builtin.streams import TASKS, generate
from mcit.data.schema import Record
from mcit.models.batches import IGNORE_INDEX
from mcit.models.config import LoraOptions, ModelConfig
from mcit.models.loading import load_model


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[Record]:
    folder = tmp_path_factory.mktemp("images")
    out = []
    for name in ("ocr", "ground", "caption", "choice"):
        for i, sample in enumerate(generate(TASKS[name], 0, "test", 2)):
            path = folder / f"{name}-{i}.png"
            sample.image.save(path)
            out.append(Record(f"{name}-{i}", path, sample.instruction, sample.answers))
    return out


@pytest.fixture(scope="module")
def model():
    return load_model(ModelConfig(name="tiny-random"), seed=0)


def test_tokenizer_keeps_builtin_words_whole_and_spells_the_rest(model):
    tokenizer = model.processor.tokenizer
    for spec in (*TASKS.values(), *PROBE_TASKS.values()):
        name = spec.name
        for sample in generate(spec, 1, "test", 20):
            for text in (sample.instruction, *sample.answers):
                pieces = tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])
                assert "<unk>" not in pieces
                if name != "ocr":
                    assert not [p for p in pieces if p.startswith("##")], (text, pieces)
    ids = tokenizer("QXZ", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["Q", "##X", "##Z"]
    assert tokenizer.decode(ids) == "QXZ"


def test_same_seed_same_model_other_seed_other_model():
    a = load_model(ModelConfig(name="tiny-random", tune="none"), seed=3).network.state_dict()
    b = load_model(ModelConfig(name="tiny-random", tune="none"), seed=3).network.state_dict()
    c = load_model(ModelConfig(name="tiny-random", tune="none"), seed=4).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_labels_cover_exactly_the_answer_and_the_end_token(model, records):
    batch = model.training_batch(records)
    tokenizer = model.processor.tokenizer
    for i, record in enumerate(records):
        labelled = batch["labels"][i][batch["labels"][i] != IGNORE_INDEX].tolist()
        expected = tokenizer(record.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert labelled == expected
        # the labelled tokens are the last real tokens of the sequence (right padding)
        length = int(batch["attention_mask"][i].sum())
        assert batch["input_ids"][i][length - len(expected):length].tolist() == expected
    image_token = model.base.config.image_token_index
    assert int((batch["input_ids"][0] == image_token).sum()) == 36  # 6x6 patches of a 48-pixel image


@pytest.mark.parametrize("name", ["tiny-random", "tiny-base", "tiny-instruct"])
def test_tiny_models_read_the_instruction_before_the_image(name, records):
    """The tiny models' chat template puts the instruction first, so image tokens can attend to it."""
    tiny = load_model(ModelConfig(name=name, tune="none"), seed=0)
    tokenizer = tiny.processor.tokenizer
    batch = tiny.generation_batch(records[:1])
    ids = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
    image_at = [i for i, t in enumerate(ids) if t == tiny.base.config.image_token_index]
    question = tokenizer(records[0].instruction, add_special_tokens=False)["input_ids"]
    starts = [i for i in range(len(ids)) if ids[i:i + len(question)] == question]
    assert len(image_at) == 36 and image_at == list(range(image_at[0], image_at[0] + 36))
    assert starts and starts[0] + len(question) <= image_at[0]
    assert tokenizer.convert_ids_to_tokens(ids[image_at[-1] + 1:]) == ["ASSISTANT", ":"]


def test_left_padded_generation_matches_one_by_one(model, records):
    model.network.eval()
    together = model.generate(model.generation_batch(records), 6)
    alone = [model.generate(model.generation_batch([r]), 6)[0] for r in records]
    assert together == alone


def test_lora_goes_only_on_the_language_model(model):
    names = [n for n, _ in model.trainable_named_parameters()]
    lora = [n for n in names if "lora_" in n]
    assert lora and all(".language_model." in n for n in lora)
    assert not [n for n in names if "vision_tower" in n]
    assert [n for n in names if "multi_modal_projector" in n]


@pytest.mark.parametrize("tune, projector, expect_lm, expect_projector", [
    ("projector", True, False, True), ("full", True, True, True), ("none", True, False, False),
    ("lora", False, True, False),
])
def test_tuning_modes(tune, projector, expect_lm, expect_projector):
    model = load_model(ModelConfig(name="tiny-random", tune=tune, tune_projector=projector), seed=0)
    names = [n for n, _ in model.trainable_named_parameters()]
    assert bool([n for n in names if "language_model" in n]) == expect_lm
    assert bool([n for n in names if "multi_modal_projector" in n]) == expect_projector
    assert not [n for n in names if "vision_tower" in n]


def test_unknown_lora_target_is_refused():
    from mcit.core.errors import UserError

    with pytest.raises(UserError, match="q_proj"):
        load_model(ModelConfig(name="tiny-random", lora=LoraOptions(targets=["qkv"])), seed=0)


def test_features_shapes(model, records):
    batch = model.generation_batch(records)
    assert model.image_features(batch).shape == (len(records), 128)
    assert model.instruction_embeddings(batch).shape == (len(records), 192)


def test_model_round_trips_through_the_auto_classes(tmp_path, model):
    from mcit.models.tiny.build import save_tiny

    base = load_model(ModelConfig(name="tiny-random", tune="none"), seed=0)
    save_tiny(base.network, base.processor, tmp_path / "tiny")
    again = load_model(ModelConfig(name=str(tmp_path / "tiny"), tune="none"), seed=0)
    first, second = base.network.state_dict(), again.network.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert type(again.processor).__name__ == "LlavaProcessor"


def test_unknown_model_name_is_a_clear_error():
    from mcit.core.errors import UserError

    with pytest.raises(UserError, match="cannot load model 'no-such/model'"):
        load_model(ModelConfig(name="no-such/model"))


@pytest.mark.parametrize("name", ["tiny-base", "tiny-instruct"])
def test_the_built_tokenizer_is_the_shipped_models_tokenizer(name):
    """A generator's new wording must not shift token ids under the shipped start models' embeddings."""
    from mcit.models.loading import WEIGHTS_DIR
    from mcit.models.tiny.vocabulary import build_tokenizer

    shipped = load_model(ModelConfig(name=name, tune="none"), seed=0).processor.tokenizer
    assert shipped.get_vocab() == build_tokenizer().get_vocab()
    assert (WEIGHTS_DIR / name / "tokenizer.json").exists()
