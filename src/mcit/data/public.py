"""Loaders of public benchmarks' files: a CoIN/UCIT-style folder or a benchmark YAML file.

Folder layout (CoIN, UCIT): one sub-folder per task holding `train.json` and `test.json` in LLaVA
conversation format; the task is named after its folder and scored with its benchmark's metric
(`mcit.data.task_metrics`). A benchmark YAML file lists the tasks explicitly and may set each
task's files, image root, metric, generation length and instruction templates.

Loading checks the data with the same checks as `mcit data check` (except decoding every image)
and refuses invalid data with the start of that report, so a run never starts on broken data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mcit.core.configs import load_yaml
from mcit.core.errors import UserError
from mcit.data.check import CheckReport, Problem
from mcit.data.conversation import read_conversation_file
from mcit.data.schema import METRICS, Benchmark, Record, Task
from mcit.data.task_metrics import metric_for_task

YAML_SUFFIXES = (".yaml", ".yml")
SPLIT_FILES = {"train": "train.json", "test": "test.json"}
TOP_KEYS = ("name", "tasks")
TASK_KEYS = ("name", "train", "test", "images", "metric", "max_new_tokens", "instruction_templates", "description")
ACCEPTED = ("a benchmark folder (one sub-folder per task holding train.json and test.json) "
            "or a benchmark .yaml/.yml file")


@dataclass
class SplitSource:
    """Where one split of a task comes from and where its images may be found."""

    file: Path
    image_roots: list[Path]
    allowed_roots: list[Path]


@dataclass
class TaskSource:
    """A task as declared by a folder or a YAML file, before its records are read."""

    name: str
    splits: dict[str, SplitSource]
    metric: str
    metric_note: str | None = None
    max_new_tokens: int | None = None
    instruction_templates: list[str] | None = None
    description: str = ""


def load_folder_benchmark(path: Path, images: Path | None = None, order: list[str] | None = None) -> Benchmark:
    """Load a CoIN/UCIT-style benchmark folder; `order` picks and orders tasks (default: sorted names).

    Relative image paths are looked up in the task folder, then the benchmark folder, then `images`.
    """
    path, images = _absolute(path), _images_root(images)
    if not path.is_dir():
        raise UserError(f"{path}: not a folder; pass a benchmark folder with one sub-folder per task")
    benchmark, report = _scan(path.name, path, _folder_sources(path, images), order, verify_images=False, where=path)
    return _refuse_invalid(path, benchmark, report)


def load_yaml_benchmark(path: Path, images: Path | None = None, order: list[str] | None = None) -> Benchmark:
    """Load the benchmark a YAML file declares; `order` picks and orders tasks (default: as listed).

    Relative image paths are looked up in the task's `images` folder, then the folder of its JSON
    file, then the YAML file's folder, then `images`.
    """
    path, images = _absolute(path), _images_root(images)
    name, sources = _yaml_sources(path, images)
    benchmark, report = _scan(name, path.parent, sources, order, verify_images=False, where=path)
    return _refuse_invalid(path, benchmark, report)


def load_benchmark_path(path: Path, images: Path | None = None, order: list[str] | None = None) -> Benchmark:
    """Load a benchmark from a YAML file or a benchmark folder, whichever `path` is."""
    path = _absolute(path)
    if _is_yaml(path):
        return load_yaml_benchmark(path, images, order)
    if path.is_dir():
        return load_folder_benchmark(path, images, order)
    raise UserError(_not_accepted(path))


def scan_benchmark(path: Path, images: Path | None = None, order: list[str] | None = None, *,
                   verify_images: bool = True) -> tuple[Benchmark, CheckReport]:
    """Read and check the benchmark at `path` (YAML file or folder) without refusing invalid data.

    Returns the benchmark built from the valid records and the report of every problem. Problems
    with the layout itself (no task folders, an invalid YAML file) raise `UserError`.
    """
    path, images = _absolute(path), _images_root(images)
    if _is_yaml(path):
        name, sources = _yaml_sources(path, images)
        return _scan(name, path.parent, sources, order, verify_images=verify_images, where=path)
    if path.is_dir():
        return _scan(path.name, path, _folder_sources(path, images), order, verify_images=verify_images, where=path)
    raise UserError(_not_accepted(path))


def _absolute(path: Path | str) -> Path:
    return Path(path).expanduser().absolute()


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in YAML_SUFFIXES and path.is_file()


def _not_accepted(path: Path) -> str:
    if not path.exists():
        return f"{path}: not found; pass {ACCEPTED}"
    return f"{path}: not a benchmark; pass {ACCEPTED}"


def _images_root(images: Path | str | None) -> Path | None:
    """The `images` root as an absolute folder, refusing one that does not exist."""
    if images is None:
        return None
    root = _absolute(images)
    if not root.is_dir():
        raise UserError(f"{root}: images folder not found; pass the folder that holds the benchmark's images")
    return root


def _folder_sources(path: Path, images: Path | None) -> list[TaskSource]:
    """The tasks of a benchmark folder: sub-folders holding train.json or test.json, sorted by name.

    Sub-folders with neither file (an `images` folder, say) are not tasks and are skipped.
    """
    task_dirs = sorted(
        d for d in path.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any((d / f).exists() for f in SPLIT_FILES.values()))
    if not task_dirs:
        raise UserError(f"{path}: no task folders found; a benchmark folder needs one sub-folder per task "
                        "holding train.json and test.json")
    extra = [images] if images is not None else []
    sources = []
    for task_dir in task_dirs:
        metric, note = metric_for_task(task_dir.name)
        splits = {split: SplitSource(task_dir / file, [task_dir, path, *extra], [path, *extra])
                  for split, file in SPLIT_FILES.items()}
        sources.append(TaskSource(task_dir.name, splits, metric, note))
    return sources


def _yaml_sources(path: Path, images: Path | None) -> tuple[str, list[TaskSource]]:
    """The benchmark name and tasks a benchmark YAML file declares, validated strictly."""
    if not path.is_file():
        raise UserError(f"{path}: benchmark YAML file not found; check the path")
    data = load_yaml(path)
    _refuse_unknown_keys(data, TOP_KEYS, f"{path}: unknown top-level key")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{path}: 'name' must be a non-empty string naming the benchmark")
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise UserError(f"{path}: 'tasks' must be a non-empty list of tasks, each with name, train and test")
    sources: list[TaskSource] = []
    for index, entry in enumerate(tasks):
        source = _yaml_task(path, index, entry, images)
        if any(s.name == source.name for s in sources):
            raise UserError(f"{path}: task {index}: the name '{source.name}' is used twice; give each task its own name")
        sources.append(source)
    return name.strip(), sources


def _yaml_task(path: Path, index: int, entry: Any, images: Path | None) -> TaskSource:
    """One task entry of a benchmark YAML file."""
    where = f"{path}: task {index}"
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping with name, train and test")
    if isinstance(entry.get("name"), str) and entry["name"].strip():
        where = f"{path}: task {index} ('{entry['name'].strip()}')"
    _refuse_unknown_keys(entry, TASK_KEYS, f"{where}: unknown key")
    for key in ("name", "train", "test"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise UserError(f"{where}: missing '{key}'; every task needs name, train and test "
                            "(train and test are JSON file paths)")
    name = entry["name"].strip()
    base = path.parent

    task_images = None
    if entry.get("images") is not None:
        if not isinstance(entry["images"], str):
            raise UserError(f"{where}: 'images' must be a folder path")
        task_images = _resolve_from(base, entry["images"])
        if not task_images.is_dir():
            raise UserError(f"{where}: images folder {task_images} not found; fix the task's 'images' path")

    if entry.get("metric") is None:
        metric, note = metric_for_task(name)
    else:
        metric, note = entry["metric"], None
        if metric not in METRICS:
            raise UserError(f"{where}: unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

    max_new_tokens = entry.get("max_new_tokens")
    if max_new_tokens is not None and (isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int)
                                       or max_new_tokens < 1):
        raise UserError(f"{where}: 'max_new_tokens' must be a positive integer, got {max_new_tokens!r}")

    templates = entry.get("instruction_templates")
    if templates is not None:
        templates = _validate_templates(where, templates)

    description = entry.get("description", "")
    if not isinstance(description, str):
        raise UserError(f"{where}: 'description' must be a string")

    splits = {}
    for split in SPLIT_FILES:
        file = _resolve_from(base, entry[split])
        roots = [r for r in (task_images, file.parent, base, images) if r is not None]
        allowed = [r for r in (base, file.parent, task_images, images) if r is not None]
        splits[split] = SplitSource(file, _unique(roots), _unique(allowed))
    return TaskSource(name, splits, metric, note, max_new_tokens, templates, description)


def _validate_templates(where: str, templates: Any) -> list[str]:
    """Instruction templates: a non-empty list of strings whose only placeholder is {instruction}."""
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise UserError(f"{where}: 'instruction_templates' must be a non-empty list of strings containing {{instruction}}")
    for number, template in enumerate(templates):
        if "{instruction}" not in template:
            raise UserError(f"{where}: instruction template {number} has no {{instruction}} placeholder; "
                            "add {instruction} where the record's instruction goes")
        try:
            template.format(instruction="")
        except (KeyError, IndexError, ValueError) as exc:
            raise UserError(f"{where}: instruction template {number} cannot be filled ({type(exc).__name__}: {exc}); "
                            "use only the {instruction} placeholder and write literal braces as {{ and }}") from None
    return templates


def _refuse_unknown_keys(data: dict, allowed: tuple[str, ...], prefix: str) -> None:
    """Raise a UserError naming the first key of `data` that is not in `allowed`, and the allowed keys."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise UserError(f"{prefix} '{unknown[0]}'; allowed keys: {', '.join(allowed)}")


