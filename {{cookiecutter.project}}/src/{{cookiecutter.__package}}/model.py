"""The model: the one file a team edits to bring its own estimator of this problem type.

What lives here, and who reads it:

- ``build_estimator`` and ``HYPERPARAMETERS`` (with their defaults): train fits it; the pipeline
  (pipelines/settings.py) passes these defaults unless pyproject overrides them.
- ``predict`` and ``response``: how the fitted estimator's output becomes what ``/invocations``
  answers, one JSON object per row, and ``PREDICTION_SCHEMA``, the JSON Schema every such object
  satisfies (the smoke test checks live answers against it).
- ``metrics``, ``METRICS``, ``PRIMARY_METRIC``, ``HIGHER_IS_BETTER``, ``THRESHOLD`` and
  ``MAX_METRIC_DROP``: what evaluate writes to evaluation.json (SageMaker's model-quality layout,
  under ``REPORT_KEY``), what the quality gate compares (``>=`` or ``<=`` THRESHOLD), which metric
  status and the proposal PRs show first, and which names ``monitoring.quality.max_metric_drop``
  in deploy/*.json accepts; ``higher_is_better`` (by ``LOWER_IS_BETTER``), the direction of
  every metric, which the monitor's live drops follow.
- ``ANSWER_FIELDS``, ``drift_value``, ``DRIFT_KIND``, ``answer_from_csv``, ``from_answers`` and
  ``parse_truth``: how the monitor reads a captured answer and its ground truth: the one value
  per row prediction drift compares (the baseline step describes the same value), and the arrays
  ``metrics`` gets on live traffic, so live and registered metrics are computed by one function.

Module level imports the standard library only: ci_scripts imports this file to read the
declarations, and must stay fast. Swapping the estimator for another of the same problem type is
a change to this file alone; a new dataset also changes features.py and data/dataset.csv.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# SageMaker's name for the kind of model (BinaryClassification, MulticlassClassification,
# Regression in its model-quality APIs); ci_scripts' monitor chooses its metrics by it.
PROBLEM_TYPE = "{{ cookiecutter.problem_type }}"
REPORT_KEY = f"{PROBLEM_TYPE}_metrics"  # evaluation.json's section, as SageMaker names it
{%- if cookiecutter.problem_type == "binary_classification" %}
CLASSES: tuple[int, ...] | None = (0, 1)  # the target's values; None for a regression
POSITIVE_CLASS = 1  # the class whose probability is reported and scored (AUC, F1, ...)
PROBABILITY_THRESHOLD = 0.5  # probability of POSITIVE_CLASS at or above which the label is 1
METRICS = ("accuracy", "auc", "f1", "precision", "recall")
PRIMARY_METRIC = "auc"
HIGHER_IS_BETTER = True
THRESHOLD = 0.9  # the gate: register only when PRIMARY_METRIC >= THRESHOLD on the test split
MAX_METRIC_DROP = dict.fromkeys(METRICS, 0.05)  # default live drop monitoring tolerates
{%- elif cookiecutter.problem_type == "multiclass_classification" %}
CLASSES: tuple[int, ...] | None = (0, 1, 2)  # the target's values; None for a regression
METRICS = ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall")
PRIMARY_METRIC = "weighted_f1"
HIGHER_IS_BETTER = True
THRESHOLD = 0.85  # the gate: register only when PRIMARY_METRIC >= THRESHOLD on the test split
MAX_METRIC_DROP = dict.fromkeys(METRICS, 0.05)  # default live drop monitoring tolerates
{%- else %}
CLASSES: tuple[int, ...] | None = None  # a regression: the target is any finite number
VALUE_RANGE = (0.0, 1000.0)  # what a sane prediction of the target lies within
METRICS = ("mae", "mse", "rmse", "r2")
PRIMARY_METRIC = "rmse"
HIGHER_IS_BETTER = False
THRESHOLD = 70.0  # the gate: register only when PRIMARY_METRIC <= THRESHOLD on the test split
# Default worsening live monitoring tolerates, in the metric's own units.
MAX_METRIC_DROP = {"mae": 10.0, "mse": 1500.0, "rmse": 10.0, "r2": 0.1}
{%- endif %}


@dataclass(frozen=True)
class Hyperparameter:
    """How to read one hyperparameter from its SageMaker string form."""

    parse: Callable[[str], Any]
    default: str
    expected: str
    other: str  # another valid value: the tests check it reaches the estimator


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value

{% if cookiecutter.problem_type != "regression" %}
def _class_weight(text: str) -> str:
    if text not in ("none", "balanced"):
        raise ValueError
    return text


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "C": Hyperparameter(
        _positive_float, "1.0", "a number > 0 (inverse regularisation strength)", "0.05"
    ),
    "max_iter": Hyperparameter(_positive_int, "1000", "an integer >= 1 (solver iterations)", "50"),
    "class_weight": Hyperparameter(_class_weight, "none", "'none' or 'balanced'", "balanced"),
}


def build_estimator(hyperparameters: Mapping[str, Any]) -> Any:
    """The sklearn Pipeline this model is: scaling, then logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    class_weight = hyperparameters["class_weight"]
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "classify",
                LogisticRegression(
                    C=hyperparameters["C"],
                    max_iter=hyperparameters["max_iter"],
                    class_weight=None if class_weight == "none" else class_weight,
                ),
            ),
        ]
    )
{% else %}
def _unit_interval(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError
    return value


HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "n_estimators": Hyperparameter(_positive_int, "200", "an integer >= 1 (boosting stages)", "20"),
    "learning_rate": Hyperparameter(_positive_float, "0.05", "a number > 0 (shrinkage)", "0.2"),
    "max_depth": Hyperparameter(_positive_int, "2", "an integer >= 1 (depth of each tree)", "3"),
    "subsample": Hyperparameter(
        _unit_interval, "0.8", "a number in (0, 1] (rows per stage)", "0.5"
    ),
}


