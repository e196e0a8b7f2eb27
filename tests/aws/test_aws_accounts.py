"""Several AWS accounts: prod's deploy reads staging through staging's read-only role, and a
deploy refuses credentials of the wrong account. moto keeps one world per account and maps
assumed-role credentials to the role's account, so this runs for real on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_harness import AwsHarness, aws_harness
from botocore.awsrequest import AWSResponse

STAGING_ACCOUNT = "222222222222"
READONLY_STAGING = f"arn:aws:iam::{STAGING_ACCOUNT}:role/churn-model-github-readonly-staging"


@pytest.fixture
def split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsHarness]:
    """dev and prod in moto's default account, staging in another one."""
    with aws_harness(tmp_path, monkeypatch, staging_account_id=STAGING_ACCOUNT) as harness:
        yield harness


def point(harness: AwsHarness, env: str, version: int) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")


def staging_account_clients() -> dict[str, object]:
    credentials = boto3.client("sts", region_name="eu-west-1").assume_role(
        RoleArn=f"arn:aws:iam::{STAGING_ACCOUNT}:role/admin", RoleSessionName="test"
    )["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="eu-west-1",
    )
    return {"sagemaker": session.client("sagemaker"), "sts": session.client("sts")}


def serve_in_staging_account(version: int) -> None:
    """What staging's own deploy left in the staging account: an endpoint tagged with v."""
    clients = staging_account_clients()
    assert clients["sts"].get_caller_identity()["Account"] == STAGING_ACCOUNT
    sagemaker = clients["sagemaker"]
    name = f"churn-model-staging-v{version}-abcdef12"
    tags = [{"Key": "sagemaker-gitops:model-version", "Value": str(version)}]
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{STAGING_ACCOUNT}:role/x",
        PrimaryContainer={"Image": "img"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        Tags=tags,
    )
    sagemaker.create_endpoint(EndpointName="churn-model-staging", EndpointConfigName=name)


def test_prod_deploy_reads_staging_through_its_read_only_role(split: AwsHarness) -> None:
    seeded = split.seed_version(approval="Approved")
    point(split, "prod", seeded.version)

    refused = split.cli("deploy", "--env", "prod", "--commit", "abc")

    assert refused.exit_code == 1
    assert "no staging endpoint" in refused.stderr
    assert "sts:AssumeRole" in split.calls
    assert [c for c in split.mutations() if not c.startswith("sts:")] == []

    serve_in_staging_account(seeded.version)
    state = split.backend.describe_endpoint("staging")
    assert (state.status, state.model_version) == ("InService", seeded.version)
    split.reset_mutations()
    result = split.cli("deploy", "--env", "prod", "--commit", "abc")
    assert result.exit_code == 0, result.output
    assert split.backend.describe_endpoint("prod").model_version == seeded.version


def test_read_only_role_arn(split: AwsHarness) -> None:
    assumed: list[str] = []

    def record(params: dict, **_: object) -> None:
        assumed.append(params.get("RoleArn"))

    split.backend.clients("sts").meta.events.register(
        "provide-client-params.sts.AssumeRole", record
    )
    assert split.backend.describe_endpoint("staging") is None
    assert split.backend.describe_endpoint("staging") is None  # the role is assumed once
    assert assumed == [READONLY_STAGING]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_deploy_refuses_credentials_of_another_account(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {f"{env}_account_id": "333333333333"}
    with aws_harness(tmp_path, monkeypatch, **answers) as harness:
        seeded = harness.seed_version()
        point(harness, env, seeded.version)
        harness.reset_mutations()

        result = harness.cli("deploy", "--env", env)

        assert result.exit_code == 1
        assert (
            f"credentials are for account 123456789012, but {env} lives in account 333333333333"
            in result.stderr
        )
        assert harness.mutations() == []
        still = harness.backend.get_version(seeded.group, seeded.version)
        assert still.approval_status == "PendingManualApproval"


def test_status_shows_an_unreadable_environment(split: AwsHarness) -> None:
    def deny(**_: object) -> tuple[AWSResponse, dict]:
        error = {"Code": "AccessDenied", "Message": "not authorized to perform sts:AssumeRole"}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse("https://sts.invalid", 403, {}, None), parsed

    split.backend.clients("sts").meta.events.register("before-call.sts.AssumeRole", deny)

    result = split.cli("status")

    assert result.exit_code == 1
    assert "unreadable" in result.stdout and "prod" in result.stdout
    assert result.stderr.strip() == (
        f"error: status of staging unknown: role {READONLY_STAGING}: AWS AssumeRole failed: "
        "AccessDenied: not authorized to perform sts:AssumeRole"
    )
