"""Model quality on live traffic, as ci_scripts sees it: ground truth in, results out.

The monitor itself (the join of captured predictions with labels by inference id, the metrics,
the judgement) is step code of the model repo (src/<package>/live_quality.py, run by the
monitoring pipeline; ci_scripts.monitoring). What is left here:

- **Ground truth** (where and how labels arrive): JSON lines under
  ``s3://<capture bucket>/groundtruth/<env>/YYYY/MM/DD/HH/*.jsonl`` (locally the same key in the
  ``.mlops/s3`` tree), one line per request::

      {"groundTruthData": {"data": "1,0", "encoding": "CSV"},
       "eventMetadata": {"eventId": "<the request's inference id>"}, "eventVersion": "0"}

  ``eventId`` is the ``InferenceId`` the caller sent with the request (the API front and the smoke
  test send one; SageMaker records it as ``eventMetadata.inferenceId`` in the capture). ``data``
  holds the true class of each row of that request in order, comma-separated (a batch request has
  one per row). A later line for the same id replaces an earlier one (a corrected label).
- ``monitoring.quality`` of a manifest over the schema's defaults, and the QualityResult both
  backends fill from a run's summary.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

METRICS = ("accuracy", "auc", "f1", "precision", "recall")


def ground_truth_prefix(bucket: str, env: str) -> str:
    """Where the labels of ``env``'s requests are written (then ``YYYY/MM/DD/HH/*.jsonl``)."""
    return f"s3://{bucket}/groundtruth/{env}"


class GroundTruthError(ValueError):
    """A label file that cannot be read; the message names the file and line."""


# -- ground truth --------------------------------------------------------------------------------
def ground_truth_line(inference_id: str, labels: Sequence[Any] | float | str) -> str:
    """One ground-truth record (what a labelling process writes for one request): class labels
    as written (names, or integers), a regression's targets as numbers."""
    values = [labels] if isinstance(labels, int | float | str) else list(labels)
    data = ",".join(
        v if isinstance(v, str) else str(int(v)) if float(v).is_integer() else repr(float(v))
        for v in values
    )
    record = {
        "groundTruthData": {"data": data, "encoding": "CSV"},
        "eventMetadata": {"eventId": inference_id},
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


# -- settings and results -----------------------------------------------------------------------
def settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """``monitoring.quality`` of ``manifest`` over the schema's defaults (the one source)."""
    from ci_scripts.manifest import spec

    quality = spec(manifest).monitoring.quality
    # manifest.load fills in the model's MAX_METRIC_DROP (model_contract); a manifest that did
    # not pass through it gets the template's binary-classification defaults.
    from ci_scripts.model_contract import ModelContract

    defaults = ModelContract(source="default").max_metric_drop
    return {
        "max_metric_drop": defaults | quality.max_metric_drop,
        "min_labelled_rows": quality.min_labelled_rows,
        "min_coverage": float(quality.min_coverage),
        **{
            key: float(getattr(quality, key))
            for key in ("label_window_hours", "max_bias_drift", "min_attribution_ndcg")
        },
    }


@dataclass
class QualityResult:
    """The latest model quality check of one environment (both backends fill it alike, from the
    monitor's summary.json). ``checks`` holds the bias and feature-attribution drift sections;
    their violations are in ``violations`` too."""

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
    html_report: str = ""
    checked_at: str = ""
    failure_reason: str = ""
    coverage_ok: bool = True
    judged: bool = False
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def coverage(self) -> float | None:
        if not self.captured_rows:
            return None
        return self.labelled_rows / self.captured_rows
