"""Model quality on live traffic: captured predictions joined with ground-truth labels.

Data drift misses a model that has gone wrong on data that looks normal; only labels show it.
This module holds the one definition of each part, so the local backend's check and the aws
backend's reading of Model Monitor's results cannot disagree:

- **Ground truth** (where and how labels arrive): JSON lines under
  ``s3://<artifact bucket>/groundtruth/<env>/YYYY/MM/DD/HH/*.jsonl`` (locally the same key in the
  ``.mlops/s3`` tree), in Model Monitor's ground-truth merge format, one line per request::

      {"groundTruthData": {"data": "1", "encoding": "CSV"},
       "eventMetadata": {"eventId": "<the request's inference id>"}, "eventVersion": "0"}

  ``eventId`` is the ``InferenceId`` the caller sent with the request (the API front and the smoke
  test send one; SageMaker records it as ``eventMetadata.inferenceId`` in the capture). ``data``
  holds the true class (0 or 1) of each row of that request, comma-separated. A later line for
  the same id replaces an earlier one (a corrected label).
- **The join**: captured requests of the served version carrying an inference id, matched with
  the labels by that id. Requests without a label count in the coverage (labelled / captured
  rows), never as an error.
- **The metrics**: accuracy, ROC AUC, F1, precision and recall (class 1 positive), as the
  evaluate step computes them with scikit-learn, here in numpy (the CLI stays cheap to import).
- **The judgement**: a metric drops when ``registered - live > monitoring.quality.max_metric_drop``
  (the registered value is the version's evaluation on the test split). Files are Model
  Monitor's model quality ones: ``statistics.json`` (``binary_classification_metrics``),
  ``constraints.json`` (``binary_classification_constraints``, threshold = registered - max drop,
  ``LessThanThreshold``) and ``constraint_violations.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_scripts import problem_types

# Model Monitor's report files are named alike for both kinds of job: one source of the names
from ci_scripts.data_quality import CONSTRAINTS_FILE, STATISTICS_FILE, VIOLATIONS_FILE

METRICS = ("accuracy", "auc", "f1", "precision", "recall")
LESS_THAN_THRESHOLD = "LessThanThreshold"
GREATER_THAN_THRESHOLD = "GreaterThanThreshold"
COVERAGE_CHECK = "coverage_check"


def schedule_name(project: str, env: str) -> str:
    """The model quality monitoring schedule of one environment (aws and local alike)."""
    return f"{project}-{env}-model-quality"


def ground_truth_prefix(bucket: str, env: str) -> str:
    """Where the labels of ``env``'s requests are written (then ``YYYY/MM/DD/HH/*.jsonl``)."""
    return f"s3://{bucket}/groundtruth/{env}"


def report_prefix(bucket: str, env: str) -> str:
    """Where model quality executions of ``env`` write their reports."""
    return f"s3://{bucket}/monitoring/{env}/model-quality"


class GroundTruthError(ValueError):
    """A label file that cannot be read; the message names the file and line."""


@dataclass
class Joined:
    """Captured predictions with the labels found for them."""

    captured_rows: int = 0
    truth: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    # Each joined row's prediction as problem_types.ProblemType.parse_prediction reads it.
    predictions: list[dict[str, float]] = field(default_factory=list)

    @property
    def labelled_rows(self) -> int:
        return len(self.truth)

    @property
    def coverage(self) -> float:
        return self.labelled_rows / self.captured_rows if self.captured_rows else 0.0


