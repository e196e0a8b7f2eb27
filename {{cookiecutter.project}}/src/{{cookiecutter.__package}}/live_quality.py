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
- **The metrics** are one function per problem type (``METRICS_BY_PROBLEM_TYPE``; this model is a
  ``binary_classification``), computed with ``sklearn.metrics`` like the evaluate step, so live
  and registered values mean the same.
- **The judgement**: a metric drops when ``registered - live > max_metric_drop[metric]``, judged
  only with at least ``min_labelled_rows`` labelled rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .capture import Record

DEFAULT_PROBLEM_TYPE = "binary_classification"
DROP_CHECK = "LessThanThreshold"


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
    labels: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
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
            joined.labels.append(prediction.label)
            joined.probabilities.append(prediction.probability)
            joined.rows.append(row)
    return joined


# -- metrics, one function per problem type -------------------------------------------------------
def binary_classification(joined: Joined) -> dict[str, float]:
    """Accuracy, ROC AUC, F1, precision and recall (class 1 positive; AUC NaN on one class)."""
    import numpy as np
    from sklearn import metrics

    truth = np.asarray([int(float(v)) for v in joined.truth], dtype=int)
    labels = np.asarray(joined.labels, dtype=int)
    auc = (
        float(metrics.roc_auc_score(truth, joined.probabilities))
        if len(set(truth.tolist())) > 1
        else math.nan
    )
    return {
        "accuracy": float(metrics.accuracy_score(truth, labels)),
        "auc": auc,
        "f1": float(metrics.f1_score(truth, labels, zero_division=0)),
        "precision": float(metrics.precision_score(truth, labels, zero_division=0)),
        "recall": float(metrics.recall_score(truth, labels, zero_division=0)),
    }


# Problem types plug in here (multiclass_classification, regression, ...): the monitor picks one
# by the ``problem_type`` of its configuration.
METRICS_BY_PROBLEM_TYPE: dict[str, Callable[[Joined], dict[str, float]]] = {
    "binary_classification": binary_classification,
}


def live_metrics(problem_type: str, joined: Joined) -> dict[str, float]:
    """The metrics of ``problem_type`` on the joined rows."""
    try:
        compute = METRICS_BY_PROBLEM_TYPE[problem_type]
    except KeyError:
        known = ", ".join(sorted(METRICS_BY_PROBLEM_TYPE))
        raise ValueError(f"problem_type {problem_type!r} is not one of: {known}") from None
    return compute(joined)


def drops(
    registered: dict[str, float], live: dict[str, float], max_drop: dict[str, float]
) -> list[dict[str, str]]:
    """One violation per metric that fell more than its ``max_drop`` below the registered."""
    found = []
    for name, allowed in max_drop.items():
        if name not in registered or math.isnan(live.get(name, math.nan)):
            continue
        threshold = float(registered[name]) - float(allowed)
        if live[name] < threshold:
            found.append(
                {
                    "metric_name": name,
                    "constraint_check_type": DROP_CHECK,
                    "description": f"Metric {name} with {live[name]:.4f} was "
                    f"{DROP_CHECK} '{threshold:.4f}' (registered {registered[name]:.4f})",
                }
            )
    return found
