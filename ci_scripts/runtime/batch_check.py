"""Batch input check: every file of a batch run is valid before anything is scored.

A batch transform that meets a bad row fails halfway, after writing the outputs of the files
before it. This step runs first (a processing job on AWS, a step subprocess locally) and fails
with ONE line, ``<file>:<line>: <reason>``, so a bad file writes nothing to the output prefix.

A batch input file is CSV WITHOUT a header; each line is ``<id>,<feature 1>,...,<feature n>``
(features in training order, ``features.FEATURES``). The id is kept in the output line
(``<id>,<prediction>``) and is what the monitor joins labels on, so it must be non-empty and
unique within its file. Every file under the input directory counts (an S3 prefix may hold
folders); ``--label`` names them as the caller knows them (the S3 prefix), not as downloaded.

``python -m ci_scripts.runtime batch_check [--input DIR] [--label PREFIX] [--summary FILE]``
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import paths
from .errors import StepError
from .features import FEATURES, csv_read_errors, parse_cell


def input_files(directory: Path) -> list[Path]:
    """Every file under ``directory`` (hidden files skipped), sorted: the order runs score in."""
    if not directory.is_dir():
        raise StepError(f"{directory}: input directory not found")
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    )
    if not files:
        raise StepError(f"{directory}: no input files")
    return files


def check_file(path: Path, label: str, features: Sequence[str] = FEATURES) -> list[str]:
    """The ids of ``path`` in file order; StepError ``<label>:<line>: <reason>`` at the first
    bad line (wrong column count, empty id, duplicate id, a value its feature cannot take)."""
    width = 1 + len(features)
    ids: list[str] = []
    seen: dict[str, int] = {}
    with csv_read_errors(label), path.open(newline="", encoding="utf-8") as handle:
        for line, record in enumerate(csv.reader(handle), start=1):
            where = f"{label}:{line}"
            if not record or all(not cell.strip() for cell in record):
                raise StepError(f"{where}: empty line (every line is one row to score)")
            if len(record) != width:
                raise StepError(
                    f"{where}: expected {width} columns (the id, then {len(features)} "
                    f"features), got {len(record)}"
                )
            row_id = record[0].strip()
            if not row_id:
                raise StepError(f"{where}: empty id (column 1)")
            if row_id in seen:
                raise StepError(f"{where}: duplicate id {row_id!r} (first on line {seen[row_id]})")
            seen[row_id] = line
            for name, value in zip(features, record[1:], strict=True):
                parse_cell(name, value, f"{where}: column '{name}'")
            ids.append(row_id)
    if not ids:
        raise StepError(f"{label}:1: empty file (nothing to score)")
    return ids


def check_dir(directory: Path, label: str = "") -> dict[str, int]:
    """``{key: rows}`` for every file under ``directory``; the first bad file raises.

    ``key`` is the file's path relative to ``directory`` (its S3 key under the input prefix);
    errors name ``<label><key>``.
    """
    counts: dict[str, int] = {}
    for path in input_files(directory):
        key = path.relative_to(directory).as_posix()
        counts[key] = len(check_file(path, f"{label}{key}"))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} batch_check", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--input", type=Path, default=None, help="default $OPT_ML_ROOT/processing/input/batch"
    )
    parser.add_argument(
        "--label", default="", help="prefix for file names in errors (the S3 input prefix)"
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="where to write {files, rows} (default processing/output/batch_check/summary.json)",
    )
    args = parser.parse_args(argv)
    counts = check_dir(args.input or paths.batch_input_dir(), args.label)
    summary = args.summary or paths.batch_check_file()
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(
        json.dumps({"files": counts, "rows": sum(counts.values())}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"{len(counts)} file(s), {sum(counts.values())} row(s): valid")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StepError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(1)
