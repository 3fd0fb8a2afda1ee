"""Parsing of LLaVA conversation JSON files (the format of CoIN and UCIT) into records.

A file is a list of records like
`{"id": "q1", "image": "coco/1.jpg", "conversations": [{"from": "human", "value": "<image>\\nWhat is
it?"}, {"from": "gpt", "value": "a cat"}], "answers": ["a cat", "cat", ...]}`, optionally with a
`question_type` (as VQAv2 annotates, "what is"), by which scores are also reported. Reading a file also
checks it (see `mcit.data.check`): every problem is collected instead of stopping at the first one,
so one pass over the data both parses it and validates it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from mcit.data.check import Problem, image_decode_problem, resolve_image
from mcit.data.schema import Record

IMAGE_MARKER = "<image>"
HUMAN_ROLES = ("human", "user")
ANSWER_ROLES = ("gpt", "assistant")


def strip_image_marker(text: str) -> str:
    """`text` without the `<image>` marker and the newline next to it, trimmed."""
    for marked in (IMAGE_MARKER + "\n", "\n" + IMAGE_MARKER, IMAGE_MARKER):
        text = text.replace(marked, "")
    return text.strip()


def record_label(index: int, record_id: str | None) -> str:
    """How problems name a record: its 0-based index in the file and its id."""
    return f"record {index} (id '{record_id}')" if record_id is not None else f"record {index}"


def read_conversation_file(
    path: Path,
    image_roots: list[Path],
    allowed_root: Path | Sequence[Path],
    *,
    verify_images: bool = False,
    decoded: dict[Path, str | None] | None = None,
) -> tuple[list[Record], list[Problem]]:
    """Parse one conversation JSON file into records, with every problem found on the way.

    Args:
        path: the JSON file.
        image_roots: folders a relative image path is looked up in, in order; the first existing
            file wins.
        allowed_root: the folder (or folders) image files must lie in after resolving symlinks.
        verify_images: also decode each image with Pillow (the full check); loaders leave it off
            and only check that the file exists inside the allowed folders.
        decoded: a cache of decode results by resolved image path, shared across files so an image
            used by several records or tasks is decoded once.

    Returns:
        The records without errors, and the problems (errors and notes). Only the first
        human/gpt exchange of a record is used; records with more get one note per file.
    """
    allowed = [Path(allowed_root)] if isinstance(allowed_root, (str, Path)) else [Path(r) for r in allowed_root]
    file = str(path)
    data, problem = _load_list(path)
    if problem is not None:
        return [], [problem]
    decoded = {} if decoded is None else decoded
    resolved: dict[str, tuple[Path | None, str | None]] = {}
    records: list[Record] = []
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    multi_exchange: list[str] = []

    for index, raw in enumerate(data):
        errors: list[str] = []
        if not isinstance(raw, dict):
            problems.append(Problem("error", file, record_label(index, None),
                                    f"is a JSON {_json_type(raw)}, expected an object with 'id', 'image' and "
                                    "'conversations'; fix or remove the record"))
            continue
        record_id = _record_id(raw.get("id"))
        label = record_label(index, record_id)
        if record_id is None:
            errors.append("has no 'id' (a non-empty string or number); give every record a unique id")
        elif record_id in seen_ids:
            errors.append(f"duplicate id '{record_id}' (also record {seen_ids[record_id]}); "
                          "make ids unique within the file")
        else:
            seen_ids[record_id] = index

        instruction, answer, exchanges = _first_exchange(raw.get("conversations"), errors)
        if exchanges > 1:
            multi_exchange.append(label)

        image = raw.get("image")
        if image is not None and not isinstance(image, str):
            errors.append(f"'image' is a JSON {_json_type(image)}, expected one path string; "
                          "give the record a single image path")
            image = None
        image = image or None
        image_path: Path | None = None
        if instruction is not None:
            has_marker = IMAGE_MARKER in instruction
            if image and not has_marker:
                errors.append(f"has an image but its first human turn has no {IMAGE_MARKER} marker; "
                              f"add '{IMAGE_MARKER}\\n' before the instruction")
            elif has_marker and not image:
                errors.append(f"its first human turn has an {IMAGE_MARKER} marker but the record has no "
                              "'image'; add the image path or remove the marker")
        if image:
            if image not in resolved:
                resolved[image] = resolve_image(image, image_roots, allowed)
            image_path, image_error = resolved[image]
            if image_error is None and verify_images and image_path is not None:
                if image_path not in decoded:
                    decoded[image_path] = image_decode_problem(image_path)
                image_error = decoded[image_path]
            if image_error is not None:
                errors.append(image_error)

        references = _references(raw.get("answers"), answer, errors)
        question_type = _question_type(raw.get("question_type"), errors)

        problems.extend(Problem("error", file, label, message) for message in errors)
        if errors or record_id is None or instruction is None or answer is None:
            continue
        records.append(Record(
            id=record_id,
            image=image_path,
            instruction=strip_image_marker(instruction),
            answers=references,
            source=f"{path}:{index} (id '{record_id}')",
            question_type=question_type,
        ))

    if multi_exchange:
        count = len(multi_exchange)
        problems.append(Problem(
            "note", file, None,
            f"{count} {'record has' if count == 1 else 'records have'} more than one human/gpt exchange "
            f"(the first is {multi_exchange[0]}); mcit uses only the first exchange of each"))
    return records, problems


def _load_list(path: Path) -> tuple[list[Any], Problem | None]:
    """The top-level list of a JSON file, or a problem saying why it cannot be read."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], Problem("error", file, None, "file not found; every task needs a train and a test JSON file")
    except OSError as exc:
        return [], Problem("error", file, None,
                           f"cannot read the file ({exc.strerror}); check the path and its permissions")
    try:
        # utf-8-sig also accepts a leading byte-order mark, which some editors write.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], Problem("error", file, None,
                           f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                           "re-save the file as UTF-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], Problem("error", file, None,
                           f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the syntax there")
    if not isinstance(data, list):
        return [], Problem("error", file, None,
                           f"the top level is a JSON {_json_type(data)}, expected a list of records; "
                           "put the records in a [...] list")
    return data, None


