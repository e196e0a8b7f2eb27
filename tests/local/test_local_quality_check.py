"""The local QualityCheck executor with SkipCheck=false: the run's data checked against a
supplied baseline (SuppliedBaselineStatistics/Constraints), as the pipeline's
DataQualityBaseline step runs when SkipDataQualityCheck is set to false.

The step is in the shape the SDK writes (see the template's tests/test_pipeline.py) and runs
through the local runner; its baseline files are ci_scripts.data_quality's (Model Monitor's
format), as a previous run's QualityCheck left them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from local_testkit import BUCKET

from ci_scripts import data_quality as dq
from ci_scripts.backends.local.backend import LocalBackend

COLUMNS = ("target", "mean_radius", "mean_texture", "mean_smoothness")
SUPPLIED = f"s3://{BUCKET}/runs/previous/DataQualityBaseline/results"
DATASET = f"s3://{BUCKET}/runs/current/Preprocess/baseline"


def _write_csv(path: Path, rows: int, seed: int, shift: tuple[float, float, float]) -> None:
    """``rows`` rows of three features (normal, fixed seed), each moved by ``shift`` std devs."""
    rng = np.random.default_rng(seed)
    means, stds = np.array([14.0, 19.0, 0.1]), np.array([3.5, 4.3, 0.014])
    values = rng.normal(means + np.array(shift) * stds, stds, size=(rows, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i, row in enumerate(values):
            writer.writerow([i % 2, *(f"{v:.5f}" for v in row)])


def _supply_baseline(backend: LocalBackend, tmp_path: Path) -> None:
    _write_csv(tmp_path / "previous.csv", rows=400, seed=1, shift=(0, 0, 0))
    stats = dq.statistics(dq.read_csv(tmp_path / "previous.csv", drop=("target",)))
    folder = backend.state.s3_path(SUPPLIED)
    folder.mkdir(parents=True)
    (folder / dq.STATISTICS_FILE).write_text(json.dumps(stats))
    (folder / dq.CONSTRAINTS_FILE).write_text(json.dumps(dq.constraints(stats)))


def _definition() -> dict[str, Any]:
    check = {
        "Name": "DataQualityBaseline",
        "Type": "QualityCheck",
        "Arguments": {
            "ProcessingInputs": [
                {
                    "InputName": "baseline_dataset_input",
                    "S3Input": {
                        "S3Uri": DATASET,
                        "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "quality_check_output",
                        "S3Output": {
                            "S3Uri": {
                                "Std:Join": {
                                    "On": "/",
                                    "Values": [
                                        f"s3://{BUCKET}/runs",
                                        {"Get": "Execution.PipelineExecutionId"},
                                        "DataQualityBaseline",
                                        "results",
                                    ],
                                }
                            },
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
        "CheckType": "DATA_QUALITY",
        "ModelPackageGroupName": "churn-model",
        "SkipCheck": {"Get": "Parameters.SkipDataQualityCheck"},
        "FailOnViolation": True,
        "RegisterNewBaseline": {"Get": "Parameters.RegisterNewDataQualityBaseline"},
        "SuppliedBaselineStatistics": f"{SUPPLIED}/{dq.STATISTICS_FILE}",
        "SuppliedBaselineConstraints": f"{SUPPLIED}/{dq.CONSTRAINTS_FILE}",
    }
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "SkipDataQualityCheck", "Type": "Boolean", "DefaultValue": True},
            {"Name": "RegisterNewDataQualityBaseline", "Type": "Boolean", "DefaultValue": True},
        ],
        "Steps": [check],
    }


CHECK = {"SkipDataQualityCheck": False, "RegisterNewDataQualityBaseline": False}


def _violations(backend: LocalBackend, run_id: str) -> list[dict[str, str]]:
    folder = backend.state.s3_path(f"s3://{BUCKET}/runs/{run_id}/DataQualityBaseline/results")
    return json.loads((folder / dq.VIOLATIONS_FILE).read_text())["violations"]


def test_data_like_the_baseline_passes_with_an_empty_violations_report(
    backend: LocalBackend, tmp_path: Path
) -> None:
    _supply_baseline(backend, tmp_path)
    _write_csv(backend.state.s3_path(DATASET) / "baseline.csv", rows=300, seed=2, shift=(0, 0, 0))

    run = backend.run_definition(_definition(), CHECK)

    assert run.status == "Succeeded", run.failure_reason
    assert _violations(backend, run.id) == []
    (step,) = run.steps
    assert step["status"] == "Succeeded"
    assert step["detail"] == f"0 violation(s) against {SUPPLIED}/{dq.STATISTICS_FILE}"


def test_drifted_data_fails_the_step_naming_the_features(
    backend: LocalBackend, tmp_path: Path
) -> None:
    _supply_baseline(backend, tmp_path)
    # mean_radius and mean_smoothness move by a standard deviation; mean_texture stays
    _write_csv(backend.state.s3_path(DATASET) / "baseline.csv", rows=300, seed=2, shift=(1, 0, 1))

    run = backend.run_definition(_definition(), CHECK)

    assert run.status == "Failed"
    assert (
        "data quality check: 2 violation(s) against "
        f"{SUPPLIED}/{dq.STATISTICS_FILE} in mean_radius, mean_smoothness; "
        "first: mean_radius baseline_drift_check: Baseline drift distance: "
    ) in run.failure_reason
    assert "mean_texture" not in run.failure_reason
    assert [
        (v["feature_name"], v["constraint_check_type"]) for v in _violations(backend, run.id)
    ] == [
        ("mean_radius", dq.DRIFT_CHECK),
        ("mean_smoothness", dq.DRIFT_CHECK),
    ]
