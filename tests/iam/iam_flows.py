"""The GitOps loop, driven command by command as the workflows run it, for the IAM judge.

One flow per option combination and account layout: train (run-pipeline --wait), propose,
the staging deploy of the merged proposal (approval included), its smoke test, promote, the prod
deploy and smoke test, then a second version through staging (the update path: blue/green,
autoscaling kept or lifted) and a failed smoke test that rolls back (a third deploy in one job).
Commands a workflow runs that the flow does not drive are listed in ``NOT_DRIVEN`` with why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_harness import admin_client
from botocore.awsrequest import AWSResponse
from gitops_testkit import MOTO_ACCOUNT
from iam_recorder import RecordingHarness

from ci_scripts import data_quality as dq

# Workflow commands this flow does not drive, and why (the judge checks the list is complete).
NOT_DRIVEN = {
    "monitor --env prod": "Model Monitor is being replaced (issue 13); its calls are stubbed",
}


def monitor_schedules(harness: RecordingHarness) -> None:
    """moto gap: the *MonitoringSchedule calls, answered from a dict (what SageMaker keeps)."""
    schedules: dict[str, dict[str, Any]] = {}

    def answer(parsed: dict[str, Any], status: int = 200) -> tuple[AWSResponse, dict[str, Any]]:
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status, "RetryAttempts": 0})
        return AWSResponse("https://moto.invalid", status, {}, None), parsed

    def handle(params: dict[str, Any], model: Any, **_: Any) -> Any:
        request = json.loads(params["body"])
        name = request["MonitoringScheduleName"]
        if model.name == "DescribeMonitoringSchedule":
            if name not in schedules:
                error = {"Code": "ResourceNotFound", "Message": f"{name} not found"}
                return answer({"Error": error}, 400)
            return answer({"MonitoringScheduleName": name, **schedules[name]})
        if model.name == "DeleteMonitoringSchedule":
            schedules.pop(name, None)
            return answer({})
        schedules[name] = {"MonitoringScheduleConfig": request["MonitoringScheduleConfig"]}
        return answer({"MonitoringScheduleArn": f"arn:aws:sagemaker:eu-west-1:1:x/{name}"})

    for operation in ("Describe", "Create", "Update", "Delete"):
        harness.session.events.register(
            f"before-call.sagemaker.{operation}MonitoringSchedule", handle
        )


def with_baseline(harness: RecordingHarness, version: int) -> None:
    """What the pipeline's QualityCheck step registers: a Model Monitor baseline."""
    folder = f"runs/{version}/QualityCheck"
    s3 = admin_client("s3")
    for name in (dq.STATISTICS_FILE, dq.CONSTRAINTS_FILE):
        s3.put_object(Bucket=harness.project.artifact_bucket, Key=f"{folder}/{name}", Body=b"{}")
    arn = harness.project.model_package_arn(version).replace(
        harness.project.accounts["dev"], MOTO_ACCOUNT
    )
    package = harness.moto_sagemaker.model_packages[arn]
    package.customer_metadata_properties = {
        **(package.customer_metadata_properties or {}),
        "baseline_uri": f"s3://{harness.project.artifact_bucket}/{folder}/{dq.STATISTICS_FILE}",
    }


def point(harness: RecordingHarness, env: str, version: int) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")
    harness.commit(f"{env}: v{version}")


def ok(result: Any) -> None:
    assert result.exit_code == 0, result.output


def run_loop(harness: RecordingHarness, tmp_path: Path) -> None:
    """Every workflow command in the order a first release and an update run them."""
    body = str(tmp_path / "body.md")
    monitor_schedules(harness)
    ok(harness.cli("image-exists", "--tag", "abc"))
    ok(harness.cli("run-pipeline", "--wait"))
    first = harness.seed_version()  # what the pipeline's RegisterModel step does
    with_baseline(harness, first.version)
    ok(harness.cli("propose", "--env", "staging", "--body-file", body))
    harness.commit("propose v1")
    ok(harness.cli("deploy", "--env", "staging", "--commit", "c1", "--pr", "1"))
    harness.prepare_invocations("staging", 20)
    ok(harness.cli("smoke-test", "--env", "staging", "--rollback-on-failure", "--commit", "c1"))
    ok(harness.cli("promote", "--from", "staging", "--to", "prod", "--body-file", body))
    harness.commit("promote v1")
    ok(harness.cli("deploy", "--env", "prod", "--commit", "c2", "--pr", "2"))
    harness.prepare_invocations("prod", 20)
    ok(harness.cli("smoke-test", "--env", "prod", "--rollback-on-failure", "--commit", "c2"))
    # An update: the second version replaces the first in staging (blue/green).
    second = harness.seed_version()
    with_baseline(harness, second.version)
    point(harness, "staging", second.version)
    ok(harness.cli("deploy", "--env", "staging", "--commit", "c3", "--pr", "3"))
    # Its smoke test fails: the job restores the version that served before.
    harness.prepare_invocations("staging", 20, answers=["not json"])
    failed = harness.cli(
        "smoke-test", "--env", "staging", "--rollback-on-failure", "--commit", "c3"
    )
    assert failed.exit_code != 0, failed.output
    assert first.version != second.version