def build_estimator(hyperparameters: Mapping[str, Any]) -> Any:
    """Gradient-boosted trees (sklearn's GradientBoostingRegressor), seeded for repeatability."""
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(
        n_estimators=hyperparameters["n_estimators"],
        learning_rate=hyperparameters["learning_rate"],
        max_depth=hyperparameters["max_depth"],
        subsample=hyperparameters["subsample"],
        random_state=0,
    )
{% endif %}
{%- if cookiecutter.problem_type == "binary_classification" %}

# One prediction as /invocations answers it: the label and the probability of POSITIVE_CLASS.
PREDICTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["label", "probability"],
    "properties": {
        "label": {"enum": list(CLASSES)},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def predict(estimator: Any, features: np.ndarray) -> dict[str, np.ndarray]:
    """``label`` (int) and ``probability`` (of POSITIVE_CLASS) per row of ``features``."""
    column = list(estimator.classes_).index(POSITIVE_CLASS)
    probability = estimator.predict_proba(features)[:, column]
    return {"label": (probability >= PROBABILITY_THRESHOLD).astype(int), "probability": probability}


# What the monitor reads of an answer: the fields the metrics need (``from_answers``), and the one
# value per row whose distribution prediction drift compares (baseline and live alike).
ANSWER_FIELDS = ("label", "probability")
DRIFT_KIND = "numerical"


def drift_value(answer: Mapping[str, Any]) -> float:
    """The probability of POSITIVE_CLASS: prediction drift watches the score, not the label."""
    return float(answer["probability"])


def answer_from_csv(value: float) -> dict[str, Any]:
    """A CSV answer's one number per row (the probability) as a JSON answer."""
    return {"label": int(value >= PROBABILITY_THRESHOLD), "probability": float(value)}


def response(predicted: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One JSON object per row, as PREDICTION_SCHEMA describes."""
    return [
        {"label": int(label), "probability": float(probability)}
        for label, probability in zip(predicted["label"], predicted["probability"], strict=True)
    ]


def metrics(truth: np.ndarray, predicted: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Accuracy, ROC AUC, F1, precision and recall (POSITIVE_CLASS positive, zero_division=0;
    AUC is NaN when ``truth`` holds a single class, as a window of live labels may)."""
    from sklearn import metrics as m

    labels, scores = predicted["label"], predicted["probability"]
    single_class = len(set(truth.tolist())) < 2  # live labels may hold one class: AUC undefined
    return {
        "accuracy": float(m.accuracy_score(truth, labels)),
        "auc": math.nan if single_class else float(m.roc_auc_score(truth, scores)),
        "f1": float(m.f1_score(truth, labels, zero_division=0)),
        "precision": float(m.precision_score(truth, labels, zero_division=0)),
        "recall": float(m.recall_score(truth, labels, zero_division=0)),
    }
{%- elif cookiecutter.problem_type == "multiclass_classification" %}

# One prediction as /invocations answers it: the label and the probability of every class.
PREDICTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["label", "probabilities"],
    "properties": {
        "label": {"enum": list(CLASSES)},
        "probabilities": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": len(CLASSES),
            "maxItems": len(CLASSES),
        },
    },
}