def _resolve_from(base: Path, text: str) -> Path:
    """`text` as a path: absolute as written (after `~`), else relative to `base`."""
    path = Path(text.strip()).expanduser()
    return path if path.is_absolute() else base / path


def _unique(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def _select(sources: list[TaskSource], order: list[str] | None, where: Path) -> list[TaskSource]:
    """The tasks named in `order`, in that order (exact names first, then ignoring case)."""
    if order is None:
        return sources
    available = ", ".join(s.name for s in sources)
    exact = {s.name: s for s in sources}
    folded = {s.name.casefold(): s for s in sources}
    chosen: list[TaskSource] = []
    for name in order:
        source = exact.get(name) or folded.get(str(name).casefold())
        if source is None:
            raise UserError(f"{where}: unknown task '{name}' in the task order; available tasks: {available}")
        if source in chosen:
            raise UserError(f"{where}: task '{name}' appears twice in the task order; list each task once")
        chosen.append(source)
    if not chosen:
        raise UserError(f"{where}: the task order is empty; name at least one of: {available}")
    return chosen


def _scan(name: str, root: Path, sources: list[TaskSource], order: list[str] | None, *,
          verify_images: bool, where: Path) -> tuple[Benchmark, CheckReport]:
    """Read and check the selected tasks: the benchmark of their valid records and the full report."""
    report = CheckReport(path=str(where))
    decoded: dict[Path, str | None] = {}
    tasks: list[Task] = []
    data_notes: list[str] = []
    for source in _select(sources, order, where):
        split_records: dict[str, list[Record]] = {}
        for split, spec in source.splits.items():
            records, problems = read_conversation_file(
                spec.file, spec.image_roots, spec.allowed_roots, verify_images=verify_images, decoded=decoded)
            file_failed = any(p.severity == "error" for p in problems)
            if not records and not file_failed:
                problems.append(Problem("error", str(spec.file), None,
                                        f"task '{source.name}' has no {split} records; add records to the file "
                                        "or leave the task out of the benchmark"))
            report.problems.extend(problems)
            data_notes.extend(p.format() for p in problems if p.severity == "note")
            split_records[split] = _apply_templates(records, source.instruction_templates)
        report.tasks[source.name] = {split: len(records) for split, records in split_records.items()}
        if source.metric_note:
            report.problems.append(Problem("note", str(where), None, source.metric_note))
        tasks.append(Task(
            name=source.name,
            metric=source.metric,
            train=split_records["train"],
            test=split_records["test"],
            max_new_tokens=source.max_new_tokens,
            description=source.description,
            metric_note=source.metric_note,
        ))
    # Metric notes stay on their Task (metric_note); the benchmark's notes are about the data.
    return Benchmark(name=name, tasks=tasks, root=root, notes=data_notes), report


def _apply_templates(records: list[Record], templates: list[str] | None) -> list[Record]:
    """Render each record's instruction with template (index mod number of templates), if any.

    Cycling through the templates presents the same records with several phrasings, as CoIN's
    instruction-template sets do.
    """
    if not templates:
        return records
    return [replace(r, instruction=templates[i % len(templates)].format(instruction=r.instruction))
            for i, r in enumerate(records)]


def _refuse_invalid(path: Path, benchmark: Benchmark, report: CheckReport) -> Benchmark:
    if not report.ok:
        raise UserError(report.refusal(path))
    return benchmark
