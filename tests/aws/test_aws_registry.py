"""The registry on moto: what a version record holds, and what happens when parts are missing."""

from __future__ import annotations

import logging

import pytest
from aws_harness import AwsHarness, admin_client

from ci_scripts.backends.aws.registry import flatten_metrics, metadata_parts


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
