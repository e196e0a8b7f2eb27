"""Where each environment captures: its account's capture bucket, or the artifact bucket when it
shares the dev account (single-account set-up: nothing to replicate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ci_scripts.backends.aws.endpoints import data_capture_config
from ci_scripts.project import ProjectConfig

BASE = ProjectConfig(
    root=Path("."),
    project="fraud-model",
    package="fraud_model",
    region="eu-west-1",
    model_package_group="fraud-model",
    pipeline_name="fraud-model-train",
    ecr_repository="fraud-model",
    artifact_bucket="fraud-model-artifacts-111111111111-eu-west-1",
    sagemaker_role="fraud-model-sagemaker-execution",
    accounts={"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"},
)
MANIFEST = {"endpoint": {"type": "realtime"}, "data_capture": {"enabled": True}}


def test_serving_accounts_capture_into_their_own_bucket() -> None:
    assert BASE.capture_bucket("prod") == "fraud-model-capture-333333333333-eu-west-1"
    config = data_capture_config(BASE, "prod", MANIFEST)
    assert config is not None
    assert config["DestinationS3Uri"] == (
        "s3://fraud-model-capture-333333333333-eu-west-1/datacapture/prod"
    )


def test_single_account_captures_into_the_artifact_bucket() -> None:
    one = dataclasses.replace(BASE, accounts=dict.fromkeys(("dev", "staging", "prod"), "1" * 12))
    assert one.capture_bucket("staging") == one.artifact_bucket
    config = data_capture_config(one, "staging", MANIFEST)
    assert config is not None
    assert config["DestinationS3Uri"] == f"s3://{one.artifact_bucket}/datacapture/staging"