def _record_id(value: Any) -> str | None:
    """The record's id as a string, or None when it is missing or not a string or number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    return text or None


def _first_exchange(conversations: Any, errors: list[str]) -> tuple[str | None, str | None, int]:
    """(first human turn's text, the first gpt answer after it, number of human turns).

    The human text still holds its image marker, so the caller can check the marker. Missing or
    malformed parts are appended to `errors`; the corresponding value is then None.
    """
    if not isinstance(conversations, list):
        errors.append("has no 'conversations' list; add "
                      '[{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]')
        return None, None, 0
    turns: list[tuple[str, str]] = []
    for number, turn in enumerate(conversations):
        if (not isinstance(turn, dict) or not isinstance(turn.get("from"), str)
                or not isinstance(turn.get("value"), str)):
            errors.append(f"conversation turn {number} is not an object with 'from' and a text 'value'; "
                          "fix the turn")
            return None, None, 0
        turns.append((turn["from"].strip().lower(), turn["value"]))
    human_at = next((i for i, (role, _) in enumerate(turns) if role in HUMAN_ROLES), None)
    if human_at is None:
        errors.append('has no human turn; add {"from": "human", "value": "<image>\\n..."} to its conversations')
        return None, None, 0
    exchanges = sum(role in HUMAN_ROLES for role, _ in turns)
    answer = next((value for role, value in turns[human_at + 1:] if role in ANSWER_ROLES), None)
    if answer is None:
        errors.append('has no gpt answer after the first human turn; add {"from": "gpt", "value": ...}')
        return turns[human_at][1], None, exchanges
    if not answer.strip():
        errors.append("has an empty gpt answer; give the record a non-empty answer or remove it")
        return turns[human_at][1], None, exchanges
    return turns[human_at][1], answer.strip(), exchanges


def _references(answers: Any, target: str | None, errors: list[str]) -> tuple[str, ...]:
    """The record's answers: the gpt target first, then the other references of `answers`.

    One copy of the target is dropped from `answers` (compared case-insensitively) instead of every
    copy: VQA accuracy counts how many of the ten human answers agree, so repeats must stay.
    """
    if target is None:
        return ()
    if answers is None:
        return (target,)
    if not isinstance(answers, list) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in answers):
        errors.append("'answers' must be a list of reference answer strings; fix or remove it")
        return ()
    others = [str(a).strip() for a in answers]
    others = [a for a in others if a]
    key = target.casefold()
    for i, other in enumerate(others):
        if other.casefold() == key:
            del others[i]
            break
    return (target, *others)


def _question_type(value: Any, errors: list[str]) -> str | None:
    """The record's optional `question_type` (as VQAv2's annotations name one), stripped."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        found = "an empty string" if isinstance(value, str) else f"a JSON {_json_type(value)}"
        errors.append(f"'question_type' is {found}, expected the name of the question's type "
                      "(e.g. \"how many\"); fix or remove it")
        return None
    return value.strip()


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null"
