"""What each of SageMaker's problem types means: its answers, metrics, directions and parsers.

The one place the platform keeps problem-type logic. A model repo declares its problem type
(``PROBLEM_TYPE`` in src/<package>/model.py: ``binary_classification``,
``multiclass_classification`` or ``regression``, as SageMaker names them in its model-quality
reports) and its labels (src/<package>/schema.py: ``CLASSES``; model.py may tune
``POSITIVE_CLASS``, ``PROBABILITY_THRESHOLD`` or a regression's ``VALUE_RANGE``). Everything that
follows from those is here, read by both sides of the platform:

- the container (ci_scripts/runtime): how an estimator's output becomes the JSON answer
  ``/invocations`` returns (``predict``, ``response``), the JSON Schema of that answer, the one
  value per answer prediction drift compares, how the monitor reads an answer back from a capture
  and the ground truth joined with it, and the standard metrics (sklearn's definitions) that
  evaluate and live model quality both compute, so a live metric means what the registered one
  means;
- the CLI (smoke test, batch checks, shadow tests, ground truth, status): the answer schema, the
  metrics' directions, the ground-truth parser.

Module level imports the standard library only (the CLI imports this module); numpy and sklearn
load inside the functions that need them.

A captured answer is one object per row: ``label`` and ``probability`` (binary), ``label`` and
``probabilities`` (multiclass), ``value`` (regression).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

DEFAULT = "binary_classification"


@dataclass(frozen=True)
class Labels:
    """What a model declares about its target, which its answers follow.

    ``classes``: the target's values (None for a regression); ``positive_class``: the binary
    class whose probability is reported and scored; ``probability_threshold``: the probability of
    it at or above which the label is the positive class; ``value_range``: what a sane regression
    prediction lies within (the smoke test checks live answers against it).
    """

    classes: tuple[Any, ...] | None = (0, 1)
    positive_class: Any = 1
    probability_threshold: float = 0.5
    value_range: tuple[float, float] = (-1e12, 1e12)


@dataclass(frozen=True)
class ProblemType:
    """One of SageMaker's problem types and how the platform reads and scores its answers."""

    name: str
    sagemaker_name: str  # ModelQualityJobInput ProblemType
    metrics: Mapping[str, bool]  # the standard metrics -> higher is better
    classification: bool
    answer_fields: tuple[str, ...]  # the fields of an answer the metrics need
    drift_kind: str  # "numerical" or "categorical": the one value prediction drift compares

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

    # -- answers -------------------------------------------------------------------------------
    def prediction_schema(self, labels: Labels) -> dict[str, Any]:
        """The JSON Schema of one answer (the smoke test checks live answers against it)."""
        if self.name == "binary_classification":
            return {
                "type": "object",
                "required": ["label", "probability"],
                "properties": {
                    "label": {"enum": list(labels.classes or ())},
                    "probability": {"type": "number", "minimum": 0, "maximum": 1},
                },
            }
        if self.name == "multiclass_classification":
            count = len(labels.classes or ())
            return {
                "type": "object",
                "required": ["label", "probabilities"],
                "properties": {
                    "label": {"enum": list(labels.classes or ())},
                    "probabilities": {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": count,
                        "maxItems": count,
                    },
                },
            }
        low, high = labels.value_range
        return {
            "type": "object",
            "required": ["value"],
            "properties": {"value": {"type": "number", "minimum": low, "maximum": high}},
        }

    def predict(self, estimator: Any, features: Any, labels: Labels) -> dict[str, np.ndarray]:
        """The estimator's output on ``features`` as per-row arrays named like the answer."""
        import numpy as np

        if self.name == "regression":
            return {"value": np.asarray(estimator.predict(features), dtype=float)}
        probabilities = estimator.predict_proba(features)
        known = list(estimator.classes_)
        classes = list(labels.classes or known)
        if self.name == "binary_classification":
            negative = next(c for c in classes if c != labels.positive_class)
            probability = probabilities[:, known.index(labels.positive_class)]
            label = np.where(
                probability >= labels.probability_threshold, labels.positive_class, negative
            )
            return {"label": label, "probability": probability}
        ordered = probabilities[:, [known.index(c) for c in classes]]
        return {"label": np.asarray(classes)[ordered.argmax(axis=1)], "probabilities": ordered}

    def response(self, predicted: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """One JSON object per row, as :meth:`prediction_schema` describes."""
        if self.name == "binary_classification":
            return [
                {"label": _plain(label), "probability": float(probability)}
                for label, probability in zip(
                    predicted["label"], predicted["probability"], strict=True
                )
            ]
        if self.name == "multiclass_classification":
            return [
                {"label": _plain(label), "probabilities": [float(p) for p in row]}
                for label, row in zip(predicted["label"], predicted["probabilities"], strict=True)
            ]
        return [{"value": float(value)} for value in predicted["value"]]

    def drift_value(self, answer: Mapping[str, Any]) -> Any:
        """The one value per answer prediction drift compares: the positive class's probability
        (binary: the score, not the label), the predicted class, or the predicted value."""
        if self.name == "binary_classification":
            return float(answer["probability"])
        if self.name == "multiclass_classification":
            return _plain(answer["label"])
        return float(answer["value"])

    def answer_from_csv(self, value: Any, labels: Labels) -> dict[str, Any]:
        """A CSV answer's one value per row (the probability, the class, the value) as JSON."""
        if self.name == "binary_classification":
            classes = list(labels.classes or (0, 1))
            negative = next(c for c in classes if c != labels.positive_class)
            probability = float(value)
            positive = probability >= labels.probability_threshold
            label = labels.positive_class if positive else negative
            return {"label": label, "probability": probability}
        if self.name == "multiclass_classification":
            return {"label": self._class(value, labels)}
        return {"value": float(value)}

    @staticmethod
    def _class(value: Any, labels: Labels) -> Any:
        from ci_scripts.schema import Invalid, parse_class

        if labels.classes is None:
            return value
        try:
            return parse_class(value, labels.classes)
        except Invalid as exc:
            raise ValueError(str(exc)) from None

    def from_answers(self, answers: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """:meth:`predict`-shaped arrays of answers read back from a capture."""
        import numpy as np

        return {name: np.asarray([a[name] for a in answers]) for name in self.answer_fields}

    def outcome(self, predicted: Mapping[str, np.ndarray]) -> np.ndarray:
        """The predicted target per row (label or value): what bias compares with the truth."""
        return predicted["label" if self.classification else "value"]

    # -- ground truth and answers as the CLI reads them ------------------------------------------
    def parse_truth(self, value: Any) -> float:
        """One ground-truth value: a class (an integer) or, for a regression, any number."""
        from ci_scripts.schema import finite_number

        number = finite_number(value)  # its Invalid is a ValueError
        if self.classification and not number.is_integer():
            raise ValueError(f"{value!r} is not a class label (an integer)")
        return number

    def parse_label(self, value: Any, labels: Labels) -> Any:
        """One ground-truth value as the model's metrics take it: a class of ``labels.classes``
        (strings as written, numbers by value), or for a regression any finite number."""
        if labels.classes is None:
            return self.parse_truth(value)
        return self._class(value, labels)

    def parse_prediction(self, answer: Any) -> dict[str, Any]:
        """The fields of one answered row the metrics need; ValueError naming what is missing.
        A class label may be text (schema.py's class names); every other field is a number."""
        if not isinstance(answer, dict):
            raise ValueError(f"prediction {answer!r} is not an object")
        missing = [
            name
            for name in self.answer_fields
            if not _is_number(answer.get(name))
            and not (name == "label" and isinstance(answer.get(name), str))
        ]
        if missing:
            raise ValueError(f"prediction {answer!r} has no value {', '.join(missing)}")
        return {
            name: answer[name] if isinstance(answer[name], str) else float(answer[name])
            for name in self.answer_fields
        }

    # -- metrics ---------------------------------------------------------------------------------
    def standard_metrics(
        self,
        truth: np.ndarray,
        predicted: Mapping[str, np.ndarray],
        labels: Labels,
        only: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """This type's standard metrics (``only`` those named), sklearn's definitions
        (zero_division=0). A metric undefined on this data (AUC of a single class, r2 of one row)
        is NaN, never an error: a window of live labels may hold one class. ``only`` matters to
        permutation importance, which scores one metric on a hundred shuffled copies: sklearn's
        argument checks make every metric cost milliseconds."""
        from sklearn import metrics as m

        if self.name == "regression":
            values = predicted["value"]
            mse = lambda: float(m.mean_squared_error(truth, values))  # noqa: E731
            formulas: dict[str, Any] = {
                "mae": lambda: float(m.mean_absolute_error(truth, values)),
                "mse": mse,
                "rmse": lambda: math.sqrt(mse()),
                "r2": lambda: float(m.r2_score(truth, values)) if len(truth) > 1 else math.nan,
            }
        elif self.name == "multiclass_classification":
            found = predicted["label"]
            weighted: dict[str, Any] = {"average": "weighted", "zero_division": 0}
            formulas = {
                "accuracy": lambda: float(m.accuracy_score(truth, found)),
                "weighted_f1": lambda: float(m.f1_score(truth, found, **weighted)),
                "weighted_precision": lambda: float(m.precision_score(truth, found, **weighted)),
                "weighted_recall": lambda: float(m.recall_score(truth, found, **weighted)),
            }
        else:
            found = predicted["label"]
            positive: dict[str, Any] = {"pos_label": labels.positive_class, "zero_division": 0}
            is_positive = truth == labels.positive_class
            formulas = {
                "accuracy": lambda: float(m.accuracy_score(truth, found)),
                "auc": lambda: (
                    math.nan
                    if len(set(truth.tolist())) < 2
                    else float(m.roc_auc_score(is_positive, predicted["probability"]))
                ),
                "f1": lambda: float(m.f1_score(truth, found, **positive)),
                "precision": lambda: float(m.precision_score(truth, found, **positive)),
                "recall": lambda: float(m.recall_score(truth, found, **positive)),
            }
        names = list(formulas) if only is None else [n for n in formulas if n in only]
        return {name: formulas[name]() for name in names}


PROBLEM_TYPES: dict[str, ProblemType] = {
    "binary_classification": ProblemType(
        "binary_classification",
        "BinaryClassification",
        dict.fromkeys(("accuracy", "auc", "f1", "precision", "recall"), True),
        classification=True,
        answer_fields=("label", "probability"),
        drift_kind="numerical",
    ),
    "multiclass_classification": ProblemType(
        "multiclass_classification",
        "MulticlassClassification",
        dict.fromkeys(("accuracy", "weighted_f1", "weighted_precision", "weighted_recall"), True),
        classification=True,
        answer_fields=("label",),
        drift_kind="categorical",
    ),
    "regression": ProblemType(
        "regression",
        "Regression",
        {"mae": False, "mse": False, "rmse": False, "r2": True},
        classification=False,
        answer_fields=("value",),
        drift_kind="numerical",
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


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON writes (a class may be an int or a string)."""
    return value.item() if hasattr(value, "item") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
