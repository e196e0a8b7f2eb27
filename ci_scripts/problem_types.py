"""What each of SageMaker's problem types means for monitoring: metrics, directions, parsers.

The template renders a model of one of three problem types (the ``problem_type`` prompt, the
generated ``src/<package>/model.py``'s ``PROBLEM_TYPE``), named as SageMaker names them in its
model-quality reports: ``binary_classification``, ``multiclass_classification``, ``regression``.
The model's own metrics are model.py's; this module holds the standard set for each type (names
and directions), which the model quality monitor computes on live traffic (captured answers
joined with ground truth) with sklearn's definitions, so a live metric is comparable with the
registered one of the same name. It imports no sklearn: the CLI stays light. The default set of
each type is exactly what model.py ships for it.

A captured answer is one object per row as ``model.response`` writes it: ``label`` and
``probability`` (binary), ``label`` and ``probabilities`` (multiclass), ``value`` (regression).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def worsening(name: str | None, metric: str, registered: float, live: float) -> float:
    """How much worse ``live`` is than ``registered`` (negative: better), by the direction."""
    if get(name).higher_is_better(metric):
        return registered - live
    return live - registered


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
