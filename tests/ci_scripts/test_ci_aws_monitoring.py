"""aws backend, ``monitor``: Model Monitor's latest execution and its constraint_violations.json.

S3 (the report) is moto. moto has no ListMonitoringExecutions, so the SageMaker client is a
botocore Stubber (a Stubber owns its whole client: every SageMaker call here is scripted).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_harness import AwsHarness, admin_client, new_session
from botocore.stub import Stubber
from gitops_testkit import run_cli

from ci_scripts import data_quality as dq
from ci_scripts.backends.aws_monitoring import AwsMonitoring

SCHEDULED = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


def _stubbed(aws: AwsHarness, executions: list[dict[str, Any]] | Exception) -> Stubber:
    client = new_session().client("sagemaker")
    stubber = Stubber(client)
    schedule = dq.schedule_name(aws.project.project, "prod")
    expected = {
        "MonitoringScheduleName": schedule,
        "SortBy": "ScheduledTime",
        "SortOrder": "Descending",
        "MaxResults": 10,
    }
    if isinstance(executions, Exception):
        stubber.add_client_error(
            "list_monitoring_executions",
            service_error_code="ValidationException",
            service_message=f"Could not find monitoring schedule {schedule}",
            expected_params=expected,
        )
    else:
        stubber.add_response(
            "list_monitoring_executions",
            {"MonitoringExecutionSummaries": executions},
            expected,
        )
    stubber.activate()
    aws.backend.clients._clients["sagemaker"] = client
    return stubber


def _execution(aws: AwsHarness, status: str, reason: str = "") -> dict[str, Any]:
    summary = {
        "MonitoringScheduleName": dq.schedule_name(aws.project.project, "prod"),
        "ScheduledTime": SCHEDULED,
        "CreationTime": SCHEDULED,
        "LastModifiedTime": SCHEDULED,
        "MonitoringExecutionStatus": status,
        "EndpointName": aws.project.endpoint_name("prod"),
        "ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:333333333333:processing-job/x",
    }
    return {**summary, "FailureReason": reason} if reason else summary


def _put_report(aws: AwsHarness, violations: list[dict[str, str]], hour: str) -> str:
    p = aws.project
    folder = (
        f"{dq.report_prefix(p.artifact_bucket, 'prod')}/{p.endpoint_name('prod')}/"
        f"{dq.schedule_name(p.project, 'prod')}/{hour}"
    )
    admin_client("s3").put_object(
        Bucket=p.artifact_bucket,
        Key=f"{folder.split('/', 3)[3]}/{dq.VIOLATIONS_FILE}",
        Body=json.dumps({"violations": violations}).encode(),
    )
    return folder


DRIFT = [
    {
        "feature_name": "mean_radius",
        "constraint_check_type": "baseline_drift_check",
        "description": "Baseline drift distance: 0.41 exceeds threshold: 0.1",
    }
]


def test_drift_in_the_latest_report_exits_3(aws: AwsHarness) -> None:
    stubber = _stubbed(
        aws, [_execution(aws, "InProgress"), _execution(aws, "CompletedWithViolations")]
    )
    folder = _put_report(aws, DRIFT, "2024/05/06/07")
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 3, result.output
    assert f"report: {folder}" in result.output
    assert "mean_radius" in result.output and "Baseline drift distance: 0.41" in result.output
    schedule = dq.schedule_name(aws.project.project, "prod")
    assert result.stderr.strip().splitlines() == [
        f"error: {schedule}: 1 feature(s) drifted from the baseline: mean_radius"
    ]
    stubber.assert_no_pending_responses()


def test_report_found_by_listing_when_not_in_the_scheduled_hour(aws: AwsHarness) -> None:
    _stubbed(aws, [_execution(aws, "CompletedWithViolations")])
    folder = _put_report(aws, DRIFT, "2024/05/06/08")
    found = AwsMonitoring(aws.project, aws.backend.clients).latest_result("prod")
    assert found.report_uri == folder
    assert found.violations == DRIFT


def test_clean_execution_and_no_data_exit_0(aws: AwsHarness) -> None:
    _stubbed(aws, [_execution(aws, "Completed")])
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "no violations" in result.output

    _stubbed(aws, [_execution(aws, "Failed", "Job inputs had no data")])
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "nothing to check" in result.output and "had no data" in result.output


def test_failures_to_read_exit_1(aws: AwsHarness) -> None:
    _stubbed(aws, [_execution(aws, "Failed", "Algorithm error: out of memory")])
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 1
    assert "Failed: Algorithm error: out of memory" in result.stderr

    _stubbed(aws, RuntimeError())
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 1
    assert "not found; deploy prod with data capture enabled creates it" in result.stderr

    _stubbed(aws, [_execution(aws, "CompletedWithViolations")])  # no report anywhere
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert result.exit_code == 1
    assert f"no {dq.VIOLATIONS_FILE}" in result.stderr
