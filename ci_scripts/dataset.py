"""A team's own CSV as the model's dataset: infer its schema, refuse what cannot be a feature.

``python -m ci_scripts data adopt FILE --target COLUMN`` (ci_scripts/commands/data.py) reads the
file with the csv module, decides each column's kind (ci_scripts.schema: a column whose every
value is a finite number is numeric; true/false, yes/no is boolean; anything else categorical)
and the classes of the target, and refuses, one line per column, what would make a bad feature:
an ID (every value different: a whole number or text), a constant, an empty column, free text
(more than ``MAX_CATEGORIES`` distinct values, most of them unique). Every feature is declared
nullable: missing values in serving traffic are normal, and the model imputes them.

Standard library only: the render's hook writes the batch sample with :func:`write_batch_sample`
too (loading this file by path), so the two never disagree on the batch input format.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

DATASET = Path("data") / "dataset.csv"
BATCH_SAMPLE = Path("data") / "batch" / "sample.csv"
BATCH_SAMPLE_STEP = 10  # every 10th row of the dataset goes into the batch sample
MAX_CATEGORIES = 50  # more distinct values than this, mostly unique, is free text
MIN_ROWS_FOR_ID = 20  # below this, every value differing says nothing
MAX_CLASSES = 50  # a classifier's target with more distinct values is probably a regression
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "t", "f", "y", "n"})
PROBLEM_TYPES = ("binary_classification", "multiclass_classification", "regression")


class AdoptError(ValueError):
    """The file cannot be the dataset; ``reasons`` holds one line per problem."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class Adoption:
    """What ``data adopt`` decided about a file."""

    target: str
    problem_type: str
    kinds: dict[str, str]  # feature -> numeric | categorical | boolean, in the file's order
    classes: tuple[object, ...] | None
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    @property
    def positive_class(self) -> object | None:
        """A binary target's positive class: the last in sorted order (1 of 0/1, yes of no/yes)."""
        return self.classes[-1] if self.problem_type == "binary_classification" else None


