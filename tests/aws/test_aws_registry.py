"""The registry on moto: what a version record holds, and what happens when parts are missing."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client

from ci_scripts.backends.aws.registry import flatten_metrics, metadata_parts
from ci_scripts.report import trials_section


def test_version_record_has_metrics_hyperparameters_and_links(aws: AwsHarness) -> None:
    seeded = aws.seed_version(metrics={"auc": 0.97, "f1": 0.9}, hyperparameters={"C": "0.5"})

    assert seeded.metrics == {"auc": 0.97, "f1": 0.9}
    assert seeded.hyperparameters == {"C": "0.5"}
    assert seeded.arn.endswith("model-package/churn-model/1")
    assert seeded.image_uri.endswith("/churn-model:abc")
    assert seeded.model_data_url.startswith("s3://")
    listed = aws.backend.list_versions("churn-model")
    assert [(v.version, v.approval_status) for v in listed] == [(1, "PendingManualApproval")]


def test_unreadable_metrics_report_warns_and_keeps_the_version_usable(
    aws: AwsHarness, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = aws.seed_version()
    admin_client("s3").delete_object(
        Bucket=aws.project.artifact_bucket, Key="churn-model/evaluation-1.json"
    )
    with caplog.at_level(logging.WARNING):
        again = aws.backend.get_version(seeded.group, seeded.version)
    assert again is not None and again.metrics == {}
    assert "evaluation-1.json unreadable" in caplog.text and "NoSuchKey" in caplog.text


def test_unknown_version_is_none(aws: AwsHarness) -> None:
    assert aws.backend.get_version("churn-model", 99) is None


def test_report_and_metadata_parsing() -> None:
    report = {
        "binary_classification_metrics": {
            "auc": {"value": 0.9, "standard_deviation": "NaN"},
            "confusion_matrix": {"0": {"0": 1}},
            "f1": {"value": "NaN"},
        }
    }
    assert flatten_metrics(report) == {"auc": 0.9}
    hyper, metrics = metadata_parts(
        {
            "hyperparameters": '{"C": 1, "max_iter": "10"}',
            "hyperparameter:class_weight": "none",
            "metric:auc": "0.8",
            "project": "churn-model",
        }
    )
    assert hyper == {"C": "1", "max_iter": "10", "class_weight": "none"}
    assert metrics == {"auc": 0.8}


def test_a_tuned_version_lists_its_trials_best_first(aws: AwsHarness) -> None:
    """propose's view: the trials of the version's tuning job (ListTrainingJobsForHyperParameter
    TuningJob, which moto lacks: botocore's Stubber answers it), in the local registry's shape,
    the registered best trial first, then by objective, failed trials last."""
    from botocore.stub import Stubber

    seeded = aws.seed_version()
    tuned = dataclasses.replace(
        seeded,
        training={"tuning_job": "abc-Tune-x", "best_training_job": "abc-Tune-x-002-bb"},
    )

    def summary(name: str, status: str, value: float | None, c: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{name}",
            "CreationTime": datetime(2025, 1, 1, tzinfo=UTC),
            "TrainingJobStatus": status,
            "TunedHyperParameters": {"C": c},
        }
        if value is not None:
            found["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize",
                "MetricName": "validation:auc",
                "Value": value,
            }
        return found

    client = aws.backend.registry.clients("sagemaker")
    with Stubber(client) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    summary("abc-Tune-x-001-aa", "Completed", 0.81, "0.1"),
                    summary("abc-Tune-x-003-cc", "Failed", None, "9.0"),
                    summary("abc-Tune-x-004-dd", "Completed", 0.88, "3.0"),
                ],
                "NextToken": "more",
            },
            {"HyperParameterTuningJobName": "abc-Tune-x"},
        )
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": [summary("abc-Tune-x-002-bb", "Completed", 0.86, "1.0")]},
            {"HyperParameterTuningJobName": "abc-Tune-x", "NextToken": "more"},
        )
        listed = aws.backend.with_trials(tuned)
        stub.assert_no_pending_responses()

    trials = json.loads(listed.training["trials"])
    assert [t["job"] for t in trials] == [
        "abc-Tune-x-002-bb",  # registered (the tuning job's best)
        "abc-Tune-x-004-dd",
        "abc-Tune-x-001-aa",
        "abc-Tune-x-003-cc",  # no objective
    ]
    assert trials[0] == {
        "job": "abc-Tune-x-002-bb",
        "status": "Completed",
        "objective": 0.86,
        "hyperparameters": {"C": "1.0"},
    }
    assert trials[-1]["objective"] is None and trials[-1]["status"] == "Failed"
    body = trials_section(listed)
    assert "| 1 | `abc-Tune-x-002-bb` (registered) | 0.86" in "\n".join(body)
    # untuned versions and versions whose record holds the trials are left as they are
    assert aws.backend.with_trials(seeded) is seeded
    assert aws.backend.with_trials(listed) is listed


def test_unlistable_trials_keep_the_best_trial_line(
    aws: AwsHarness, caplog: pytest.LogCaptureFixture
) -> None:
    from botocore.stub import Stubber

    tuned = dataclasses.replace(aws.seed_version(), training={"tuning_job": "gone"})
    client = aws.backend.registry.clients("sagemaker")
    with Stubber(client) as stub, caplog.at_level(logging.WARNING):
        stub.add_client_error(
            "list_training_jobs_for_hyper_parameter_tuning_job", "AccessDeniedException"
        )
        assert aws.backend.with_trials(tuned) is tuned
    assert "trials of tuning job gone unreadable" in caplog.text
