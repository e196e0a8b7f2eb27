"""aws backend, the repo's own monitor: deploy keeps the monitoring pipeline, its EventBridge
Scheduler schedule and its alarms in step with the served version; ``monitor`` reads the newest
run's summary.json. All on moto (SageMaker pipelines, Scheduler, CloudWatch, S3): no Stubber."""

from __future__ import annotations

import json
from typing import Any

from aws_harness import AwsHarness, admin_client
from gitops_testkit import run_cli

from ci_scripts import monitoring
from ci_scripts.backends.aws.monitoring import AwsMonitor
from ci_scripts.backends.base import ModelVersion

DEFINITION = {"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "Monitor"}]}


def _version(aws: AwsHarness, number: int = 1) -> ModelVersion:
    bucket = aws.project.artifact_bucket
    run = f"s3://{bucket}/pipeline-runs/r{number}"
    return ModelVersion(
        group=aws.project.model_package_group,
        version=number,
        arn=aws.project.model_package_arn(number),
        approval_status="Approved",
        model_data_url=f"{run}/Train/model/model.tar.gz",
        image_uri="image",
        metrics={"auc": 0.97, "accuracy": 0.93, "f1": 0.94, "precision": 0.9, "recall": 0.99},
        reports={
            "data_statistics": f"{run}/DataBaseline/baseline/statistics.json",
            "bias": f"{run}/CheckBias/bias/analysis.json",
            "explainability": f"{run}/Explain/explainability/analysis.json",
        },
    )


def _manifest(**monitoring_settings: Any) -> dict[str, Any]:
    return {
        "endpoint": {"type": "realtime", "instance_type": "ml.m5.large"},
        "data_capture": {"enabled": True, "sampling_percentage": 20},
        "monitoring": monitoring_settings,
    }


def _parameters(schedule: dict[str, Any]) -> dict[str, str]:
    listed = schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    return {p["Name"]: p["Value"] for p in listed}


def test_deploy_sync_creates_pipeline_schedule_alarms_and_seeds(aws: AwsHarness) -> None:
    p = aws.project
    monitor = AwsMonitor(p, aws.backend.clients)
    monitor.sync("prod", _manifest(schedule="cron(15 * ? * * *)"), _version(aws), DEFINITION)

    pipeline = admin_client("sagemaker").describe_pipeline(PipelineName=f"{p.project}-prod-monitor")
    assert json.loads(pipeline["PipelineDefinition"]) == DEFINITION
    assert pipeline["RoleArn"] == p.role_arn("prod")
    schedule = admin_client("scheduler").get_schedule(Name=f"{p.project}-prod-monitor")
    assert schedule["ScheduleExpression"] == "cron(15 * ? * * *)"
    assert schedule["Target"]["Arn"] == pipeline["PipelineArn"]
    assert schedule["Target"]["RoleArn"].endswith(f":role/{p.project}-prod-monitor-scheduler")
    params = _parameters(schedule)
    config = json.loads(params["MonitorConfig"])
    assert config["model_version"] == 1 and config["publish_metrics"] is True
    assert config["drift_threshold"] == 0.1 and config["quality"]["label_window_hours"] == 72
    assert config["registered"]["auc"] == 0.97
    assert config["namespace"] == f"{p.project}/Monitoring"
    assert params["BaselineUrl"].endswith("/DataBaseline/baseline/")
    assert params["CaptureUrl"] == f"s3://{p.artifact_bucket}/datacapture/prod/{p.project}-prod/"
    alarms = admin_client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{p.project}-prod-monitor")
    assert {a["MetricName"] for a in alarms["MetricAlarms"]} == {
        "DriftedFeatures",
        "QualityViolations",
    }
    seeds = admin_client("s3").list_objects_v2(Bucket=p.artifact_bucket)["Contents"]
    assert sum(o["Key"].endswith(monitoring.SEED_FILE) for o in seeds) == 3


def test_a_threshold_change_updates_the_schedule_and_keeps_since(aws: AwsHarness) -> None:
    p = aws.project
    monitor = AwsMonitor(p, aws.backend.clients)
    monitor.sync("prod", _manifest(), _version(aws), DEFINITION)
    first = _parameters(admin_client("scheduler").get_schedule(Name=f"{p.project}-prod-monitor"))
    aws.reset_mutations()
    monitor.sync("prod", _manifest(drift_threshold=0.3), _version(aws), DEFINITION)
    assert "scheduler:UpdateSchedule" in aws.mutations()
    assert "sagemaker:UpdatePipeline" not in aws.mutations()
    second = _parameters(admin_client("scheduler").get_schedule(Name=f"{p.project}-prod-monitor"))
    before, after = json.loads(first["MonitorConfig"]), json.loads(second["MonitorConfig"])
    assert after["drift_threshold"] == 0.3 and after["since"] == before["since"]
    # the same call again changes nothing
    aws.reset_mutations()
    monitor.sync("prod", _manifest(drift_threshold=0.3), _version(aws), DEFINITION)
    assert aws.mutations() == []


def test_capture_off_deletes_the_schedule(aws: AwsHarness) -> None:
    p = aws.project
    monitor = AwsMonitor(p, aws.backend.clients)
    monitor.sync("prod", _manifest(), _version(aws), DEFINITION)
    manifest = {**_manifest(), "data_capture": {"enabled": False}}
    assert "deleted" in monitor.sync("prod", manifest, _version(aws), DEFINITION)
    listed = admin_client("scheduler").list_schedules()["Schedules"]
    assert all(s["Name"] != f"{p.project}-prod-monitor" for s in listed)


def test_a_version_without_reports_leaves_the_monitor_unchanged(aws: AwsHarness) -> None:
    version = _version(aws)
    version.reports = {}
    aws.reset_mutations()
    line = AwsMonitor(aws.project, aws.backend.clients).sync("prod", _manifest(), version, None)
    assert "no monitor baseline" in line and aws.mutations() == []


def _put_run(aws: AwsHarness, run: str, summary: dict[str, Any]) -> None:
    key = f"monitoring/prod/runs/{run}/{monitoring.SUMMARY_FILE}"
    admin_client("s3").put_object(
        Bucket=aws.project.artifact_bucket, Key=key, Body=json.dumps(summary).encode()
    )


def summary(status: str, violations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "format": "monitor-summary",
        "version": 1,
        "env": "prod",
        "model_version": 3,
        "checked_at": "2026-12-01T10:00:00.000+00:00",
        "status": status,
        "captured": {"records": 10, "rows": 10, "new_rows": 10, "skipped": 0},
        "data_quality": {"status": status, "rows": 10, "violations": violations or []},
        "model_quality": {"status": "NoData", "violations": [], "live": {}},
    }


def test_monitor_reads_the_newest_run_that_checked_traffic(aws: AwsHarness) -> None:
    drift = [
        {
            "feature_name": "mean_radius",
            "constraint_check_type": "baseline_drift_check",
            "description": "distance 0.6",
        }
    ]
    _put_run(aws, "a", summary("CompletedWithViolations", drift))
    _put_run(aws, "b", {**summary("NoData"), "reason": "nothing new"})  # newer, nothing new
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert proc.exit_code == 3, proc.output
    assert "mean_radius" in proc.output and "report.html" in proc.output
    assert f"error: {aws.project.project}-prod-monitor: 1 feature(s) drifted" in proc.output


def test_monitor_with_no_run_yet_says_so(aws: AwsHarness) -> None:
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert proc.exit_code == 0, proc.output
    assert "no monitoring run has finished yet" in proc.output


def test_a_schema_change_is_an_error_not_drift(aws: AwsHarness) -> None:
    extra = [
        {
            "feature_name": "_c30",
            "constraint_check_type": "extra_column_check",
            "description": "captured column '_c30' is not in the baseline",
        }
    ]
    _put_run(aws, "a", summary("CompletedWithViolations", extra))
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod")
    assert proc.exit_code == 1, proc.output
    assert "a schema change, not drift" in proc.output and "_c30" in proc.output


def test_both_backends_read_the_step_codes_files_alike(aws: AwsHarness, tmp_path: Any) -> None:
    """The monitor step (template code) writes one run; the local backend's reader (its s3 tree)
    and the aws backend's (moto S3) turn the same files into the same results."""
    from gitops_testkit import template_step_module

    from ci_scripts.backends.local.monitoring import LocalMonitor
    from ci_scripts.backends.local.state import LocalState

    step, drift = template_step_module("monitor"), template_step_module("drift")
    inputs = {name: tmp_path / "in" / name for name in step.INPUTS}
    for folder in inputs.values():
        folder.mkdir(parents=True)
    rows = [[str(i % 7), str(i % 5)] for i in range(200)]
    (inputs["baseline"] / "statistics.json").write_text(
        json.dumps(drift.baseline(["a", "b"], rows, [0.5] * 200))
    )
    capture = {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "encoding": "CSV", "data": "9,9"},
            "endpointOutput": {
                "observedContentType": "application/json",
                "encoding": "JSON",
                "data": json.dumps({"predictions": [{"label": 1, "probability": 0.9}]}),
            },
        },
        "eventMetadata": {"inferenceId": "x", "inferenceTime": "2030-01-01T00:00:00.000Z"},
    }
    (inputs["capture"] / "c.jsonl").write_text("\n".join([json.dumps(capture)] * 50))
    config = step.Config.parse(json.dumps({"env": "prod", "model_version": 2}))
    report = tmp_path / "report"
    step.run(config, inputs, report, tmp_path / "state")

    run = f"{monitoring.runs_prefix(aws.project, 'prod')}/exec-1"
    local = LocalMonitor(aws.project, LocalState(tmp_path / "local"), registry=None)  # type: ignore[arg-type]
    bucket, key = run.removeprefix("s3://").split("/", 1)
    for file in report.iterdir():
        target = local.state.s3_path(f"{run}/{file.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
        admin_client("s3").put_object(
            Bucket=bucket, Key=f"{key}/{file.name}", Body=file.read_bytes()
        )
    remote = AwsMonitor(aws.project, aws.backend.clients)
    on_local = monitoring.data_result(
        aws.project, "prod", *local.newest_summary("prod", "data_quality")
    )
    assert on_local == remote.data_result("prod")
    assert on_local.status == "CompletedWithViolations" and on_local.model_version == 2
    assert {v["feature_name"] for v in on_local.violations} >= {"a", "b"}
    on_local_quality = monitoring.quality_result(
        aws.project, "prod", *local.newest_summary("prod", "model_quality")
    )
    assert on_local_quality == remote.quality_result("prod")
    assert sorted(p.name for p in report.iterdir()) == [
        "metrics.json",
        "report.html",
        "summary.json",
    ]


def _quality_summary(**quality: Any) -> dict[str, Any]:
    base = summary("Completed")
    base["model_quality"] = {
        "status": "Completed",
        "registered": {"accuracy": 0.93, "auc": 0.97},
        "live": {"accuracy": 0.93, "auc": 0.97},
        "labelled_rows": 40,
        "captured_rows": 50,
        "coverage_ok": True,
        "judged": True,
        "violations": [],
        **quality,
    }
    return base


def test_monitor_quality_exits_3_on_a_drop_and_names_bias_drift(aws: AwsHarness) -> None:
    dropped = _quality_summary(
        status="CompletedWithViolations",
        live={"accuracy": 0.6, "auc": 0.97},
        violations=[
            {
                "metric_name": "accuracy",
                "constraint_check_type": "LessThanThreshold",
                "description": "Metric accuracy with 0.6000 was LessThanThreshold '0.8800'",
            }
        ],
    )
    dropped["bias"] = {
        "status": "CompletedWithViolations",
        "registered": {"DPPL": 0.1},
        "live": {"DPPL": 0.5},
        "violations": [
            {
                "metric_name": "DPPL",
                "constraint_check_type": "bias_drift_check",
                "description": "DPPL of mean_radius > 13 is +0.5000 on live data",
            }
        ],
    }
    _put_run(aws, "a", dropped)
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod", "--quality")
    assert proc.exit_code == 3, proc.output
    assert "1 metric(s) of model version 3 dropped past max_metric_drop: accuracy 0.600" in (
        proc.output
    )
    assert "bias_drift_check" in proc.output and "coverage 80%" in proc.output


def test_monitor_quality_without_labels_judges_nothing(aws: AwsHarness) -> None:
    _put_run(aws, "a", _quality_summary(status="NoData", live={}, labelled_rows=0, judged=False))
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod", "--quality")
    assert proc.exit_code == 0, proc.output
    assert "nothing to check" in proc.output


def test_monitor_quality_fails_on_a_broken_label_feed(aws: AwsHarness) -> None:
    _put_run(aws, "a", _quality_summary(labelled_rows=5, coverage_ok=False))
    proc = run_cli(aws.project.root, aws.backend, "monitor", "--env", "prod", "--quality")
    assert proc.exit_code == 1, proc.output
    assert "labels cover 10% of the 50 captured rows" in proc.output


def test_deploy_sets_up_the_monitor_and_a_broken_monitor_changes_nothing(
    aws: AwsHarness, monkeypatch: Any
) -> None:
    """Through the CLI: deploy upserts the monitor after the endpoint; a monitoring definition
    that cannot be built stops the deploy before its first change."""
    from test_aws_endpoints import deploy
    from test_aws_model_reports import register_with_reports

    import ci_scripts.pipeline_module as pipeline_module
    from ci_scripts.errors import CIError

    register_with_reports(aws)

    def broken(*_: Any, **__: Any) -> Any:
        raise CIError("pipelines/monitoring.py: import failed: SyntaxError")

    monkeypatch.setattr(pipeline_module, "build_definition", broken)
    aws.reset_mutations()
    failed = deploy(aws, "staging", 1)
    assert failed.exit_code == 1 and "pipelines/monitoring.py" in failed.output
    # only the registry's record: the approval (the merge's, which deploy records first) and
    # the note that this rollout failed while the version stays Approved (#27) - no model, no
    # endpoint
    assert aws.mutations() == ["sagemaker:UpdateModelPackage", "sagemaker:UpdateModelPackage"]

    monkeypatch.setattr(pipeline_module, "build_definition", lambda *_, **__: DEFINITION)
    ok = deploy(aws, "staging", 1)
    assert ok.exit_code == 0, ok.output
    schedule = admin_client("scheduler").get_schedule(Name=f"{aws.project.project}-staging-monitor")
    assert json.loads(_parameters(schedule)["MonitorConfig"])["model_version"] == 1
