"""The team's model as the platform's container code sees it: its declarations, plus what its
problem type means for its answers.

The team writes src/<package>/model.py (the estimator, its hyperparameters, metrics and gate) and
src/<package>/schema.py (target, features, classes). Everything the platform derives from them
(how a prediction becomes the JSON answer, its schema, what the monitor reads back from a capture,
the standard metrics) is ci_scripts.problem_types' logic, bound here to this model's labels, so
the step code reads one module, ``model``, and never restates a problem type's rules.

Imported when a step starts (the team's modules load then): ``$MODEL_PACKAGE`` or pyproject.toml
names the package (ci_scripts.runtime.team).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ci_scripts import problem_types

from . import team

if TYPE_CHECKING:
    import numpy as np

_model = team.module("model")
_schema = team.module("schema")

PROBLEM_TYPE: str = _model.PROBLEM_TYPE
KIND = problem_types.get(PROBLEM_TYPE)
REPORT_KEY = KIND.report_key  # evaluation.json's section, as SageMaker names it
CLASSES: tuple[Any, ...] | None = getattr(_schema, "CLASSES", None)
LABELS = problem_types.Labels(
    classes=CLASSES,
    positive_class=getattr(
        _schema, "POSITIVE_CLASS", getattr(_model, "POSITIVE_CLASS", (CLASSES or (0, 1))[-1])
    ),
    probability_threshold=float(getattr(_model, "PROBABILITY_THRESHOLD", 0.5)),
    value_range=tuple(getattr(_model, "VALUE_RANGE", problem_types.Labels().value_range)),
)

HYPERPARAMETERS = _model.HYPERPARAMETERS
build_estimator = _model.build_estimator
METRICS: tuple[str, ...] = tuple(_model.METRICS)
PRIMARY_METRIC: str = _model.PRIMARY_METRIC
HIGHER_IS_BETTER: bool = bool(
    getattr(_model, "HIGHER_IS_BETTER", KIND.higher_is_better(PRIMARY_METRIC))
)
THRESHOLD: float = float(_model.THRESHOLD)
MAX_METRIC_DROP: dict[str, float] = dict(getattr(_model, "MAX_METRIC_DROP", {}))

PREDICTION_SCHEMA = KIND.prediction_schema(LABELS)
ANSWER_FIELDS = KIND.answer_fields
DRIFT_KIND = KIND.drift_kind


def predict(estimator: Any, features: Any) -> dict[str, np.ndarray]:
    """The fitted estimator's answer arrays for ``features`` (problem_types.ProblemType.predict)."""
    return KIND.predict(estimator, features, LABELS)


def response(predicted: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One JSON object per row, as PREDICTION_SCHEMA describes."""
    return KIND.response(predicted)


def metrics(truth: np.ndarray, predicted: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The team's ``metrics`` when model.py defines one, else the problem type's standard set."""
    own = getattr(_model, "metrics", None)
    return (
        own(truth, predicted) if callable(own) else KIND.standard_metrics(truth, predicted, LABELS)
    )


def primary_metric(truth: np.ndarray, predicted: Mapping[str, np.ndarray]) -> float:
    """PRIMARY_METRIC alone (the team's ``metrics`` when model.py defines one): what permutation
    importance scores on every shuffled copy."""
    own = getattr(_model, "metrics", None)
    if callable(own):
        return float(own(truth, predicted)[PRIMARY_METRIC])
    return KIND.standard_metrics(truth, predicted, LABELS, only=(PRIMARY_METRIC,))[PRIMARY_METRIC]


def higher_is_better(metric: str) -> bool:
    """The direction of ``metric``: what a live drop of it means."""
    return KIND.higher_is_better(metric)


def drift_value(answer: Mapping[str, Any]) -> Any:
    """The one value per answer prediction drift compares."""
    return KIND.drift_value(answer)


def answer_from_csv(value: float) -> dict[str, Any]:
    """A CSV answer's one number per row as a JSON answer."""
    return KIND.answer_from_csv(value, LABELS)


def from_answers(answers: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """``predict``-shaped arrays of answers read back from a capture."""
    return KIND.from_answers(answers)


def parse_truth(value: str) -> Any:
    """One ground-truth value: a class of CLASSES, or for a regression any finite number."""
    return KIND.parse_label(value, LABELS)


def outcome(predicted: Mapping[str, np.ndarray]) -> np.ndarray:
    """The predicted target per row (label or value): what bias compares with the true one."""
    return KIND.outcome(predicted)
