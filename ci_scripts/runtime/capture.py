"""Read SageMaker data capture records: both sides of every request, single rows and batches.

An endpoint with data capture writes one JSON line per sampled request
(``s3://<capture bucket>/datacapture/<env>/<endpoint>/<variant>/YYYY/MM/DD/HH/*.jsonl``)::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "1.0,2.0\\n3.0,4.0", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json",
                                        "mode": "OUTPUT", "data": "{\\"predictions\\": ...}",
                                        "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...",
                       "inferenceTime": "2026-12-01T10:00:00.000Z"},
     "eventVersion": "0"}

The two sides may be encoded differently (a CSV request with a JSON response is the normal case for
this model; Model Monitor's own analyzer refuses that mix). ``encoding`` is ``CSV``, ``JSON`` or
``BASE64`` (then ``observedContentType`` says what the bytes are). A request holds one row or a
batch: CSV lines, or JSON ``{"instances": [[...], {...}]}`` (an instance may be an object keyed by
feature name). The response is serve's ``{"predictions": [...]}``, one answer per row in order, each
the object ``model.response`` writes (``model.PREDICTION_SCHEMA``); it is kept whole and checked
loosely (``model.ANSWER_FIELDS`` are numbers, a label one of the classes), so every problem type's
answer is read. A CSV response holds one value per row (``model.answer_from_csv``). Lines that are
not capture records, and records whose answer is not the model's (errors), are skipped and counted,
never fatal: a monitor must survive bad traffic.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import model

Row = list[Any] | dict[str, Any]


@dataclass
class Prediction:
    """One row's answer, as the model wrote it (``model.response``)."""

    answer: dict[str, Any]

    @property
    def value(self) -> float | int:
        """The row's value for prediction drift (``model.drift_value``)."""
        return model.drift_value(self.answer)


def prediction(answer: Any) -> Prediction:
    """``answer`` as a Prediction; ValueError unless it is an object whose ANSWER_FIELDS are
    numbers (an error body, another model's answer)."""
    if not isinstance(answer, dict):
        raise ValueError("an answer is not a JSON object")
    for name in model.ANSWER_FIELDS:
        value = answer.get(name)
        if name == "label" and model.CLASSES is not None:
            if value not in model.CLASSES or isinstance(value, bool):
                raise ValueError(f"an answer's label {value!r} is not one of the classes")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"an answer has no number {name!r}")
    found = Prediction(answer)
    found.value  # noqa: B018 - the drift value must be readable too
    return found


@dataclass
class Record:
    """One captured request with its answer."""

    inference_id: str | None
    time: datetime | None
    rows: list[Row]
    predictions: list[Prediction] = field(default_factory=list)


@dataclass
class Captured:
    """What the capture files held: the records and what was skipped."""

    records: list[Record] = field(default_factory=list)
    skipped: int = 0

    @property
    def rows(self) -> int:
        return sum(len(r.rows) for r in self.records)


def decoded(side: dict[str, Any]) -> tuple[str, str]:
    """``(text, kind)`` of one side of a record; kind is ``csv`` or ``json``."""
    data, encoding = side.get("data", ""), str(side.get("encoding", "CSV")).upper()
    content_type = str(side.get("observedContentType", "")).split(";")[0].strip().lower()
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
        encoding = "JSON" if content_type.endswith("json") else "CSV"
    return str(data), "json" if encoding == "JSON" else "csv"


def request_rows(side: dict[str, Any]) -> list[Row]:
    """The rows of a captured request (CSV lines or JSON instances)."""
    text, kind = decoded(side)
    if kind == "json":
        document = json.loads(text)
        if isinstance(document, list):
            instances = document
        elif isinstance(document, dict) and "instances" in document:
            instances = document["instances"]
        elif isinstance(document, dict):
            instances = [document]  # one object keyed by feature name
        else:
            raise ValueError("JSON request is neither an object nor a list")
        rows = [i for i in instances if isinstance(i, list | dict)]
        if len(rows) != len(instances):
            raise ValueError("a JSON instance is neither a list nor an object")
        return rows
    return [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]


def response_predictions(side: dict[str, Any]) -> list[Prediction]:
    """serve's answer ``{"predictions": [<model.response objects>]}``, or one CSV number per row."""
    text, kind = decoded(side)
    if kind == "json":
        answer = json.loads(text)
        return [prediction(p) for p in answer["predictions"]]
    values = [v.strip() for row in csv.reader(io.StringIO(text)) for v in row if v.strip()]
    return [prediction(model.answer_from_csv(v)) for v in values]


def parse_time(value: Any) -> datetime | None:
    """``inferenceTime`` (ISO 8601, ``Z`` suffix) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_lines(lines: Iterable[str]) -> Captured:
    """Records from capture JSON lines; a request and its answer must agree on the row count."""
    found = Captured()
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            data = event["captureData"]
            rows = request_rows(data["endpointInput"])
            output = data.get("endpointOutput")
            predictions = response_predictions(output) if output else []
            if predictions and len(predictions) != len(rows):
                raise ValueError("the answer's predictions do not match the request's rows")
            meta = event.get("eventMetadata") or {}
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            found.skipped += 1
            continue
        inference_id = meta.get("inferenceId")
        found.records.append(
            Record(
                inference_id=inference_id
                if isinstance(inference_id, str) and inference_id
                else None,
                time=parse_time(meta.get("inferenceTime")),
                rows=rows,
                predictions=predictions,
            )
        )
    return found


def capture_files(folder: Path) -> list[Path]:
    """Every ``*.jsonl`` under ``folder`` (recursively), in a stable order."""
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file()) if folder.is_dir() else []


def read_folder(folder: Path) -> Captured:
    """Every capture record under ``folder``."""
    lines: list[str] = []
    for path in capture_files(folder):
        lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    return read_lines(lines)
