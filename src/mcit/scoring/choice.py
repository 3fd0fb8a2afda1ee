"""Multiple choice: read the options from the instruction and the chosen letter from the answer.

Instructions list lettered options, one per line or inline ("Options: (A) red (B) blue (C) green");
the markers "A. text", "(A) text", "A) text" and "A: text" are recognised for the letters A–Z. The
key is a letter ("B", "(B)", "B.") or the text of an option. A prediction is correct when the
letter it names equals the key's letter. The letter is read from a prediction that is a bare
letter ("B", "(B)", "B.", "B)"), starts with a marker ("B: blue", "(B) blue"), or says "The answer
is B" / "Answer: B". When no letter can be read, the prediction's normalised text is matched
against the normalised option texts (also with a leading "The answer is" / "Answer:" removed) and
the matching option's letter is used.

A lower-case "a" is an article, not a letter, unless it is the whole prediction ("a", "(a)"): "a
red circle" picks the option whose text is "red circle", never option A.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mcit.scoring.normalize import normalize_answer

# An option marker in an instruction: "(A)" or "A." / "A)" / "A:" followed by a space, at the start
# of a line or after whitespace.
_OPTION_MARKER = re.compile(r"(?:(?<=\s)|^)(?:\(([A-Z])\)|([A-Z])[.):](?=\s))[ \t]*", re.MULTILINE)

# A prediction or key that is nothing but a letter: "B", "(B)", "B.", "B)", "B:".
_BARE_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.):]?$")
# A prediction that opens with a marker and goes on: "(B) blue", "B. blue", "B: blue", "B) blue".
_LEADING_MARKER = re.compile(r"^(?:\(([A-Za-z])\)|([A-Z])[.):])(?:\s|$)")
# "The answer is B", "Answer: (B)", "the correct option is C.".
_STATED_LETTER = re.compile(
    r"\b(?:answer|option|choice)\b\s*(?:is\b\s*)?:?\s*(\()?([A-Za-z])\)?(?=$|[\s.,;:!?)])", re.IGNORECASE
)

# "The answer is", "Answer:" in front of an option's text.
_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?(?:correct\s+)?answer\b\s*(?:is\b)?\s*:?\s*", re.IGNORECASE)


def parse_options(instruction: str) -> dict[str, str]:
    """The lettered options of an instruction as {letter: text}; {} when it lists fewer than two.

    Markers are chained A, B, C, ... in order of appearance; the longest chain wins (the last one on
    a tie), so a stray "A." inside the question does not start a false list. An option's text runs
    to the next marker or the end of its line.
    """
    markers = []
    for match in _OPTION_MARKER.finditer(instruction):
        letter = match.group(1) or match.group(2)
        markers.append((letter, match.start(), match.end()))
    best: list[tuple[str, int, int]] = []
    for start, (letter, _, _) in enumerate(markers):
        if letter != "A":
            continue
        chain = [markers[start]]
        for marker in markers[start + 1:]:
            if marker[0] == chr(ord(chain[-1][0]) + 1):
                chain.append(marker)
        if len(chain) >= len(best):
            best = chain
    if len(best) < 2:
        return {}
    options = {}
    for index, (letter, _, text_start) in enumerate(best):
        text_end = best[index + 1][1] if index + 1 < len(best) else len(instruction)
        options[letter] = instruction[text_start:text_end].split("\n", 1)[0].strip()
    return options


def read_letter(prediction: str) -> str | None:
    """The option letter a prediction names, upper-cased, or None when it names none."""
    text = prediction.strip()
    match = _BARE_LETTER.match(text)
    if match:
        return match.group(1).upper()
    match = _LEADING_MARKER.match(text)
    if match:
        return (match.group(1) or match.group(2)).upper()
    for match in _STATED_LETTER.finditer(text):
        parenthesised, letter = match.group(1), match.group(2)
        if letter != "a" or parenthesised:  # "the answer is a red circle": an article
            return letter.upper()
    return None


def _letter_of_text(text: str, options: dict[str, str]) -> str | None:
    """The letter of the option whose normalised text equals the text (with or without "Answer:")."""
    candidates = {normalize_answer(text), normalize_answer(_ANSWER_PREFIX.sub("", text, count=1))}
    for letter, option in options.items():
        if normalize_answer(option) in candidates:
            return letter
    return None


def key_letter(reference: str, options: dict[str, str]) -> str | None:
    """The letter of the correct option: the reference's bare letter, or the option with its text."""
    match = _BARE_LETTER.match(reference.strip())
    if match:
        return match.group(1).upper()
    return _letter_of_text(reference, options)


def choice_hit(prediction: str, references: Sequence[str], instruction: str) -> float:
    """1.0 if the prediction picks the option of any reference key, else 0.0.

    A reference whose letter cannot be determined (not a letter, no option with its text) is
    compared to the prediction by normalised text.
    """
    options = parse_options(instruction)
    predicted = read_letter(prediction) or _letter_of_text(prediction, options)
    for reference in references:
        key = key_letter(reference, options)
        if key is not None and predicted == key:
            return 1.0
        if key is None and normalize_answer(prediction) == normalize_answer(reference):
            return 1.0
    return 0.0
