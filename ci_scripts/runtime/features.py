"""The dataset's columns (the team's schema.py) and the CSV reading every step shares.

One list of feature names, in the order the model is trained on and ``/invocations`` expects them.
Reading goes through the ``csv`` module rather than pandas so each bad value is reported with its
file, line and column, and so preprocess can write values back exactly as it read them.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import team
from .errors import StepError
from .model import CLASSES

if TYPE_CHECKING:
    import numpy as np

_schema = team.module("schema")
TARGET: str = _schema.TARGET
FEATURES: tuple[str, ...] = tuple(_schema.FEATURES)


def parse_number(value: str, where: str) -> float:
    """``value`` as a finite float; ``where`` names the cell in the error."""
    text = value.strip()
    if not text:
        raise StepError(f"{where}: empty value")
    try:
        number = float(text)
    except ValueError:
        raise StepError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise StepError(f"{where}: {value!r} is not a finite number")
    return number


def parse_label(value: str, where: str) -> str:
    """The target as the model reads it: a class of ``model.CLASSES`` written as an integer
    (a writer may have produced "1.0"), or for a regression any finite number, kept as written."""
    if CLASSES is None:
        parse_number(value, where)
        return value.strip()
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if number.is_integer() and int(number) in CLASSES:
        return str(int(number))
    expected = ", ".join(str(c) for c in CLASSES)
    raise StepError(f"{where}: target must be one of {expected}, got {value!r}")


@contextlib.contextmanager
def csv_read_errors(label: object) -> Iterator[None]:
    """What reading a CSV file can raise, as one StepError line naming ``label`` (the file, or
    its S3 URI): the training data and the batch inputs are read alike."""
    try:
        yield
    except OSError as exc:
        raise StepError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StepError(f"{label}: not UTF-8 text") from None
    except csv.Error as exc:
        raise StepError(f"{label}: malformed CSV: {exc}") from None


def read_labelled_csv(path: Path, features: Sequence[str] = FEATURES) -> list[list[str]]:
    """Rows of ``path`` as strings in ``(target, *features)`` order, every value checked.

    The header must name the target and exactly ``features`` (in any order): a missing or an
    unexpected column is an error, so a changed dataset fails here and not in the middle of
    training. Values are kept as the file spells them; only the target is normalised.
    """
    columns = (TARGET, *features)
    with csv_read_errors(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise StepError(f"{path}: empty file, expected a header row")
        missing = [name for name in columns if name not in header]
        if missing:
            raise StepError(f"{path}: missing column(s) {', '.join(missing)}")
        unexpected = [name for name in header if name not in columns]
        if unexpected:
            raise StepError(
                f"{path}: unexpected column(s) {', '.join(unexpected)}; the model's columns "
                f"are '{TARGET}' and the features listed in schema.py"
            )
        if len(set(header)) != len(header):
            raise StepError(f"{path}: duplicate column names in the header")
        order = [header.index(name) for name in columns]
        rows = []
        for line, record in enumerate(reader, start=2):
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise StepError(
                    f"{path}: line {line}: expected {len(header)} values, got {len(record)}"
                )
            row = [record[i] for i in order]
            row[0] = parse_label(row[0], f"{path}: line {line}, column '{TARGET}'")
            for name, value in zip(features, row[1:], strict=True):
                parse_number(value, f"{path}: line {line}, column '{name}'")
            rows.append(row)
    if not rows:
        raise StepError(f"{path}: no data rows")
    return rows


def csv_files(directory: Path) -> list[Path]:
    """The ``*.csv`` files in ``directory``, sorted so that reading them is deterministic."""
    if not directory.is_dir():
        raise StepError(f"{directory}: directory not found")
    files = sorted(path for path in directory.glob("*.csv") if path.is_file())
    if not files:
        raise StepError(f"{directory}: no .csv files")
    return files


def read_labelled_dir(directory: Path, features: Sequence[str] = FEATURES) -> list[list[str]]:
    """All rows of every ``*.csv`` in ``directory`` (a SageMaker channel may hold several)."""
    rows: list[list[str]] = []
    for path in csv_files(directory):
        rows.extend(read_labelled_csv(path, features))
    return rows


def to_arrays(rows: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: float features and the target (integer classes, or floats for a regression)
    of already-validated labelled rows."""
    import numpy as np

    table = np.asarray(rows, dtype=float)
    target = table[:, 0] if CLASSES is None else table[:, 0].astype(int)
    return table[:, 1:], target


def parse_feature_rows(rows: Iterable[Sequence[object]], n_features: int) -> np.ndarray:
    """Unlabelled rows from a request as a float matrix; errors name the 1-based row and column."""
    import numpy as np

    matrix: list[list[float]] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != n_features:
            raise StepError(f"row {number}: expected {n_features} values, got {len(row)}")
        values = []
        for column, value in enumerate(row, start=1):
            where = f"row {number}, column {column}"
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise StepError(f"{where}: {value!r} is not a number")
            values.append(parse_number(str(value), where))
        matrix.append(values)
    if not matrix:
        raise StepError("no rows to predict")
    return np.asarray(matrix, dtype=float)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Write ``rows`` under ``header``, creating the directory (SageMaker may not have)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
