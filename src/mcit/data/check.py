"""Validation of benchmark data before training: problems, the report, and the image checks.

A run that fails on record 80,000 of task 5 after hours of training wastes the hours, so mcit
checks every file, record and image up front and reports all problems at once. The record-level
checks run while `mcit.data.conversation` parses each file (one pass over the data); this module
holds what they report into (`Problem`, `CheckReport`), the image checks (path containment,
existence, decoding, size) and `check_benchmark_path`, the full check behind `mcit data check`.
The loaders in `mcit.data.public` run the same checks, without decoding images, and refuse invalid
data with `CheckReport.refusal`.
"""

from __future__ import annotations

import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from PIL import Image

#: Images above this many pixels are refused: they cost minutes to decode and may be
#: decompression bombs (a small file that expands to gigabytes).
MAX_IMAGE_PIXELS = 100_000_000

#: How many error lines a loader's refusal shows before pointing to the full report.
REFUSAL_LINES = 20

Severity = Literal["error", "note"]


@dataclass
class Problem:
    """One finding of the check.

    Attributes:
        severity: "error" makes the data unusable; "note" is worth knowing but harmless.
        file: the file the problem is in.
        record: the record, as "record INDEX (id 'ID')", or None for a whole-file problem.
        message: what is wrong and how to fix it.
    """

    severity: Severity
    file: str
    record: str | None
    message: str

    def format(self) -> str:
        """One line: `file: record: message` (the record part only when there is one)."""
        where = f"{self.file}: {self.record}" if self.record else self.file
        return f"{where}: {self.message}"


@dataclass
class CheckReport:
    """All problems found in a benchmark, and the record counts of each task.

    Attributes:
        problems: errors and notes in the order they were found (task by task, file by file).
        tasks: per task name, {"train": count, "test": count} of the records that were read.
        path: the checked benchmark folder or YAML file, for the report's heading.
    """

    problems: list[Problem] = field(default_factory=list)
    tasks: dict[str, dict] = field(default_factory=dict)
    path: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def notes(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "note"]

    @property
    def ok(self) -> bool:
        """True when nothing stops the data from being used (notes are allowed)."""
        return not self.errors

    def summary(self) -> str:
        """One line: how many tasks, errors and notes, and whether the data can be used."""
        errors, notes = len(self.errors), len(self.notes)
        counts = f"{len(self.tasks)} {_plural(len(self.tasks), 'task')}, {errors} {_plural(errors, 'error')}, " \
                 f"{notes} {_plural(notes, 'note')}"
        verdict = "the data is ready to use" if self.ok else "fix the errors before training"
        return f"{counts}: {verdict}"

    def format(self) -> str:
        """The readable report: the tasks with their record counts, the errors, the notes, a summary."""
        lines = [f"Benchmark data check: {self.path}" if self.path else "Benchmark data check"]
        for name, counts in self.tasks.items():
            lines.append(f"  {name}: {counts.get('train', 0)} train, {counts.get('test', 0)} test records")
        for title, problems in (("Errors", self.errors), ("Notes", self.notes)):
            if problems:
                lines.append(f"{title}:")
                lines.extend(f"  {p.format()}" for p in problems)
        lines.append(self.summary())
        return "\n".join(lines)

    def refusal(self, path: str | Path) -> str:
        """The message a loader raises for invalid data: the first errors and how to see them all
        (one line when there is a single error)."""
        errors = self.errors
        if len(errors) == 1:
            return (f"{errors[0].format()}; mcit will not train on this data "
                    f"(`mcit data check {shlex.quote(str(path))}` shows the full report)")
        lines = [f"{path}: the benchmark data has {len(errors)} {_plural(len(errors), 'error')}; "
                 "mcit will not train on it:"]
        lines.extend(f"  {p.format()}" for p in errors[:REFUSAL_LINES])
        if len(errors) > REFUSAL_LINES:
            lines.append(f"  and {len(errors) - REFUSAL_LINES} more")
        lines.append(f"run `mcit data check {shlex.quote(str(path))}` for the full report")
        return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def is_within(path: Path, roots: Sequence[Path]) -> bool:
    """Whether the resolved `path` lies inside one of the resolved `roots`."""
    return any(path.is_relative_to(root) for root in roots)


def resolve_image(raw: str, image_roots: Sequence[Path],
                  allowed_roots: Sequence[Path]) -> tuple[Path | None, str | None]:
    """Find the image file a record names: (its resolved path, None) or (None, the error message).

    A relative path is tried against each of `image_roots` in order and the first existing file
    wins; an absolute path is taken as it is. The found file, with symlinks resolved, must lie
    inside one of `allowed_roots` (resolved), so a record cannot make mcit read files outside the
    data it was given. A missing file whose every candidate would lie outside is reported as
    leaving the data folders rather than as missing.
    """
    rel = Path(raw)
    candidates = [rel] if rel.is_absolute() else [Path(root) / rel for root in image_roots]
    allowed = [Path(root).resolve() for root in allowed_roots]
    outside_hint = ("keep the images inside the benchmark folder or pass the folder that holds them "
                    "as the images root")
    for candidate in candidates:
        if candidate.is_file():
            real = candidate.resolve()
            if not is_within(real, allowed):
                return None, (f"image path '{raw}' resolves to {real}, outside the data folders "
                              f"({', '.join(map(str, allowed))}); {outside_hint}")
            return real, None
    if candidates and not any(is_within(c.resolve(), allowed) for c in candidates):
        return None, (f"image path '{raw}' leaves the data folders ({', '.join(map(str, allowed))}); "
                      f"{outside_hint}")
    searched = ", ".join(str(root) for root in image_roots) if not rel.is_absolute() else str(rel.parent)
    return None, (f"image '{raw}' not found (looked in {searched}); fix the path in the record "
                  "or pass the folder that holds the images as the images root")


def image_decode_problem(path: Path) -> str | None:
    """Why the image file at `path` cannot be used, or None when Pillow reads it.

    Only the header is read to get the size, so a huge image is refused before any pixel is
    decoded. Pillow's `verify()` then checks the file's structure (for PNG, every chunk and its
    checksum). JPEG's `verify()` checks nearly nothing, so a JPEG is decoded at 1/8 scale instead,
    which finds truncated files at a small fraction of the full decode's cost.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit (~89 Mpx); mcit applies MAX_IMAGE_PIXELS below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return _too_large(path, f"{width}x{height} = {width * height / 1e6:.1f} megapixels")
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                    image.load()
                else:
                    image.verify()
    except Image.DecompressionBombError as exc:
        return _too_large(path, str(exc))
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many exception types on corrupt files
        return (f"image {path} cannot be decoded by Pillow ({type(exc).__name__}: {exc}); "
                "replace or re-encode the file")
    return None


def _too_large(path: Path, detail: str) -> str:
    return (f"image {path} is larger than the {MAX_IMAGE_PIXELS // 1_000_000}-megapixel limit ({detail}); "
            "downscale it")


def check_benchmark_path(path: str | Path, images: str | Path | None = None) -> CheckReport:
    """Check every task of the benchmark at `path` (folder or YAML) and return the full report.

    Unlike the loaders, this also decodes every image. Problems with the benchmark's layout itself
    (a malformed YAML file, a folder without task folders) raise `UserError`, since no task can be
    checked then.
    """
    # Imported here because the loaders import this module for the report types.
    from mcit.data.public import scan_benchmark

    _, report = scan_benchmark(Path(path), Path(images) if images is not None else None, verify_images=True)
    return report
