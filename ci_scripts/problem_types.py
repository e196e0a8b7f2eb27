"""What each of SageMaker's problem types means for monitoring: metrics, directions, parsers.

The template renders a model of one of three problem types (the ``problem_type`` prompt, the
generated ``src/<package>/model.py``'s ``PROBLEM_TYPE``), named as SageMaker names them in its
model-quality reports: ``binary_classification``, ``multiclass_classification``, ``regression``.
The model's own metrics are model.py's; this module holds the standard set for each type, the way
the model quality monitor computes them on live traffic (captured answers joined with ground
truth) with sklearn's definitions, so a live metric is comparable with the registered one of the
same name. The default set of each type is exactly what model.py ships for it.

A captured answer is one object per row as ``model.response`` writes it: ``label`` and
``probability`` (binary), ``label`` and ``probabilities`` (multiclass), ``value`` (regression).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT = "binary_classification"


@dataclass(frozen=True)
class ProblemType:
    """One of SageMaker's problem types and how its live quality is measured."""

    name: str
    sagemaker_name: str  # ModelQualityJobInput ProblemType
    metrics: Mapping[str, bool]  # metric -> higher is better
    classification: bool

    @property
    def report_key(self) -> str:
        """The section of SageMaker's model-quality JSON (evaluation.json, statistics.json)."""
        return f"{self.name}_metrics"

    @property
    def constraints_key(self) -> str:
        """The section of Model Monitor's model-quality constraints.json."""
        return f"{self.name}_constraints"

    def higher_is_better(self, metric: str) -> bool:
        """Direction of ``metric`` (names outside the standard set count as higher-is-better)."""
        return self.metrics.get(metric, True)

    def parse_truth(self, value: Any) -> float:
        """One ground-truth value: a class (an integer) or, for a regression, any number."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        if self.classification and not number.is_integer():
            raise ValueError(f"{value!r} is not a class label (an integer)")
        return number

    def parse_prediction(self, answer: Any) -> dict[str, Any]:
        """The fields of one answered row the metrics need; ValueError naming what is missing."""
        if not isinstance(answer, dict):
            raise ValueError(f"prediction {answer!r} is not an object")
        fields = {
            "binary_classification": ("label", "probability"),
            "multiclass_classification": ("label",),
            "regression": ("value",),
        }[self.name]
        missing = [name for name in fields if not _is_number(answer.get(name))]
        if missing:
            raise ValueError(f"prediction {answer!r} has no number {', '.join(missing)}")
        return {name: float(answer[name]) for name in fields}


PROBLEM_TYPES: dict[str, ProblemType] = {
    "binary_classification": ProblemType(
        "binary_classification",
        "BinaryClassification",
        dict.fromkeys(("accuracy", "auc", "f1", "precision", "recall"), True),
        classification=True,
    ),
    "multiclass_classification": ProblemType(
        "multiclass_classification",
        "MulticlassClassification",
        dict.fromkeys(("accuracy", "weighted_f1", "weighted_precision", "weighted_recall"), True),
        classification=True,
    ),
    "regression": ProblemType(
        "regression",
        "Regression",
        {"mae": False, "mse": False, "rmse": False, "r2": True},
        classification=False,
    ),
}


def get(name: str | None = None) -> ProblemType:
    """The problem type called ``name`` (default: binary classification)."""
    key = name or DEFAULT
    if key not in PROBLEM_TYPES:
        raise ValueError(f"problem type {key!r} is not one of {', '.join(PROBLEM_TYPES)}")
    return PROBLEM_TYPES[key]


def compute_metrics(
    name: str | None, truth: Sequence[float], predictions: Sequence[Mapping[str, float]]
) -> dict[str, float]:
    """The standard metrics of problem type ``name`` (sklearn's definitions, zero_division=0).

    ``predictions`` are :meth:`ProblemType.parse_prediction` results, one per truth value. A
    metric undefined on this data (AUC with a single class, r2 of one row) is NaN.
    """
    import numpy as np
    from sklearn import metrics as m

    kind = get(name)
    y = np.asarray(truth, dtype=float)
    if kind.name == "regression":
        values = np.asarray([p["value"] for p in predictions], dtype=float)
        mse = float(m.mean_squared_error(y, values))
        return {
            "mae": float(m.mean_absolute_error(y, values)),
            "mse": mse,
            "rmse": math.sqrt(mse),
            "r2": float(m.r2_score(y, values)) if len(y) > 1 else math.nan,
        }
    labels = np.asarray([p["label"] for p in predictions], dtype=int)
    y = y.astype(int)
    if kind.name == "multiclass_classification":
        weighted: dict[str, Any] = {"average": "weighted", "zero_division": 0}
        return {
            "accuracy": float(m.accuracy_score(y, labels)),
            "weighted_f1": float(m.f1_score(y, labels, **weighted)),
            "weighted_precision": float(m.precision_score(y, labels, **weighted)),
            "weighted_recall": float(m.recall_score(y, labels, **weighted)),
        }
    scores = np.asarray([p["probability"] for p in predictions], dtype=float)
    single_class = len(set(y.tolist())) < 2
    return {
        "accuracy": float(m.accuracy_score(y, labels)),
        "auc": math.nan if single_class else float(m.roc_auc_score(y, scores)),
        "f1": float(m.f1_score(y, labels, zero_division=0)),
        "precision": float(m.precision_score(y, labels, zero_division=0)),
        "recall": float(m.recall_score(y, labels, zero_division=0)),
    }


def worsening(name: str | None, metric: str, registered: float, live: float) -> float:
    """How much worse ``live`` is than ``registered`` (negative: better), by the direction."""
    if get(name).higher_is_better(metric):
        return registered - live
    return live - registered


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
