"""aws backend, ``monitor``: Model Monitor's latest execution and its constraint_violations.json.

S3 (the report) is moto. moto has no ListMonitoringExecutions, so the SageMaker client is a
botocore Stubber (a Stubber owns its whole client: every SageMaker call here is scripted).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_harness import AwsHarness, admin_client, new_session
from botocore.stub import Stubber
from gitops_testkit import run_cli

from ci_scripts import data_quality as dq
from ci_scripts.backends.aws.monitoring import AwsMonitoring

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


# -- the schedule deploy keeps in step with the served version --------------------------------
def _version(aws: AwsHarness, number: int) -> Any:
    from ci_scripts.backends.base import ModelVersion

    p = aws.project
    folder = f"runs/{number}/QualityCheck"
    s3 = admin_client("s3")
    stats = dq.statistics(dq.Dataset(["x"], np.arange(10, dtype=float).reshape(-1, 1)))
    for name, doc in ((dq.STATISTICS_FILE, stats), (dq.CONSTRAINTS_FILE, dq.constraints(stats))):
        s3.put_object(Bucket=p.artifact_bucket, Key=f"{folder}/{name}", Body=json.dumps(doc))
    return ModelVersion(
        group=p.model_package_group,
        version=number,
        arn=p.model_package_arn(number),
        approval_status="Approved",
        model_data_url="s3://x/model.tar.gz",
        image_uri="img",
        baseline_uri=f"s3://{p.artifact_bucket}/{folder}/{dq.STATISTICS_FILE}",
    )


MANIFEST = {
    "endpoint": {"type": "realtime"},
    "data_capture": {"enabled": True},
    "monitoring": {"schedule": "cron(0 * ? * * *)", "drift_threshold": 0.2},
}


def test_schedule_created_then_replaced_for_a_new_version(aws: AwsHarness) -> None:
    """moto has no *MonitoringSchedule calls: the SageMaker client is a Stubber that checks
    each request; S3 (the per-environment constraints copy) is moto."""
    p = aws.project
    schedule = dq.schedule_name(p.project, "prod")
    client = new_session().client("sagemaker")
    stubber = Stubber(client)
    not_found = {"service_error_code": "ResourceNotFound", "service_message": "not found"}
    expected = {"MonitoringScheduleName": schedule}
    stubber.add_client_error("describe_monitoring_schedule", **not_found, expected_params=expected)
    stubber.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:x"})
    stubber.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:s"})
    stubber.activate()
    aws.backend.clients._clients["sagemaker"] = client
    from ci_scripts.backends.aws.monitoring import DataQualitySchedule

    sync = DataQualitySchedule(p, aws.backend.clients)
    v1 = _version(aws, 1)
    assert "created" in sync.sync("prod", MANIFEST, v1)
    stubber.assert_no_pending_responses()
    key = f"monitoring/prod/baselines/v1/{dq.CONSTRAINTS_FILE}"
    body = admin_client("s3").get_object(Bucket=p.artifact_bucket, Key=key)["Body"].read()
    config = json.loads(body)["monitoring_config"]
    assert config["distribution_constraints"]["comparison_threshold"] == 0.2

    # version 2: new job definition, schedule updated to it, version 1's definition deleted
    existing = {
        "MonitoringScheduleArn": "arn:s",
        "MonitoringScheduleName": schedule,
        "MonitoringScheduleStatus": "Scheduled",
        "CreationTime": SCHEDULED,
        "LastModifiedTime": SCHEDULED,
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
            "MonitoringJobDefinitionName": f"{p.project}-prod-dq-v1",
            "MonitoringType": "DataQuality",
        },
    }
    stubber.add_response("describe_monitoring_schedule", existing)
    stubber.add_response("create_data_quality_job_definition", {"JobDefinitionArn": "arn:y"})
    stubber.add_response(
        "update_monitoring_schedule",
        {"MonitoringScheduleArn": "arn:s"},
        {
            "MonitoringScheduleName": schedule,
            "MonitoringScheduleConfig": {
                "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                "MonitoringJobDefinitionName": f"{p.project}-prod-dq-v2",
                "MonitoringType": "DataQuality",
            },
        },
    )
    stubber.add_response(
        "delete_data_quality_job_definition",
        {},
        {"JobDefinitionName": f"{p.project}-prod-dq-v1"},
    )
    assert "replaced" in sync.sync("prod", MANIFEST, _version(aws, 2))
    stubber.assert_no_pending_responses()

    # the same version again: nothing to change (one Describe call, nothing else)
    existing["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] = f"{p.project}-prod-dq-v2"
    stubber.add_response("describe_monitoring_schedule", existing)
    assert "unchanged" in sync.sync("prod", MANIFEST, _version(aws, 2))
    stubber.assert_no_pending_responses()


def test_job_definition_request_on_moto(aws: AwsHarness) -> None:
    """CreateDataQualityJobDefinition is in moto: the request the schedule uses is accepted."""
    from ci_scripts.backends.aws.monitoring import DataQualitySchedule

    p = aws.project
    sync = DataQualitySchedule(p, aws.backend.clients)
    sync._create_definition("prod", "d1", "s3://b/statistics.json", "s3://b/constraints.json")
    found = aws.backend.clients("sagemaker").describe_data_quality_job_definition(
        JobDefinitionName="d1"
    )
    assert found["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == p.endpoint_name("prod")
    output = found["DataQualityJobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"]
    assert output == dq.report_prefix(p.artifact_bucket, "prod")


def test_no_model_monitor_baseline_changes_nothing(aws: AwsHarness) -> None:
    from ci_scripts.backends.aws.monitoring import DataQualitySchedule

    version = _version(aws, 1)
    version.baseline_uri = "s3://b/Preprocess/baseline/baseline.csv"
    _stubbed_nothing = Stubber(new_session().client("sagemaker"))
    aws.backend.clients._clients["sagemaker"] = _stubbed_nothing.client
    _stubbed_nothing.activate()  # any SageMaker call would fail the test
    message = DataQualitySchedule(aws.project, aws.backend.clients).sync("prod", MANIFEST, version)
    assert "no data quality baseline in Model Monitor's format" in message


def test_job_definition_encrypts_volume_and_reports_with_the_project_key(aws: AwsHarness) -> None:
    """With kms_key_arn set, the monitoring job's volume and report output use the project key;
    without it neither field is sent (SageMaker's own keys)."""
    import dataclasses

    from ci_scripts.backends.aws.monitoring import DataQualitySchedule

    key = admin_client("kms").create_key(Description="project key")["KeyMetadata"]["Arn"]
    sagemaker = aws.backend.clients("sagemaker")
    for name, project in (
        ("plain", aws.project),
        ("keyed", dataclasses.replace(aws.project, kms_key_arn=key)),
    ):
        sync = DataQualitySchedule(project, aws.backend.clients)
        sync._create_definition("prod", name, "s3://b/statistics.json", "s3://b/constraints.json")
        found = sagemaker.describe_data_quality_job_definition(JobDefinitionName=name)
        output = found["DataQualityJobOutputConfig"]
        cluster = found["JobResources"]["ClusterConfig"]
        if name == "plain":
            assert "KmsKeyId" not in output and "VolumeKmsKeyId" not in cluster
        else:
            assert output["KmsKeyId"] == key and cluster["VolumeKmsKeyId"] == key
