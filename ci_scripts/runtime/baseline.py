"""Baseline step: describe the training features (and the model's answers on them) for the monitor.

Runs as a SageMaker Processing job of the project's image (ContainerEntrypoint
``python -m ci_scripts.runtime baseline``) in the training pipeline, after Train. Inputs:
``processing/baseline_dataset/baseline.csv`` (preprocess's training features, header) and
``processing/model/`` (the trained model). Output ``processing/baseline/``: ``statistics.json``
(per feature: a sample of values, decile edges and completeness, or category counts; the same for
the model's prediction, ``model.drift_value``) and ``constraints.json`` (the default thresholds),
the format ``drift.check`` reads. RegisterModel attaches both to the model package (ModelMetrics
ModelDataQuality and DriftCheckBaselines), which is where the monitor takes them from.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import drift, model, model_artifacts, paths
from .errors import StepError
from .features import csv_files, drift_kinds, normalised

log = logging.getLogger(__name__)

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file, values as text (categorical columns stay text)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StepError(f"{path}: cannot read: {exc}") from None
    if len(rows) < 2:
        raise StepError(f"{path}: expected a header row and at least one data row")
    return [name.strip() for name in rows[0]], rows[1:]


def drift_values(
    model_location: Path, columns: Sequence[str], rows: Sequence[Sequence[str]]
) -> list[Any]:
    """``model.drift_value`` of the model's answer to every baseline row (the prediction
    baseline): the answers go through ``model.response`` as the server's do, so the baseline and
    the monitor's live values are the same quantity."""
    from .features import parse_feature_rows

    trained = model_artifacts.load(model_location)
    order = [columns.index(name) for name in trained.features if name in columns]
    if len(order) != len(trained.features):
        missing = [name for name in trained.features if name not in columns]
        raise StepError(f"baseline dataset lacks the model's feature(s) {', '.join(missing)}")
    table = parse_feature_rows(([row[i] for i in order] for row in rows), trained.features)
    return [model.drift_value(answer) for answer in model.response(trained.predict(table))]


def run(dataset_dir: Path, model_location: Path, output_dir: Path) -> dict[str, Any]:
    """Write statistics.json + constraints.json of ``dataset_dir``'s CSV; return the statistics."""
    columns, rows = read_table(csv_files(dataset_dir)[0])
    values = [[normalised(name, v) for name, v in zip(columns, row, strict=False)] for row in rows]
    try:
        statistics = drift.baseline(
            columns,
            values,
            drift_values(model_location, columns, rows),
            model.DRIFT_KIND,
            drift_kinds(),
        )
    except drift.BaselineError as exc:
        raise StepError(f"{dataset_dir}: {exc}") from None
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, document in (
        (STATISTICS_FILE, statistics),
        (CONSTRAINTS_FILE, drift.constraints(statistics)),
    ):
        (output_dir / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log.info("baseline of %d features on %d rows; wrote %s", len(columns), len(rows), output_dir)
    return statistics


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``baseline``; inputs and outputs come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} baseline",
        description="Describe the training features for the monitor (statistics.json).",
    )
    parser.parse_args(argv)
    run(paths.baseline_dataset_dir(), paths.processing_model_dir(), paths.baseline_dir())
    return 0
