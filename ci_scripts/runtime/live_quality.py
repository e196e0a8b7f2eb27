"""Model quality on live traffic: captured predictions joined with ground-truth labels.

Data drift misses a model that has gone wrong on data that looks normal; only labels show it.

- **Ground truth** arrives as JSON lines under ``s3://<capture bucket>/groundtruth/<env>/`` (any
  key below it), one line per request (``ci_scripts ground-truth`` writes them)::

      {"groundTruthData": {"data": "1,0", "encoding": "CSV"},
       "eventMetadata": {"eventId": "<the request's inference id>"}, "eventVersion": "0"}

  ``data`` holds the true value of each row of that request in order (a batch request has one
  per row). A later line for the same id replaces an earlier one (a corrected label).
- **The join**: captured requests carrying an inference id, matched with the labels by that id,
  row by row. Only requests captured within ``label_window_hours`` of the run are joined, so a
  label that arrives late (hours after its request) is still joined on a later run, while the
  metrics describe recent traffic. Unlabelled rows count in the coverage (labelled / captured rows
  in the window), never as an error.
- **The metrics** are the model's own (``model.metrics`` on the captured answers, the function
  the evaluate step scores the test split with), so live and registered values mean the same
  for every problem type; the truth is read by ``model.parse_truth`` (a class, or a number).
- **The judgement**: a metric drops when it is worse than the registered value by more than
  ``max_metric_drop[metric]``, in its direction (``model.higher_is_better``: accuracy falls, an
  rmse rises), judged only with at least ``min_labelled_rows`` labelled rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import model
from .capture import Record

DROP_CHECK = "LessThanThreshold"  # a higher-is-better metric fell too far
RISE_CHECK = "GreaterThanThreshold"  # a lower-is-better metric (an error) rose too far


class GroundTruthError(ValueError):
    """A label file that cannot be read; the message names the file and line."""


def parse_label_record(line: str) -> tuple[str, list[str]]:
    """``(inference id, raw values)`` of one ground-truth line."""
    try:
        record = json.loads(line)
    except ValueError:
        raise ValueError("not a JSON object") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    meta, data = record.get("eventMetadata"), record.get("groundTruthData")
    event_id = meta.get("eventId") if isinstance(meta, dict) else None
    if not isinstance(event_id, str) or not event_id.strip():
        raise ValueError("eventMetadata.eventId (the request's inference id) is missing")
    if not isinstance(data, dict) or not isinstance(data.get("data"), str):
        raise ValueError("groundTruthData.data is missing")
    encoding = data.get("encoding", "CSV")
    if encoding == "CSV":
        values = [v.strip() for v in data["data"].split(",")]
    elif encoding == "JSON":
        raw = json.loads(data["data"])
        values = [str(v) for v in (raw if isinstance(raw, list) else [raw])]
    else:
        raise ValueError(f"groundTruthData.encoding {encoding!r} is not CSV or JSON")
    if not values or any(not v for v in values):
        raise ValueError("groundTruthData.data has an empty value")
    return event_id.strip(), values


def read_ground_truth(
    files: Iterable[Path], name: Callable[[Path], str] = str
) -> dict[str, list[str]]:
    """Labels by inference id from ground-truth JSON lines files, read in the order given."""
    labels: dict[str, list[str]] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GroundTruthError(f"{name(path)}: cannot read: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event_id, values = parse_label_record(line)
            except ValueError as exc:
                raise GroundTruthError(f"{name(path)}:{number}: {exc}") from None
            labels[event_id] = values
    return labels


@dataclass
class Joined:
    """Captured rows in the window, and those with a label."""

    captured_rows: int = 0
    truth: list[str] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)  # the model's, as captured
    rows: list[Any] = field(default_factory=list)  # the request rows that were labelled
    named_rows: list[dict[str, Any]] = field(default_factory=list)  # the same, keyed by feature

    @property
    def labelled_rows(self) -> int:
        return len(self.truth)

    @property
    def coverage(self) -> float | None:
        return self.labelled_rows / self.captured_rows if self.captured_rows else None


def join(
    records: Sequence[Record],
    labels: dict[str, list[str]],
    now: datetime,
    window_hours: float,
) -> Joined:
    """Rows of requests captured within ``window_hours`` before ``now``, with their labels."""
    since = now - timedelta(hours=window_hours)
    joined = Joined()
    for record in records:
        if not record.predictions or (record.time is not None and record.time < since):
            continue
        joined.captured_rows += len(record.predictions)
        truth = labels.get(record.inference_id or "")
        if truth is None or len(truth) != len(record.predictions):
            continue  # unlabelled (or labelled for another request shape): coverage, not error
        for actual, prediction, row in zip(truth, record.predictions, record.rows, strict=True):
            joined.truth.append(actual)
            joined.answers.append(prediction.answer)
            joined.rows.append(row)
    return joined


# -- metrics: the model's own (model.metrics, as evaluate computes them) ------------------------
def live_metrics(joined: Joined) -> dict[str, float]:
    """``model.metrics`` of the joined answers against their truth (``model.parse_truth``).

    ValueError naming the value when a label is not one the model can have. A metric undefined
    on these rows (binary AUC on a single class) is NaN, never an error.
    """
    import numpy as np

    truth = np.asarray([model.parse_truth(v) for v in joined.truth])
    return model.metrics(truth, model.from_answers(joined.answers))


def worsening(name: str, registered: float, live: float) -> float:
    """How much worse ``live`` is than ``registered`` by the metric's direction (< 0: better)."""
    return registered - live if model.higher_is_better(name) else live - registered


def drops(
    registered: dict[str, float], live: dict[str, float], max_drop: dict[str, float]
) -> list[dict[str, str]]:
    """One violation per metric that got worse than the registered by more than its
    ``max_drop``, in the metric's direction (``model.higher_is_better``): an accuracy below
    ``registered - drop`` (LessThanThreshold), an rmse above ``registered + drop``
    (GreaterThanThreshold)."""
    found = []
    for name, allowed in max_drop.items():
        if name not in registered or math.isnan(live.get(name, math.nan)):
            continue
        if worsening(name, float(registered[name]), live[name]) > float(allowed):
            higher = model.higher_is_better(name)
            check = DROP_CHECK if higher else RISE_CHECK
            threshold = float(registered[name]) + (-1 if higher else 1) * float(allowed)
            found.append(
                {
                    "metric_name": name,
                    "constraint_check_type": check,
                    "description": f"Metric {name} with {live[name]:.4f} was "
                    f"{check} '{threshold:.4f}' (registered {registered[name]:.4f})",
                }
            )
    return found
