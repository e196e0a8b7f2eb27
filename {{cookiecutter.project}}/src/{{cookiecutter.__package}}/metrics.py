"""Binary-classification metrics, computed one way for train (validation) and evaluate (test).

Class 1 is the positive class; labels come from ``model_artifacts.THRESHOLD``, the same rule
serve applies, so the metrics describe what the endpoint will answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import StepError

if TYPE_CHECKING:
    import numpy as np

METRICS = ("accuracy", "auc", "f1", "precision", "recall")


def binary_metrics(
    truth: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, source: str
) -> dict[str, float]:
    """Accuracy, ROC AUC, F1, precision and recall of predictions against ``truth``.

    ``source`` names the data in the error raised when it holds a single class (AUC undefined).
    """
    from sklearn import metrics

    if len(set(truth.tolist())) < 2:
        raise StepError(f"{source}: the target has a single class; metrics need both 0 and 1")

    return {
        "accuracy": float(metrics.accuracy_score(truth, labels)),
        "auc": float(metrics.roc_auc_score(truth, probabilities)),
        "f1": float(metrics.f1_score(truth, labels, zero_division=0)),
        "precision": float(metrics.precision_score(truth, labels, zero_division=0)),
        "recall": float(metrics.recall_score(truth, labels, zero_division=0)),
    }


def model_quality_report(values: dict[str, float]) -> dict[str, object]:
    """``values`` in SageMaker's model-quality JSON (what ModelMetrics and the registry read)."""
    return {
        "binary_classification_metrics": {
            name: {"value": values[name], "standard_deviation": "NaN"} for name in METRICS
        }
    }
