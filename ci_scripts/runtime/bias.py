"""Bias step: how differently the labels and the model treat one group of the test split.

Runs as a SageMaker Processing job (``python -m ci_scripts.runtime bias``) on the same
inputs as ``evaluate`` (``processing/model/``, ``processing/test/*.csv``) and writes
``processing/bias/analysis.json`` in SageMaker Clarify's layout (``pre_training_bias_metrics`` /
``post_training_bias_metrics`` -> ``facets`` -> ``metrics``), so the registry's Bias report reads
like one a Clarify job wrote.

Why not a ClarifyCheckStep: it uploads its analysis config to S3 while the pipeline is being
*built* (the build must stay offline) and needs a shadow endpoint of the model, which the local
backend cannot give. The two metrics below are Clarify's, computed the way Clarify defines them.

What is compared comes from ``[tool.sagemaker-gitops.bias]`` in pyproject.toml, which the
pipeline passes as ``--facet`` and ``--positive-outcome``: the facet is the rows whose ``facet``
feature is above the test split's median; a positive outcome is the label ``positive_outcome``
(a classifier) or a value at or above it (a regression, as Clarify's label threshold). Without a
facet (a team with no sensitive attribute) the step writes a report that says bias is off and
why, and the proposal PR shows that. With ``q`` = share of positive outcomes:

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_scripts.schema import Invalid, parse_class

from . import model, model_artifacts, paths
from .errors import StepError
from .features import KINDS, TARGET, parse_number, read_labelled_dir, to_arrays
from .model import CLASSES

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Facet:
    """The group compared with the rest, and the positive outcome.

    ``group`` None: rows whose ``feature`` is above its median (a numeric feature); otherwise the
    rows whose ``feature`` is ``group`` (a category, or true/false of a boolean) against the rest.
    Rows where the feature is missing belong to neither side.
    """

    feature: str
    positive_outcome: Any  # a class of schema.py's CLASSES, or a regression's least positive value
    group: str | None = None

    def positive(self, outcomes: np.ndarray) -> np.ndarray:
        """Which outcomes count as positive: the label itself, or at or above a threshold."""
        if CLASSES is None:
            return outcomes >= float(self.positive_outcome)
        return outcomes == self.positive_outcome

    def outcome_text(self) -> str:
        """The positive outcome as Clarify's ``label_value_or_threshold`` writes it."""
        value = self.positive_outcome
        return f"{value:g}" if isinstance(value, int | float) else str(value)

    def split(self, column: Any) -> tuple[np.ndarray, np.ndarray, str]:
        """``(inside, present, value_or_threshold)`` of a feature column: who is in the facet,
        whose facet value is known, and how Clarify's report names the facet."""
        import numpy as np
        import pandas as pd

        values = pd.Series(column)
        present = values.notna().to_numpy()
        if self.group is None:
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            if not present.any():
                raise StepError(f"facet {self.feature}: no row has a value")
            threshold = float(np.median(numbers[present]))
            return present & (numbers > threshold), present, f"({threshold:g}, inf)"
        wanted = KINDS[self.feature].parse(self.group) if self.feature in KINDS else self.group
        return present & (values == wanted).to_numpy(), present, str(self.group)


def positive_proportion_difference(
    outcomes: np.ndarray, inside_facet: np.ndarray, facet: Facet
) -> float:
    """``q_a - q_d``: share of positive outcomes outside the facet minus inside it."""
    inside, outside = outcomes[inside_facet], outcomes[~inside_facet]
    if not len(inside) or not len(outside):
        side = "above the median" if facet.group is None else f"{facet.group!r}"
        raise StepError(
            f"facet {facet.feature}: no rows on one side ({side} or the rest); bias is undefined"
        )
    return float(facet.positive(outside).mean() - facet.positive(inside).mean())


def report(
    truth: np.ndarray, predicted: np.ndarray, facet_values: Any, facet: Facet
) -> dict[str, Any]:
    """Clarify's analysis.json for DPL and DPPL of the facet (its group against the rest)."""
    inside, present, key = facet.split(facet_values)
    inside, truth, predicted = inside[present], truth[present], predicted[present]
    common = {"label": TARGET, "label_value_or_threshold": facet.outcome_text()}
    facet_key = {"value_or_threshold": key}

    def section(name: str, description: str, value: float) -> dict[str, Any]:
        metric = {"name": name, "description": description, "value": value}
        return {**common, "facets": {facet.feature: [{**facet_key, "metrics": [metric]}]}}

    return {
        "version": "1.0",
        "pre_training_bias_metrics": section(
            "DPL",
            "Difference in Positive Proportions in Labels (DPL)",
            positive_proportion_difference(truth, inside, facet),
        ),
        "post_training_bias_metrics": section(
            "DPPL",
            "Difference in Positive Proportions in Predicted Labels (DPPL)",
            positive_proportion_difference(predicted, inside, facet),
        ),
    }


def off_report(reason: str) -> dict[str, Any]:
    """The report of a run with bias off: Clarify's layout without metrics, and why."""
    return {"version": "1.0", "disabled": reason}


def run(
    model_location: Path, test_dir: Path, output_file: Path, facet: Facet | None
) -> dict[str, Any]:
    """Write the bias report for ``model_location`` on ``test_dir``; return it."""
    if facet is None:
        document = off_report("no facet: [tool.sagemaker-gitops.bias].facet is not set")
    else:
        trained = model_artifacts.load(model_location)
        if facet.feature not in trained.features:
            raise StepError(
                f"facet {facet.feature}: not a feature of the model ({len(trained.features)} known)"
            )
        features, truth = to_arrays(read_labelled_dir(test_dir, trained.features))
        predicted = model.outcome(trained.predict(features))
        document = report(truth, predicted, features[facet.feature], facet)
        log.info("bias of facet %s on %d rows", facet.feature, len(truth))
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s", output_file)
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``bias [--facet NAME --positive-outcome VALUE]``; paths from ``$OPT_ML_ROOT``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} bias",
        description="DPL and DPPL of the test split; write analysis.json (Clarify's layout).",
    )
    parser.add_argument(
        "--facet",
        default="",
        help="feature whose rows form the facet (empty: bias off)",
    )
    parser.add_argument(
        "--facet-group",
        default="",
        help="the facet's value (a category, true/false); empty: rows above the median",
    )
    parser.add_argument(
        "--positive-outcome",
        default="",
        help="the positive label (a classifier) or the least positive value (a regression)",
    )
    args = parser.parse_args(argv)
    facet = None
    if args.facet:
        if CLASSES is None:
            outcome: Any = parse_number(args.positive_outcome, "--positive-outcome")
        else:
            try:
                outcome = parse_class(args.positive_outcome, CLASSES)
            except Invalid:
                raise StepError(
                    f"--positive-outcome: {args.positive_outcome!r} is not one of the classes "
                    f"{', '.join(str(c) for c in CLASSES)}"
                ) from None
        facet = Facet(args.facet, outcome, args.facet_group or None)
    run(paths.processing_model_dir(), paths.processing_test_dir(), paths.bias_report_file(), facet)
    return 0