def read(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of ``path``; AdoptError naming the file and line on a bad one."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            rows = []
            for line, record in enumerate(reader, start=2):
                if not record or all(not cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise AdoptError(
                        [f"{path}:{line}: expected {len(header)} values, got {len(record)}"]
                    )
                rows.append(record)
    except OSError as exc:
        raise AdoptError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise AdoptError([f"{path}: not UTF-8 text"]) from None
    except csv.Error as exc:
        raise AdoptError([f"{path}: malformed CSV: {exc}"]) from None
    if not header or not any(header):
        raise AdoptError([f"{path}: empty file, expected a header row"])
    if len(set(header)) != len(header) or not all(header):
        raise AdoptError([f"{path}: the header has empty or duplicate column names"])
    if not rows:
        raise AdoptError([f"{path}: no data rows"])
    return header, rows


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def column_kind(name: str, values: list[str]) -> tuple[str | None, str]:
    """``(kind, "")`` of a feature column, or ``(None, why it cannot be a feature)``."""
    present = [v.strip() for v in values if v.strip()]
    if not present:
        return None, f"column {name!r}: every value is empty"
    distinct = set(present)
    if len(distinct) == 1:
        return None, f"column {name!r}: constant ({present[0]!r} everywhere), it tells nothing"
    numbers = [_number(v) for v in present]
    unique = len(distinct) == len(present) >= MIN_ROWS_FOR_ID
    if all(n is not None for n in numbers):
        if unique and all(float(n).is_integer() for n in numbers if n is not None):
            return None, f"column {name!r}: looks like an ID (a different whole number per row)"
        return "numeric", ""
    if {v.lower() for v in distinct} <= BOOLEAN_WORDS:
        return "boolean", ""
    if unique:
        return None, f"column {name!r}: looks like an ID (a different value per row)"
    if len(distinct) > MAX_CATEGORIES and len(distinct) > len(present) / 2:
        return None, (
            f"column {name!r}: free text ({len(distinct)} distinct values in {len(present)} "
            "rows); encode it as a category or a number first"
        )
    return "categorical", ""


def target_classes(name: str, values: list[str], problem_type: str) -> tuple[object, ...] | None:
    """The classes of a classifier's target (numbers when all are whole numbers, else names),
    None for a regression; AdoptError when the target cannot be that problem type's."""
    present = [v.strip() for v in values]
    empty = sum(1 for v in present if not v)
    if empty:
        raise AdoptError([f"target {name!r}: {empty} row(s) without a value; fill or drop them"])
    numbers = [_number(v) for v in present]
    if problem_type == "regression":
        if any(n is None for n in numbers):
            bad = next(v for v, n in zip(present, numbers, strict=True) if n is None)
            raise AdoptError([f"target {name!r}: {bad!r} is not a number (a regression's target)"])
        if len(set(numbers)) < 2:
            raise AdoptError([f"target {name!r}: a single value; nothing to learn"])
        return None
    distinct = sorted(set(present))
    if all(n is not None and float(n).is_integer() for n in numbers):
        classes: tuple[object, ...] = tuple(sorted({int(float(v)) for v in present}))
    else:
        classes = tuple(distinct)
    if len(classes) < 2:
        raise AdoptError([f"target {name!r}: a single class ({distinct[0]!r}); need two or more"])
    if problem_type == "binary_classification" and len(classes) != 2:
        raise AdoptError(
            [f"target {name!r}: {len(classes)} classes, a binary classifier needs exactly two"]
        )
    if len(classes) > MAX_CLASSES:
        raise AdoptError([f"target {name!r}: {len(classes)} classes; is it a regression's target?"])
    return classes


def adopt(path: Path, target: str, problem_type: str, drop: tuple[str, ...] = ()) -> Adoption:
    """Decide the schema of ``path``; AdoptError with one line per problem found."""
    if problem_type not in PROBLEM_TYPES:
        raise AdoptError([f"--problem-type {problem_type!r}: one of {', '.join(PROBLEM_TYPES)}"])
    header, rows = read(path)
    unknown = [name for name in (target, *drop) if name not in header]
    if unknown:
        raise AdoptError(
            [f"{path}: no column {name!r} (columns: {', '.join(header)})" for name in unknown]
        )
    if target in drop:
        raise AdoptError([f"--drop {target}: it is the target"])
    reasons: list[str] = []
    try:
        classes = target_classes(target, [row[header.index(target)] for row in rows], problem_type)
    except AdoptError as exc:
        reasons += exc.reasons
        classes = None
    kinds: dict[str, str] = {}
    for index, name in enumerate(header):
        if name == target or name in drop:
            continue
        kind, why = column_kind(name, [row[index] for row in rows])
        if kind is None:
            reasons.append(f"{why} (pass --drop {name} to leave it out)")
        else:
            kinds[name] = kind
    if not kinds and not reasons:
        reasons.append(f"{path}: no feature columns besides the target")
    if reasons:
        raise AdoptError(reasons)
    keep = [header.index(name) for name in (target, *kinds)]
    return Adoption(
        target=target,
        problem_type=problem_type,
        kinds=kinds,
        classes=classes,
        header=[header[i] for i in keep],
        rows=[[row[i] for i in keep] for row in rows],
    )


def schema_source(adoption: Adoption, source: str) -> str:
    """The text of schema.py declaring ``adoption`` (``source``: the file it came from)."""
    names = {"numeric": "Numeric", "categorical": "Categorical", "boolean": "Boolean"}
    used = sorted({names[kind] for kind in adoption.kinds.values()})
    lines = [
        f'"""The data, as ``python -m ci_scripts data adopt`` inferred it from {source}.',
        "",
        "Each feature is Numeric(), Categorical() or Boolean(), nullable unless it says",
        "``nullable=False`` (ci_scripts/schema.py); edit the kinds here if the inference got one",
        'wrong. CLASSES are the target\'s values (None for a regression)."""',
        "",
        "from __future__ import annotations",
        "",
        f"from ci_scripts.schema import {', '.join(used)}",
        "",
        f"TARGET = {_py(adoption.target)}",
        f"CLASSES = {_py(adoption.classes)}",
    ]
    if adoption.positive_class is not None:
        positive = _py(adoption.positive_class)
        lines.append(f"POSITIVE_CLASS = {positive}  # its probability is scored")
    lines += ["", "FEATURES = {"]
    lines += [f"    {_py(name)}: {names[kind]}()," for name, kind in adoption.kinds.items()]
    lines += ["}", ""]
    return "\n".join(lines)


def _py(value: object) -> str:
    """``value`` as Python source in the style ruff formats (double-quoted strings)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def write_dataset(adoption: Adoption, path: Path) -> None:
    """The adopted columns (target first, then the features) as ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(adoption.header)
        writer.writerows(adoption.rows)


def write_batch_sample(root: Path, target: str) -> Path:
    """``data/batch/sample.csv`` from ``data/dataset.csv``: ``<id>,<features...>`` lines, no
    header (the batch input format), every ``BATCH_SAMPLE_STEP``-th row without the target, its
    dataset line number as the id (``row-<n>``) so labels can be joined by it."""
    with (root / DATASET).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if target not in header:
            raise ValueError(f"{DATASET.as_posix()}: no {target!r} column to leave out")
        index = header.index(target)
        rows = [
            [f"row-{number}", *(v for i, v in enumerate(row) if i != index)]
            for number, row in enumerate(reader, start=2)
            if row and (number - 2) % BATCH_SAMPLE_STEP == 0
        ]
    path = root / BATCH_SAMPLE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return path


BIAS_TABLE = "[tool.sagemaker-gitops.bias]"
_BIAS_KEY = re.compile(r"^(facet|group|positive_outcome)\s*=")


def bias_off(pyproject: str) -> str:
    """pyproject.toml's text with the bias facet commented out (it named a feature of the old
    dataset): the bias report then says it is off until the team names a facet of the new one."""
    lines = pyproject.splitlines(keepends=True)
    inside = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == BIAS_TABLE
        elif inside and _BIAS_KEY.match(stripped):
            lines[index] = f"# {line}"
    return "".join(lines)
