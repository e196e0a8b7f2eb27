"""Evaluate step: score the trained model on the held-out test split.

Runs as a SageMaker Processing job (``python -m ci_scripts.runtime evaluate``). Inputs:
``processing/model/`` holding ``model.tar.gz`` as the training job produced it (or, for the local
backend's convenience, the already-extracted ``model.joblib`` + ``metadata.json``), and
``processing/test/*.csv``. Output: ``processing/evaluation/evaluation.json`` in SageMaker's
model-quality format, which the pipeline's quality gate (PropertyFile) and the registry's
ModelMetrics both read.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from . import model_artifacts, paths
from .features import read_labelled_dir, to_arrays
from .metrics import model_quality_report, scores_of

log = logging.getLogger(__name__)


def run(model_location: Path, test_dir: Path, output_file: Path) -> dict[str, float]:
    """Write the model-quality report for ``model_location`` on ``test_dir``; return metrics."""
    model = model_artifacts.load(model_location)
    rows = read_labelled_dir(test_dir, model.features)
    features, truth = to_arrays(rows)
    scores = scores_of(truth, model.predict(features), str(test_dir))
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(
        json.dumps(model_quality_report(scores), indent=2) + "\n", encoding="utf-8"
    )
    for name, value in scores.items():
        print(f"test:{name}={value:.6f}", flush=True)
    log.info("evaluated %d rows from %s; wrote %s", len(rows), test_dir, output_file)
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``evaluate``; inputs and outputs come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} evaluate",
        description="Score the model on the test split; write evaluation.json.",
    )
    parser.parse_args(argv)
    run(paths.processing_model_dir(), paths.processing_test_dir(), paths.evaluation_file())
    return 0
