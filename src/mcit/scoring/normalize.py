"""Answer normalisation shared by the short-answer scorers.

Short answers are compared after removing differences that do not change their meaning: case,
surrounding spaces, punctuation, the articles a/an/the, and number words versus digits. The rules
follow the answer processing of the VQA evaluation (Antol et al., ICCV 2015), simplified to one
deterministic pass:

1. lower-case and strip surrounding whitespace;
2. delete punctuation characters, except a decimal point between two digits ("3.5" stays "3.5",
   "1,000" becomes "1000", "t-shirt" becomes "tshirt");
3. drop the articles "a", "an", "the" as whole words;
4. map the number words zero..twenty to digits ("seven" -> "7");
5. collapse runs of whitespace to one space.
"""

from __future__ import annotations

import re
import string
import unicodedata

NUMBER_WORDS: dict[str, str] = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
ARTICLES = frozenset({"a", "an", "the"})

_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
# A placeholder that survives punctuation removal; \x00 never occurs in model output text.
_KEEP = "\x00"


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def strip_punctuation(text: str, replacement: str = "") -> str:
    """Replace every punctuation character by `replacement`, keeping decimal points between digits."""
    protected = _DECIMAL_POINT.sub(_KEEP, text)
    stripped = "".join(replacement if _is_punctuation(c) else c for c in protected)
    return stripped.replace(_KEEP, ".")


def normalize_answer(text: str) -> str:
    """The canonical form of a short answer (see the module docstring for the rules)."""
    text = strip_punctuation(text.lower().strip())
    words = [NUMBER_WORDS.get(word, word) for word in text.split() if word not in ARTICLES]
    return " ".join(words)
