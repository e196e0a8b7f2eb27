"""The model's metrics, computed one way for train (validation) and evaluate (test).

model.py says what they are (``metrics``, ``METRICS``); this module checks the data can have
them and writes them in SageMaker's model-quality JSON, under ``model.REPORT_KEY``
(``binary_classification_metrics``, ``multiclass_classification_metrics`` or
``regression_metrics``), which the pipeline's gate and the registry's ModelMetrics read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import model
from .errors import StepError

if TYPE_CHECKING:
    import numpy as np


def scores_of(
    truth: np.ndarray, predicted: Mapping[str, np.ndarray], source: str
) -> dict[str, float]:
    """``model.metrics`` of ``predicted`` against ``truth``, every name of ``model.METRICS``.

    ``source`` names the data in the error raised when a classifier's truth holds a single
    class (AUC and the like are undefined then).
    """
    if model.CLASSES is not None and len(set(truth.tolist())) < 2:
        raise StepError(f"{source}: the target has a single class; metrics need at least two")
    scores = model.metrics(truth, predicted)
    missing = [name for name in model.METRICS if name not in scores]
    if missing:
        raise StepError(f"model.metrics returned no {', '.join(missing)} (model.METRICS names it)")
    return {name: scores[name] for name in model.METRICS}


def model_quality_report(values: Mapping[str, float]) -> dict[str, object]:
    """``values`` in SageMaker's model-quality JSON (what ModelMetrics and the registry read)."""
    return {
        model.REPORT_KEY: {
            name: {"value": values[name], "standard_deviation": "NaN"} for name in model.METRICS
        }
    }
