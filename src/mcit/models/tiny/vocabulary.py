"""The tiny models' tokenizer: whole words where known, single characters otherwise.

A WordPiece tokenizer built in-process from a word list: every word the built-in generators
produce is one token, and any other ASCII word falls back to character pieces ("K", "##M",
"##X"), so the model can read and write arbitrary words (the reading task's random letters) and
still tokenizes a user's own data without unknown tokens for ASCII text.
"""

from __future__ import annotations

import functools
import re
import string

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
CHARACTERS = string.ascii_lowercase + string.ascii_uppercase + string.digits
PUNCTUATION = ".,?!:;'\"()[]{}-+*/=<>_#%&@$"
ROLE_WORDS = ("USER", "ASSISTANT")


@functools.lru_cache(maxsize=1)
def builtin_words() -> tuple[str, ...]:
    """Every word of the built-in tasks' instructions and answers, in a fixed order.

    Collected by drawing samples from each task (and the start models' pre-training mixes) with
    a fixed seed, so new wording in a generator enters the vocabulary without a hand-kept list.
    """
    import random

    from mcit.data.builtin.glyphs import LETTERS
    from mcit.data.builtin.pretraining import PRETRAINING_TASKS
    from mcit.data.builtin.streams import TASKS

    # Spelled answers hold single letters of the word alphabet; all of them are words, so a
    # draw that happens to miss one cannot shift every later token id.
    words: dict[str, None] = dict.fromkeys(LETTERS)
    for spec in list(TASKS.values()) + list(PRETRAINING_TASKS.values()):
        rng = random.Random(f"vocabulary/{spec.name}")
        for _ in range(1000):
            sample = spec.make(rng)
            for text in (sample.instruction, *sample.answers):
                for word in re.findall(r"[A-Za-z0-9]+", text):  # the pre-tokenizer's words
                    if not (word.isupper() and len(word) > 1 and word not in ROLE_WORDS):  # random letters stay pieces
                        words[word] = None
    return tuple(sorted(words))


def build_vocabulary() -> dict[str, int]:
    """Token → id: special tokens, role words, numbers 0–99, built-in words, then characters."""
    tokens: list[str] = list(SPECIAL_TOKENS) + list(ROLE_WORDS)
    tokens += [str(i) for i in range(100)]
    tokens += builtin_words()
    tokens += list(CHARACTERS) + list(PUNCTUATION)
    tokens += ["##" + c for c in CHARACTERS]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def build_tokenizer():
    """A `PreTrainedTokenizerFast` over the WordPiece vocabulary, with LLaVA's image token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = build_vocabulary()
    core = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", max_input_chars_per_word=64))
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"}, padding_side="left",
    )
    return tokenizer
