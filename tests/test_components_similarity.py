"""Task similarity: the matrix's properties with stand-in encoders, the shipped MiniLM encoder,
and the encoder registries."""

from __future__ import annotations

import json

import pytest
import torch

from mcit.core.configs import ConfigError, from_dict
from mcit.methods.components import encoders
from mcit.methods.components.similarity import SimilarityOptions, TaskSimilarity
from mcit.methods.components.state import join_state, split_state
from test_methods_support import fake_context, make_task


def letters(texts, model, ctx) -> torch.Tensor:
    """A bag-of-letters text encoder: texts that share letters are similar."""
    out = torch.zeros(len(texts), 26)
    for i, text in enumerate(texts):
        for ch in text.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def pixels(records, model, ctx) -> torch.Tensor:
    return torch.stack([torch.tensor([1.0, float(len(r.instruction)), 0.0]) for r in records])


@pytest.fixture
def stand_ins(monkeypatch):
    monkeypatch.setitem(encoders.TEXT_ENCODERS, "letters", letters)
    monkeypatch.setitem(encoders.IMAGE_ENCODERS, "pixels", pixels)
    return TaskSimilarity("letters", "pixels", samples=8)


def test_self_similarity_is_one_and_the_matrix_is_symmetric(stand_ins, tmp_path):
    image = tmp_path / "x.png"
    tasks = [make_task("alpha", 20, image), make_task("beta", 20, image), make_task("zzz", 5)]
    ctx = fake_context(tasks)
    for task in tasks:
        stand_ins.observe(task, model=None, ctx=ctx)
    matrix = stand_ins.matrix()
    for i in range(3):
        assert matrix[i][i] == 1.0
        for j in range(3):
            assert matrix[i][j] == pytest.approx(matrix[j][i])
            assert -1.0 <= matrix[i][j] <= 1.0 + 1e-6
    assert stand_ins.means["zzz"]["image"] is None, "a task without images is compared on its texts"
    assert matrix[0][1] > matrix[0][2]
    report = stand_ins.report()
    assert report["tasks"] == ["alpha", "beta", "zzz"] and len(report["matrix"]) == 3
    json.dumps(report)


def test_state_round_trip_keeps_the_matrix(stand_ins):
    tasks = [make_task("alpha", 10), make_task("beta", 10)]
    for task in tasks:
        stand_ins.observe(task, None, fake_context(tasks))
    skeleton, tensors = split_state(stand_ins.state_dict())
    restored = TaskSimilarity("letters", "pixels", samples=8)
    restored.load_state_dict(join_state(json.loads(json.dumps(skeleton)), tensors))
    assert restored.matrix() == stand_ins.matrix() and restored.tasks == ["alpha", "beta"]


def test_a_task_is_embedded_once(stand_ins, monkeypatch):
    task = make_task("alpha", 10)
    stand_ins.observe(task, None, fake_context([task]))
    monkeypatch.setitem(encoders.TEXT_ENCODERS, "letters", lambda *a: pytest.fail("embedded twice"))
    stand_ins.observe(task, None, fake_context([task]))


def test_minilm_embeds_offline_and_normalised():
    class Model:
        device = torch.device("cpu")

    texts = ["What colour is the car?", "Which colour does the car have?", "Count the digits: 4 7 1"]
    embeddings = encoders.minilm(texts, Model(), None)
    assert embeddings.shape == (3, 384)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)
    similar, different = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])
    assert similar > different


def test_encoder_names_are_checked():
    assert from_dict(SimilarityOptions, {"text_encoder": "model-embeddings"}).text_encoder == "model-embeddings"
    with pytest.raises(ConfigError, match="method.text_encoder.*minilm"):
        from_dict(SimilarityOptions, {"text_encoder": "bert"}, prefix="method")
    with pytest.raises(ConfigError, match="method.image_encoder"):
        from_dict(SimilarityOptions, {"image_encoder": "clip"}, prefix="method")
    assert {"minilm", "model-embeddings"} <= set(encoders.TEXT_ENCODERS)
    assert "vision-tower" in encoders.IMAGE_ENCODERS


def test_model_encoders_on_the_tiny_model():
    from test_methods_support import tiny_context

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ctx, _ = tiny_context()
        similarity = TaskSimilarity("model-embeddings", "vision-tower", samples=6)
        for task in ctx.tasks:
            similarity.observe(task, ctx.model, ctx)
    finally:
        torch.set_num_threads(previous)
    means = similarity.means["ocr"]
    assert means["image"].shape == (128,) and means["instruction"].shape == (192,)
    matrix = similarity.matrix()
    assert matrix[0][0] == matrix[1][1] == 1.0 and matrix[0][1] == pytest.approx(matrix[1][0]) and matrix[0][1] < 1.0
