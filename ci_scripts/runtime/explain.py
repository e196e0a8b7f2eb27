"""Explain step: which features the model relies on, by permutation importance on the test split.

Runs as a SageMaker Processing job (``python -m ci_scripts.runtime explain``) on the
same inputs as ``evaluate`` and writes ``processing/explainability/analysis.json`` in SageMaker
Clarify's layout (``explanations`` -> method -> label -> global values per feature); see bias.py
for why this is not a ClarifyCheckStep.

The method is permutation importance, not SHAP, and the report says so
(``explanations.permutation_importance``): a feature's importance is the mean worsening of the
model's primary metric (``model.PRIMARY_METRIC`` on the test split) when that feature's column is
shuffled (``REPEATS`` shuffles, fixed seed), so it works for any model ``predict`` serves, costs
features x ``REPEATS`` predictions of the test split (about a second), and is reproducible run
to run. Near 0: the model does not need the feature.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import model, model_artifacts, paths
from .errors import StepError
from .features import read_labelled_dir, to_arrays

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

REPEATS = 5
SEED = 20240601
METHOD = "permutation_importance"
LABEL = "label0"  # Clarify's key for the first (here: the only) explained output


def permutation_importance(
    predict: Callable[[pd.DataFrame], Mapping[str, Any]],
    score: Callable[[Mapping[str, Any]], float],
    features: Any,
) -> list[float]:
    """Mean drop of ``score`` when each column is shuffled ``REPEATS`` times (fixed seed).

    ``features`` is the model's DataFrame (a column of any kind is shuffled as a whole, so a
    categorical feature's importance is measured as a numeric one's), or a 2-D array;
    ``predict`` gives per-row arrays (``model.predict``'s) and ``score`` rates them. Every
    shuffled copy is predicted in one call: the model's preprocessing costs per call, not per
    row, so one call over all copies is what keeps the step quick."""
    import numpy as np
    import pandas as pd

    table = features if isinstance(features, pd.DataFrame) else pd.DataFrame(features)
    rng = np.random.default_rng(SEED)
    copies = [table]
    for column in table.columns:
        for _ in range(REPEATS):
            shuffled = table.copy()
            shuffled[column] = rng.permutation(table[column].to_numpy())
            copies.append(shuffled)
    predicted = {k: np.asarray(v) for k, v in predict(pd.concat(copies, ignore_index=True)).items()}
    rows = len(table)

    def scored(index: int) -> float:
        return score({k: v[index * rows : (index + 1) * rows] for k, v in predicted.items()})

    reference = scored(0)
    return [
        float(np.mean([reference - scored(1 + c * REPEATS + r) for r in range(REPEATS)]))
        for c in range(len(table.columns))
    ]


def report(names: Sequence[str], importances: Sequence[float], rows: int) -> dict[str, Any]:
    """Clarify's analysis.json layout, features ordered by importance (largest first)."""
    ranked = sorted(zip(names, importances, strict=True), key=lambda item: -item[1])
    return {
        "version": "1.0",
        "explanations": {
            METHOD: {
                LABEL: {
                    "global_importance": {name: value for name, value in ranked},
                    "metric": f"{model.PRIMARY_METRIC} worsening",
                    "repeats": REPEATS,
                    "rows": rows,
                }
            }
        },
    }


def run(model_location: Path, test_dir: Path, output_file: Path) -> dict[str, Any]:
    """Write the explainability report for ``model_location`` on ``test_dir``; return it."""
    trained = model_artifacts.load(model_location)
    features, truth = to_arrays(read_labelled_dir(test_dir, trained.features))
    if model.CLASSES is not None and len(set(truth.tolist())) < 2:
        raise StepError(f"{test_dir}: the target has a single class; the metrics are undefined")
    sign = 1.0 if model.HIGHER_IS_BETTER else -1.0

    def score(predicted: Mapping[str, Any]) -> float:  # higher is better, whatever the metric
        return sign * model.primary_metric(truth, predicted)

    importances = permutation_importance(trained.predict, score, features)
    document = report(trained.features, importances, len(truth))
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log.info("permutation importance on %d rows; wrote %s", len(truth), output_file)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``explain``; inputs and outputs come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} explain",
        description="Permutation importance on the test split; write analysis.json.",
    )
    parser.parse_args(argv)
    run(
        paths.processing_model_dir(),
        paths.processing_test_dir(),
        paths.explainability_report_file(),
    )
    return 0
