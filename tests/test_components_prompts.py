"""The prompt pool, query-key selection, the key-matching loss, slot insertion and injection."""

from __future__ import annotations

import pytest
import torch

from mcit.methods.components.prompts import (PromptInjector, PromptPool, key_matching_loss, match_scores,
                                             perturbed_keys, select_top, vocabulary_prompts)
from mcit.models.batches import IGNORE_INDEX, insert_slots

PAD = 0


def test_slots_go_in_front_of_the_real_tokens_of_right_and_left_padded_batches():
    right = {"input_ids": torch.tensor([[5, 6, 7], [8, 9, PAD]]),
             "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
             "labels": torch.tensor([[-100, 6, 7], [-100, 9, -100]]), "pixel_values": torch.ones(2, 3)}
    out = insert_slots(right, 2, PAD, "mcit_slots")
    assert out["input_ids"].tolist() == [[PAD, PAD, 5, 6, 7], [PAD, PAD, 8, 9, PAD]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    assert out["labels"].tolist() == [[IGNORE_INDEX] * 3 + [6, 7], [IGNORE_INDEX] * 3 + [9, IGNORE_INDEX]]
    assert out["mcit_slots"].tolist() == [[True, True, False, False, False]] * 2
    assert out["pixel_values"] is right["pixel_values"]
    left = {"input_ids": torch.tensor([[PAD, PAD, 5], [6, 7, 8]]),
            "attention_mask": torch.tensor([[0, 0, 1], [1, 1, 1]])}
    out = insert_slots(left, 2, 3, "mcit_slots")
    assert out["input_ids"].tolist() == [[PAD, PAD, 3, 3, 5], [3, 3, 6, 7, 8]]
    assert out["attention_mask"].tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert out["mcit_slots"].tolist() == [[False, False, True, True, False], [True, True, False, False, False]]
    assert insert_slots(left, 0, 3, "mcit_slots")["input_ids"].tolist() == left["input_ids"].tolist()
    with pytest.raises(ValueError, match="mcit_"):
        insert_slots(left, 1, 3, "slots")


def pool_with(image_keys: list[list[float]], text_keys: list[list[float]], length: int = 2, dim: int = 2) -> PromptPool:
    count = len(text_keys)
    pool = PromptPool(length, dim, len(image_keys[0]), len(text_keys[0]))
    prompts = torch.arange(count * length * dim, dtype=torch.float32).reshape(count, length, dim)
    pool.add_group(prompts, torch.tensor(image_keys), torch.tensor(text_keys))
    return pool


def test_pool_groups_have_stable_names_and_only_one_trains():
    pool = pool_with([[1.0, 0.0]] * 3, [[0.0, 1.0]] * 3)
    pool.add_group(torch.zeros(2, 2, 2), torch.zeros(2, 2), torch.zeros(2, 2))
    assert [n for n, _ in pool.named_parameters()] == [
        "prompts.0", "prompts.1", "image_keys.0", "image_keys.1", "text_keys.0", "text_keys.1"]
    assert pool.size == 5 and pool.group_range(1) == range(3, 5) and pool.group_of().tolist() == [0, 0, 0, 1, 1]
    pool.train_only(1)
    assert [p.requires_grad for p in pool.parameters()] == [False, True] * 3
    with pytest.raises(ValueError, match="expected"):
        pool.add_group(torch.zeros(2, 3, 2), torch.zeros(2, 2), torch.zeros(2, 2))


def test_scores_add_the_image_and_text_cosines_and_selection_takes_the_best_deterministically():
    image_keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    text_keys = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    image = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 5.0]])
    has_image = torch.tensor([True, False])
    scores = match_scores(image, text, has_image, image_keys, text_keys)
    half = 2 ** -0.5
    assert torch.allclose(scores, torch.tensor([[2.0, 1.0, half, 2.0], [0.0, 0.0, 1.0, 0.0]]))
    chosen = select_top(scores, 2)
    assert chosen.tolist() == [[0, 3], [2, 0]], "best first; equal scores go to the lower index"
    for _ in range(3):
        assert torch.equal(select_top(scores.clone(), 2), chosen)
    assert select_top(scores, 2, candidates=range(1, 3)).tolist() == [[1, 2], [2, 1]]
    assert torch.equal(match_scores(None, text, torch.tensor([False, False]), image_keys, text_keys)[1], scores[1])


def test_key_loss_is_one_minus_cosine_of_the_chosen_keys():
    image_keys = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    text_keys = torch.nn.Parameter(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    image = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    chosen = torch.tensor([[0], [1]])
    loss = key_matching_loss(image, text, torch.tensor([True, False]), image_keys, text_keys, chosen)
    # text: sample 0 with key 0 (cos 1), sample 1 with key 1 (cos 0): mean 0.5; image: sample 0 only, cos 1
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert text_keys.grad[1].abs().sum() > 0 and image_keys.grad is not None


def test_injection_replaces_the_slot_embeddings_and_carries_the_gradient():
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(10, 2)
    pool = pool_with([[1.0]] * 3, [[1.0, 0.0]] * 3)
    injector = PromptInjector()
    injector.attach(embedding)
    batch = insert_slots({"input_ids": torch.tensor([[PAD, 4, 5], [6, 7, 8]]),
                          "attention_mask": torch.tensor([[0, 1, 1], [1, 1, 1]])}, 4, PAD, "mcit_slots")
    chosen = torch.tensor([[2, 0], [1, 2]])
    injector.arm(batch["input_ids"], batch["mcit_slots"], lambda: pool.prompt_values(chosen))
    out = embedding(batch["input_ids"])
    prompts = pool.prompts[0]
    assert torch.equal(out[0, 1:5], torch.cat([prompts[2], prompts[0]]))
    assert torch.equal(out[1, 0:4], torch.cat([prompts[1], prompts[2]]))
    plain = embedding.weight[batch["input_ids"]]
    assert torch.equal(out[~batch["mcit_slots"]], plain[~batch["mcit_slots"]]), "other positions untouched"
    out.sum().backward()
    assert prompts.grad[2].abs().sum() > 0 and prompts.grad[0].abs().sum() > 0
    # one-token decoding steps and other inputs pass through
    assert torch.equal(embedding(torch.tensor([[4], [5]])), embedding.weight[torch.tensor([[4], [5]])])
    other = batch["input_ids"].clone()
    other[0, -1] = 9
    assert torch.equal(embedding(other), embedding.weight[other])
    injector.disarm()
    assert torch.equal(embedding(batch["input_ids"]), plain)
    injector.detach()


def test_new_prompts_copy_vocabulary_embeddings_and_keys_sit_near_the_mean_query():
    table = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    first = vocabulary_prompts(table, 4, 5, torch.Generator().manual_seed(1), excluded=(0, None, 5))
    again = vocabulary_prompts(table, 4, 5, torch.Generator().manual_seed(1), excluded=(0, None, 5))
    assert first.shape == (4, 5, 3) and torch.equal(first, again)
    rows = first.reshape(-1, 3)
    used = {int((table - row).norm(dim=1).argmin()) for row in rows}
    assert used <= {1, 2, 3, 4} and all(any(torch.equal(row, table[i]) for i in used) for row in rows)
    noise = torch.randn(3, 50, generator=torch.Generator().manual_seed(2))
    mean = torch.ones(50) * 7
    keys = perturbed_keys(mean, noise)
    cosines = torch.nn.functional.cosine_similarity(keys, mean.unsqueeze(0), dim=1)
    assert bool((cosines > 0.99).all()) and not torch.equal(keys[0], keys[1])
    assert perturbed_keys(None, noise) is noise
