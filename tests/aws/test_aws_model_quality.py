"""aws backend, model quality: the schedule deploy keeps, and ``monitor --quality`` reading it.

moto has CreateModelQualityJobDefinition (used as is) but no *MonitoringSchedule calls nor
ListMonitoringExecutions: those go to a botocore Stubber (which owns its whole client, so every
SageMaker call of a stubbed test is scripted). S3 (constraints, reports) and the registry are
moto.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_harness import AwsHarness, admin_client, new_session
from botocore.stub import Stubber
from ci_scripts.backends.aws.model_quality import CONSTRAINTS_KEY, ModelQualitySchedule
from gitops_testkit import run_cli

from ci_scripts import data_quality as dq
from ci_scripts import model_quality as mq
from ci_scripts.backends.base import ModelVersion

SCHEDULED = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
REGISTERED = {"auc": 0.95, "accuracy": 0.91, "f1": 0.9, "precision": 0.89, "recall": 0.92}
MANIFEST: dict[str, Any] = {
    "endpoint": {"type": "realtime"},
    "data_capture": {"enabled": True},
    "monitoring": {"schedule": "cron(0 * ? * * *)", "quality": {"max_metric_drop": {"auc": 0.1}}},
}


def _version(aws: AwsHarness, number: int) -> ModelVersion:
    p = aws.project
    return ModelVersion(
        group=p.model_package_group,
        version=number,
        arn=p.model_package_arn(number),
        approval_status="Approved",
        model_data_url="s3://x/model.tar.gz",
        image_uri="img",
        metrics=dict(REGISTERED),
        baseline_uri=f"s3://{p.artifact_bucket}/runs/{number}/QualityCheck/{dq.STATISTICS_FILE}",
    )


def _stub(aws: AwsHarness) -> Stubber:
    client = new_session().client("sagemaker")
    stubber = Stubber(client)
    stubber.activate()
    aws.backend.clients._clients["sagemaker"] = client
    return stubber


def test_schedule_created_with_manifest_constraints_then_unchanged(aws: AwsHarness) -> None:
    p = aws.project
    schedule = mq.schedule_name(p.project, "prod")
    stubber = _stub(aws)
    stubber.add_client_error(
        "describe_monitoring_schedule",
        service_error_code="ResourceNotFound",
        service_message="not found",
        expected_params={"MonitoringScheduleName": schedule},
    )
    stubber.add_response("create_model_quality_job_definition", {"JobDefinitionArn": "arn:x"})
    stubber.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:s"})
    sync = ModelQualitySchedule(p, aws.backend.clients)
    message = sync.sync("prod", MANIFEST, _version(aws, 3))
    assert message.startswith(f"monitoring schedule {schedule} created: {p.project}-prod-mq-v3-")
    stubber.assert_no_pending_responses()
    key = f"monitoring/prod/baselines/v3/{CONSTRAINTS_KEY}"
    body = admin_client("s3").get_object(Bucket=p.artifact_bucket, Key=key)["Body"].read()
    rules = json.loads(body)["binary_classification_constraints"]
    assert rules["auc"] == {"threshold": 0.85, "comparison_operator": "LessThanThreshold"}
    assert rules["recall"]["threshold"] == 0.87  # schema default drop 0.05

    definition = message.rsplit(": ", 1)[1]
    stubber.add_response(
        "describe_monitoring_schedule",
        {
            "MonitoringScheduleArn": "arn:s",
            "MonitoringScheduleName": schedule,
            "MonitoringScheduleStatus": "Scheduled",
            "CreationTime": SCHEDULED,
            "LastModifiedTime": SCHEDULED,
            "MonitoringScheduleConfig": {
                "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                "MonitoringJobDefinitionName": definition,
                "MonitoringType": "ModelQuality",
            },
        },
    )
    assert "unchanged" in sync.sync("prod", MANIFEST, _version(aws, 3))
    stubber.assert_no_pending_responses()


def test_no_baseline_or_serverless_makes_no_call(aws: AwsHarness) -> None:
    _stub(aws)  # any SageMaker call would fail: nothing is scripted
    sync = ModelQualitySchedule(aws.project, aws.backend.clients)
    version = _version(aws, 1)
    version.baseline_uri = "s3://b/Preprocess/baseline/baseline.csv"
    assert "not changed" in sync.sync("prod", MANIFEST, version)
    serverless = {**MANIFEST, "endpoint": {"type": "serverless"}}
    assert "serverless" in sync.sync("prod", serverless, _version(aws, 1))


def test_job_definition_request_on_moto(aws: AwsHarness) -> None:
    p = aws.project
    ModelQualitySchedule(p, aws.backend.clients).create_definition("prod", "q1", "s3://b/c.json")
    found = aws.backend.clients("sagemaker").describe_model_quality_job_definition(
        JobDefinitionName="q1"
    )
    job_input = found["ModelQualityJobInput"]
    assert job_input["EndpointInput"]["EndpointName"] == p.endpoint_name("prod")
    assert job_input["GroundTruthS3Input"]["S3Uri"] == mq.ground_truth_prefix(
        p.artifact_bucket, "prod"
    )
    assert found["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"


def _put_statistics(aws: AwsHarness, live: dict[str, float], rows: int) -> str:
    p = aws.project
    folder = "/".join(
        [
            mq.report_prefix(p.artifact_bucket, "prod"),
            p.endpoint_name("prod"),
            mq.schedule_name(p.project, "prod"),
            "2024/05/06/07",
        ]
    )
    admin_client("s3").put_object(
        Bucket=p.artifact_bucket,
        Key=f"{folder.split('/', 3)[3]}/{mq.STATISTICS_FILE}",
        Body=json.dumps(mq.statistics(live, rows)).encode(),
    )
    return folder


def _monitor_quality(aws: AwsHarness, live: dict[str, float], monkeypatch: Any) -> Any:
    version = aws.seed_version(metrics=REGISTERED, approval="Approved")
    # the stubbed client below answers only the monitoring call: the endpoint (none) and the
    # registry (moto, read above) are answered as moto answered them
    monkeypatch.setattr(aws.backend.endpoints, "describe_endpoint", lambda env: None)
    monkeypatch.setattr(aws.backend.registry, "get_version", lambda group, number: version)
    manifest = json.loads(aws.project.manifest_path("prod").read_text())
    manifest["model_version"] = version.version
    aws.project.manifest_path("prod").write_text(json.dumps(manifest))
    folder = _put_statistics(aws, live, 250)
    stubber = _stub(aws)
    stubber.add_response(
        "list_monitoring_executions",
        {
            "MonitoringExecutionSummaries": [
                {
                    "MonitoringScheduleName": mq.schedule_name(aws.project.project, "prod"),
                    "ScheduledTime": SCHEDULED,
                    "CreationTime": SCHEDULED,
                    "LastModifiedTime": SCHEDULED,
                    "MonitoringExecutionStatus": "Completed",
                }
            ]
        },
    )
    result = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod", "--quality")
    assert f"report: {folder}" in result.output
    return result


def test_monitor_quality_reads_the_latest_statistics(aws: AwsHarness, monkeypatch: Any) -> None:
    healthy = {name: value - 0.01 for name, value in REGISTERED.items()}
    result = _monitor_quality(aws, healthy, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "250 labelled rows" in result.output and "no violations" in result.output


def test_monitor_quality_drop_exits_3(aws: AwsHarness, monkeypatch: Any) -> None:
    dropped = {**REGISTERED, "auc": 0.8}
    result = _monitor_quality(aws, dropped, monkeypatch)
    assert result.exit_code == 3, result.output
    assert "auc 0.800 vs 0.950 registered" in result.stderr
