"""Bias step: how differently the labels and the model treat one group of the test split.

Runs as a SageMaker Processing job (ContainerEntrypoint ``python -m <package> bias``) on the same
inputs as ``evaluate`` (``processing/model/``, ``processing/test/*.csv``) and writes
``processing/bias/analysis.json`` in SageMaker Clarify's layout (``pre_training_bias_metrics`` /
``post_training_bias_metrics`` -> ``facets`` -> ``metrics``), so the registry's Bias report reads
like one a Clarify job wrote.

Why not a ClarifyCheckStep: it uploads its analysis config to S3 while the pipeline is being
*built* (the build must stay offline) and needs a shadow endpoint of the model, which the local
backend cannot give. The two metrics below are Clarify's, computed the way Clarify defines them.

The facet (the group compared with the rest) is ``FACET``: rows whose ``mean_radius`` is above the
test split's median. Positive outcome: label 1 (benign). With ``q`` = share of positive outcomes:

- DPL (difference in positive proportions in labels) = ``q_a - q_d`` over the true labels;
- DPPL (... in predicted labels) = ``q'_a - q'_d`` over the model's labels;

``a`` is the rest, ``d`` the facet. 0 means parity; DPPL far from DPL means the model widens (or
narrows) the gap already in the data. Both lie in [-1, 1].
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import model_artifacts, paths
from .errors import StepError
from .features import TARGET, read_labelled_dir, to_arrays

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

FACET = "mean_radius"  # bucketed at the test split's median: above it is the facet
POSITIVE_LABEL = 1


def positive_proportion_difference(outcomes: np.ndarray, facet: np.ndarray) -> float:
    """``q_a - q_d``: share of positive outcomes outside the facet minus inside it."""
    inside, outside = outcomes[facet], outcomes[~facet]
    if not len(inside) or not len(outside):
        raise StepError(f"facet {FACET}: one side of the median is empty; bias is undefined")
    return float((outside == POSITIVE_LABEL).mean() - (inside == POSITIVE_LABEL).mean())


def report(truth: np.ndarray, predicted: np.ndarray, facet_values: np.ndarray) -> dict[str, Any]:
    """Clarify's analysis.json for DPL and DPPL of ``facet_values > median``."""
    import numpy as np

    threshold = float(np.median(facet_values))
    facet = facet_values > threshold
    common = {"label": TARGET, "label_value_or_threshold": str(POSITIVE_LABEL)}
    facet_key = {"value_or_threshold": f"({threshold:g}, inf)"}

    def section(name: str, description: str, value: float) -> dict[str, Any]:
        metric = {"name": name, "description": description, "value": value}
        return {**common, "facets": {FACET: [{**facet_key, "metrics": [metric]}]}}

    return {
        "version": "1.0",
        "pre_training_bias_metrics": section(
            "DPL",
            "Difference in Positive Proportions in Labels (DPL)",
            positive_proportion_difference(truth, facet),
        ),
        "post_training_bias_metrics": section(
            "DPPL",
            "Difference in Positive Proportions in Predicted Labels (DPPL)",
            positive_proportion_difference(predicted, facet),
        ),
    }


def run(model_location: Path, test_dir: Path, output_file: Path) -> dict[str, Any]:
    """Write the bias report for ``model_location`` on ``test_dir``; return it."""
    model = model_artifacts.load(model_location)
    if FACET not in model.features:
        raise StepError(f"facet {FACET}: not a feature of the model ({len(model.features)} known)")
    features, truth = to_arrays(read_labelled_dir(test_dir, model.features))
    predicted, _ = model.predict(features)
    document = report(truth, predicted, features[:, model.features.index(FACET)])
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log.info("bias of %s > median on %d rows; wrote %s", FACET, len(truth), output_file)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``bias``; inputs and outputs come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} bias",
        description="DPL and DPPL of the test split; write analysis.json (Clarify's layout).",
    )
    parser.parse_args(argv)
    run(paths.processing_model_dir(), paths.processing_test_dir(), paths.bias_report_file())
    return 0
