"""The standard metric of each known public benchmark task, looked up by task name.

Public benchmark folders (CoIN, UCIT) do not say how each task is scored; the papers do. This table
lets a folder named `TextVQA` or `VizWiz-caption` be scored the way its benchmark scores it without
a YAML file. Names are matched whole (after case-folding and dropping '-', '_' and spaces), never by
substring, so `vizwiz-caption` is a captioning task and not VQA.
"""

from __future__ import annotations

_METRIC_OF_NAMES: dict[str, tuple[str, ...]] = {
    "vqa_accuracy": ("vqav2", "vqa", "textvqa", "vizwiz", "gqa", "okvqa"),
    "grounding": ("grounding", "refcoco", "refcoco+", "refcocog"),
    "cider": ("caption", "captioning", "flickr30k", "coco-caption", "textcaps", "vizwiz-caption",
              "vizwizcap", "nocaps"),
    "multiple_choice": ("scienceqa", "iconqa", "arxivqa", "mmbench", "seed", "aokvqa-mc"),
    "exact_match": ("imagenet", "imagenet-r", "classification", "clevr-math", "clevr"),
    "anls": ("ocrvqa", "ocr-vqa", "docvqa", "st-vqa", "ocr"),
}


def normalize_task_name(name: str) -> str:
    """The form task names are compared in: lower case without '-', '_' and spaces."""
    return "".join(ch for ch in name.casefold() if ch not in "-_ ")


_KNOWN: dict[str, str] = {
    normalize_task_name(task): metric for metric, tasks in _METRIC_OF_NAMES.items() for task in tasks
}


def metric_for_task(name: str) -> tuple[str, str | None]:
    """The metric of the task called `name` and, when it had to be guessed, a note saying so.

    Known benchmark task names get their benchmark's metric and no note. Any other name is scored
    by exact match, and the note tells the user how to declare another metric.
    """
    metric = _KNOWN.get(normalize_task_name(name))
    if metric is not None:
        return metric, None
    return "exact_match", (
        f"task '{name}': no metric declared and the name is not a known benchmark task; "
        "scoring by exact match (declare `metric:` in a benchmark YAML to change it)")