def predict(estimator: Any, features: np.ndarray) -> dict[str, np.ndarray]:
    """``label`` (the likeliest class) and ``probabilities`` (one column per CLASSES entry)."""
    import numpy as np

    probabilities = estimator.predict_proba(features)
    order = [list(estimator.classes_).index(c) for c in CLASSES]
    probabilities = probabilities[:, order]
    labels = np.asarray(CLASSES)[probabilities.argmax(axis=1)]
    return {"label": labels, "probabilities": probabilities}


# What the monitor reads of an answer: the fields the metrics need (``from_answers``), and the one
# value per row whose distribution prediction drift compares (baseline and live alike).
ANSWER_FIELDS = ("label",)
DRIFT_KIND = "categorical"


def drift_value(answer: Mapping[str, Any]) -> int:
    """The predicted class: prediction drift compares the classes' shares (a categorical)."""
    return int(answer["label"])


def answer_from_csv(value: float) -> dict[str, Any]:
    """A CSV answer's one number per row (the class) as a JSON answer."""
    return {"label": int(value)}


def response(predicted: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One JSON object per row, as PREDICTION_SCHEMA describes."""
    return [
        {"label": int(label), "probabilities": [float(p) for p in row]}
        for label, row in zip(predicted["label"], predicted["probabilities"], strict=True)
    ]


def metrics(truth: np.ndarray, predicted: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Accuracy and the support-weighted F1, precision and recall (zero_division=0)."""
    from sklearn import metrics as m

    labels = predicted["label"]
    weighted = {"average": "weighted", "zero_division": 0}
    return {
        "accuracy": float(m.accuracy_score(truth, labels)),
        "weighted_f1": float(m.f1_score(truth, labels, **weighted)),
        "weighted_precision": float(m.precision_score(truth, labels, **weighted)),
        "weighted_recall": float(m.recall_score(truth, labels, **weighted)),
    }
{%- else %}

# One prediction as /invocations answers it: the predicted value of the target.
PREDICTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["value"],
    "properties": {
        "value": {"type": "number", "minimum": VALUE_RANGE[0], "maximum": VALUE_RANGE[1]}
    },
}


def predict(estimator: Any, features: np.ndarray) -> dict[str, np.ndarray]:
    """``value``: the predicted target of each row of ``features``."""
    return {"value": estimator.predict(features)}


# What the monitor reads of an answer: the fields the metrics need (``from_answers``), and the one
# value per row whose distribution prediction drift compares (baseline and live alike).
ANSWER_FIELDS = ("value",)
DRIFT_KIND = "numerical"


def drift_value(answer: Mapping[str, Any]) -> float:
    """The predicted value: prediction drift compares its distribution."""
    return float(answer["value"])


def answer_from_csv(value: float) -> dict[str, Any]:
    """A CSV answer's one number per row (the value) as a JSON answer."""
    return {"value": float(value)}


def response(predicted: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One JSON object per row, as PREDICTION_SCHEMA describes."""
    return [{"value": float(value)} for value in predicted["value"]]


def metrics(truth: np.ndarray, predicted: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean absolute and (root) mean squared error, and the coefficient of determination."""
    from sklearn import metrics as m

    values = predicted["value"]
    mse = float(m.mean_squared_error(truth, values))
    return {
        "mae": float(m.mean_absolute_error(truth, values)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "r2": float(m.r2_score(truth, values)),
    }
{%- endif %}


# Metrics where a smaller value is the better model (errors); every other is higher-is-better.
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse"})


def higher_is_better(metric: str) -> bool:
    """The direction of ``metric``: what a live drop of it means (live_quality.drops)."""
    return metric not in LOWER_IS_BETTER


def from_answers(answers: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """``predict``-shaped arrays (ANSWER_FIELDS) of answers read back from a capture."""
    import numpy as np

    return {name: np.asarray([answer[name] for answer in answers]) for name in ANSWER_FIELDS}


def parse_truth(value: str) -> float:
    """One ground-truth value: a class of CLASSES, or for a regression any finite number."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"ground truth {value!r} is not a finite number")
    if CLASSES is not None:
        if not number.is_integer() or int(number) not in CLASSES:
            raise ValueError(f"ground truth {value!r} is not one of the classes {CLASSES}")
        return int(number)
    return number


def outcome(predicted: Mapping[str, np.ndarray]) -> np.ndarray:
    """The predicted target per row (label or value): what bias compares with the true one."""
    return predicted["value" if CLASSES is None else "label"]


def better(value: float, than: float) -> bool:
    """Whether ``value`` of PRIMARY_METRIC is at least as good as ``than``."""
    return value >= than if HIGHER_IS_BETTER else value <= than