# -- ground truth --------------------------------------------------------------------------------
def ground_truth_line(inference_id: str, labels: Sequence[float] | float) -> str:
    """One ground-truth record (what a labelling process writes for one request): class labels
    as integers, a regression's targets as numbers."""
    values = [labels] if isinstance(labels, int | float) else list(labels)
    data = ",".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values)
    record = {
        "groundTruthData": {"data": data, "encoding": "CSV"},
        "eventMetadata": {"eventId": inference_id},
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


def read_ground_truth(
    files: Iterable[Path], name: Any = str, problem_type: str | None = None
) -> dict[str, list[float]]:
    """Labels by inference id from ground-truth JSON lines files, read in the order given.

    ``name(path)`` is how a file is named in errors (its s3 URI, say). Raises GroundTruthError
    ``<file>:<line>: <reason>`` on the first line that is not a valid record. What a valid
    value is depends on ``problem_type`` (problem_types: a class, or any number).
    """
    kind = problem_types.get(problem_type)
    labels: dict[str, list[float]] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GroundTruthError(f"{name(path)}: cannot read: {exc}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event_id, values = _parse_record(line, kind)
            except ValueError as exc:
                raise GroundTruthError(f"{name(path)}:{number}: {exc}") from None
            labels[event_id] = values
    return labels


def _parse_record(line: str, kind: problem_types.ProblemType) -> tuple[str, list[float]]:
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
        raise ValueError("groundTruthData.data (the true target of each row) is missing")
    encoding = data.get("encoding", "CSV")
    if encoding not in ("CSV", "JSON"):
        raise ValueError(f"groundTruthData.encoding {encoding!r} is not CSV or JSON")
    raw: Any = data["data"].split(",") if encoding == "CSV" else json.loads(data["data"])
    values = raw if isinstance(raw, list) else [raw]
    parsed = []
    for value in values:
        try:
            parsed.append(kind.parse_truth(str(value).strip()))
        except ValueError as exc:
            raise ValueError(f"groundTruthData.data {data['data']!r}: {exc}") from None
    if not parsed:
        raise ValueError("groundTruthData.data is empty")
    return event_id.strip(), parsed


# -- captured predictions ------------------------------------------------------------------------
def captured_predictions(
    lines: Iterable[str], problem_type: str | None = None
) -> tuple[int, dict[str, list[dict[str, float]]]]:
    """(rows captured, predictions by inference id) from data capture JSON lines.

    Rows are counted from the endpoint's answers (one prediction per row); captures whose
    answer is not the model's JSON (errors) are skipped, as Model Monitor skips them. What a
    prediction holds depends on ``problem_type`` (problem_types.ProblemType.parse_prediction).
    """
    kind = problem_types.get(problem_type)
    rows = 0
    found: dict[str, list[dict[str, float]]] = {}
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            output = event["captureData"]["endpointOutput"]
            meta = event.get("eventMetadata") or {}
            answer = json.loads(_decoded(output))
            predictions = [kind.parse_prediction(p) for p in answer["predictions"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        rows += len(predictions)
        inference_id = meta.get("inferenceId") if isinstance(meta, dict) else None
        if isinstance(inference_id, str) and inference_id:
            found[inference_id] = predictions
    return rows, found


def _decoded(captured: dict[str, Any]) -> str:
    if captured.get("encoding") == "BASE64":
        import base64

        return base64.b64decode(captured["data"]).decode("utf-8")
    return str(captured["data"])


def join(
    captured_rows: int,
    predictions: dict[str, list[dict[str, float]]],
    labels: dict[str, list[float]],
) -> Joined:
    """Pairs of (truth, prediction) for every captured request with labels for all its rows."""
    joined = Joined(captured_rows=captured_rows)
    for inference_id, predicted in predictions.items():
        truth = labels.get(inference_id)
        if truth is None or len(truth) != len(predicted):
            continue  # unlabelled (or labelled for another request shape): coverage, not error
        for actual, prediction in zip(truth, predicted, strict=True):
            joined.truth.append(actual)
            joined.predictions.append(prediction)
            if "label" in prediction:
                joined.labels.append(int(prediction["label"]))
            if "probability" in prediction:
                joined.probabilities.append(prediction["probability"])
    return joined


def live_metrics(joined: Joined, problem_type: str | None = None) -> dict[str, float]:
    """The problem type's metrics of the joined rows (problem_types.compute_metrics)."""
    if problem_types.get(problem_type).name == problem_types.DEFAULT:
        truth = [int(v) for v in joined.truth]
        return binary_metrics(truth, joined.labels, joined.probabilities)
    return problem_types.compute_metrics(problem_type, joined.truth, joined.predictions)


# -- metrics -------------------------------------------------------------------------------------
def binary_metrics(
    truth: Sequence[int], labels: Sequence[int], probabilities: Sequence[float]
) -> dict[str, float]:
    """The evaluate step's metrics (sklearn's definitions, zero_division=0); AUC is NaN when
    the labels hold a single class (it is undefined then)."""
    import numpy as np

    y = np.asarray(truth, dtype=int)
    predicted = np.asarray(labels, dtype=int)
    tp = int(np.sum((predicted == 1) & (y == 1)))
    fp = int(np.sum((predicted == 1) & (y == 0)))
    fn = int(np.sum((predicted == 0) & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": float(np.mean(predicted == y)) if y.size else math.nan,
        "auc": _auc(y, np.asarray(probabilities, dtype=float)),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "precision": precision,
        "recall": recall,
    }


def _auc(y: Any, scores: Any) -> float:
    """ROC AUC as the Mann-Whitney U statistic with average ranks for ties (= sklearn's)."""
    import numpy as np

    positives = int(np.sum(y == 1))
    negatives = int(y.size - positives)
    if not positives or not negatives:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    ranks = np.empty(y.size, dtype=float)
    start = 0
    while start < y.size:  # average rank over each run of tied scores
        end = start
        while end + 1 < y.size and ordered[end + 1] == ordered[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = float(np.sum(ranks[y == 1])) - positives * (positives + 1) / 2
    return u / (positives * negatives)


# -- Model Monitor's model quality files ---------------------------------------------------------
def settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """``monitoring.quality`` of ``manifest`` over the schema's defaults (the one source)."""
    from ci_scripts.manifest import load_schema

    schema = load_schema()["properties"]["monitoring"]["properties"]["quality"]["properties"]
    quality = (manifest.get("monitoring") or {}).get("quality") or {}
    # manifest.load fills in the model's MAX_METRIC_DROP (model_contract); a manifest that did
    # not pass through it gets the template's binary-classification defaults.
    from ci_scripts.model_contract import ModelContract

    defaults = ModelContract(source="default").max_metric_drop
    return {
        "max_metric_drop": defaults | dict(quality.get("max_metric_drop") or {}),
        "min_labelled_rows": int(
            quality.get("min_labelled_rows", schema["min_labelled_rows"]["default"])
        ),
        "min_coverage": float(quality.get("min_coverage", schema["min_coverage"]["default"])),
    }


def constraints(
    registered: dict[str, float], max_drop: dict[str, float], problem_type: str | None = None
) -> dict[str, Any]:
    """constraints.json: each registered metric may get worse by its ``max_drop`` at most:
    fall below ``registered - drop`` (higher is better) or rise above ``registered + drop``."""
    kind = problem_types.get(problem_type)
    rules = {}
    for name in kind.metrics:
        if name not in registered or name not in max_drop:
            continue
        higher = kind.higher_is_better(name)
        sign = -1.0 if higher else 1.0
        rules[name] = {
            "threshold": round(float(registered[name]) + sign * float(max_drop[name]), 6),
            "comparison_operator": LESS_THAN_THRESHOLD if higher else GREATER_THAN_THRESHOLD,
        }
    return {"version": 0.0, kind.constraints_key: rules}


def statistics(
    live: dict[str, float], rows: int, problem_type: str | None = None
) -> dict[str, Any]:
    """statistics.json of one execution (NaN metrics are left out: undefined on this data)."""
    return {
        "version": 0.0,
        "dataset": {"item_count": rows},
        problem_types.get(problem_type).report_key: {
            name: {"value": value, "standard_deviation": "NaN"}
            for name, value in live.items()
            if not math.isnan(value)
        },
    }


def violations(live: dict[str, float], constraint: dict[str, Any]) -> list[dict[str, str]]:
    """constraint_violations.json entries, worded as Model Monitor words them."""
    found = []
    sections = [v for k, v in constraint.items() if k.endswith("_constraints")]
    for name, rule in (item for section in sections for item in section.items()):
        value = live.get(name, math.nan)
        threshold = float(rule["threshold"])
        operator = rule.get("comparison_operator", LESS_THAN_THRESHOLD)
        worse = value > threshold if operator == GREATER_THAN_THRESHOLD else value < threshold
        if not math.isnan(value) and worse:
            found.append(
                {
                    "metric_name": name,
                    "constraint_check_type": operator,
                    "description": f"Metric {name} with {value:.4f} was "
                    f"{operator} '{threshold:.4f}'",
                }
            )
    return found


def metric_values(document: dict[str, Any]) -> dict[str, float]:
    """``{name: value}`` of ``binary_classification_metrics`` (statistics.json, evaluation.json)."""
    sections = [v for k, v in document.items() if k.endswith("_metrics") and isinstance(v, dict)]
    found = sections[0] if sections else {}
    values = {}
    for name, entry in found.items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
    return values


def write_reports(
    folder: Path, statistics_doc: dict[str, Any], constraints_doc: dict[str, Any], found: list
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for file, document in (
        (STATISTICS_FILE, statistics_doc),
        (CONSTRAINTS_FILE, constraints_doc),
        (VIOLATIONS_FILE, {"violations": found}),
    ):
        (folder / file).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


@dataclass
class QualityResult:
    """The latest model quality check of one environment (both backends fill it alike).

    ``captured_rows`` is None when the backend cannot count them (aws: Model Monitor reports
    only the rows it merged with labels)."""

    env: str
    schedule: str
    status: str  # Completed, CompletedWithViolations, NoData
    model_version: int | None = None
    registered: dict[str, float] = field(default_factory=dict)
    live: dict[str, float] = field(default_factory=dict)
    labelled_rows: int = 0
    captured_rows: int | None = None
    violations: list[dict[str, str]] = field(default_factory=list)
    report_uri: str = ""
    checked_at: str = ""
    failure_reason: str = ""

    @property
    def coverage(self) -> float | None:
        if not self.captured_rows:
            return None
        return self.labelled_rows / self.captured_rows
