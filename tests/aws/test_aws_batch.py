"""aws backend, deployment=batch, on moto: deploy keeps the Model, the ``<project>-<env>-batch``
pipeline and its EventBridge Scheduler schedule in step with deploy/<env>.json (and is a no-op
when nothing changed), batch-run starts it, status reports a failed transform with its reason,
destroy removes everything and prune keeps the rollback versions.

moto runs no pipeline: every execution is Succeeded at once and ListPipelineExecutionSteps is not
implemented, so a failed run is scripted through the harness (aws_harness: the execution's
status and reason, the steps' answer) and the transform job's FailureReason is set on moto's own
job. On AWS the failed step reports the job's ARN in ``Metadata.TransformJob`` and
DescribeTransformJob its FailureReason (API_PipelineExecutionStepMetadata,
API_DescribeTransformJob); a run Scheduler starts is an ordinary pipeline execution with the
schedule's SageMakerPipelineParameters (Scheduler's "SageMakerPipelineParameters" target
parameter, https://docs.aws.amazon.com/scheduler/latest/APIReference/API_SageMakerPipelineParameters.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client, aws_harness

from ci_scripts.errors import CIError
from ci_scripts.imagetag import image_tag

PIPELINE = "churn-model-staging-batch"


@pytest.fixture
def batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsHarness]:
    with aws_harness(tmp_path, monkeypatch, deployment="batch") as harness:
        yield harness


def point(aws: AwsHarness, version: int, **batch_settings: Any) -> dict[str, Any]:
    path = aws.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = version
    data["batch"].update(batch_settings)
    path.write_text(json.dumps(data, indent=2) + "\n")
    aws.commit(f"staging: v{version}")
    return data


def deploy(aws: AwsHarness, version: int, **batch_settings: Any) -> dict[str, Any]:
    manifest = point(aws, version, **batch_settings)
    result = aws.cli("deploy", "--env", "staging", "--commit", f"c{version:07d}", "--pr", "7")
    assert result.exit_code == 0, result.output
    return manifest


def schedule_parameters(name: str = PIPELINE) -> dict[str, str]:
    schedule = admin_client("scheduler").get_schedule(Name=name)
    listed = schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    return {p["Name"]: p["Value"] for p in listed}


def test_deploy_creates_model_pipeline_and_schedule(batch: AwsHarness) -> None:
    version = batch.seed_version()
    deploy(batch, version.version)

    p = batch.project
    sagemaker = admin_client("sagemaker")
    params = schedule_parameters()
    model = sagemaker.describe_model(ModelName=params["ModelName"])
    assert params["ModelName"].startswith(f"churn-model-staging-v{version.version}-")
    assert model["PrimaryContainer"]["ModelPackageName"] == version.arn
    assert model["ExecutionRoleArn"] == p.role_arn("staging")
    pipeline = sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert pipeline["RoleArn"] == p.role_arn("staging")
    steps = json.loads(pipeline["PipelineDefinition"])["Steps"]
    assert [s["Name"] for s in steps] == ["CheckInput", "Transform"]
    assert steps[0]["Arguments"]["RoleArn"] == p.role_arn("staging")  # the serving account's
    schedule = admin_client("scheduler").get_schedule(Name=PIPELINE)
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"  # the schema's default
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["Target"]["Arn"] == pipeline["PipelineArn"]
    assert schedule["Target"]["RoleArn"].endswith(":role/churn-model-staging-batch-scheduler")
    bucket = p.artifact_bucket
    assert params == {
        "ModelName": params["ModelName"],
        "InputUri": f"s3://{bucket}/batch/staging/input/",
        "OutputUri": f"s3://{bucket}/batch/staging/output/",
        "InstanceType": "ml.m5.large",
        "InstanceCount": "1",
        "MaxPayloadInMB": "6",
        "MaxConcurrentTransforms": "1",
        "CheckUri": f"s3://{bucket}/batch/staging/checks",
        # monitoring=yes: the Capture step writes the rows where the monitor reads captures
        "CaptureUri": f"s3://{bucket}/datacapture/staging/churn-model-staging/batch",
    }
    tags = {
        t["Key"]: t["Value"]
        for t in sagemaker.list_tags(ResourceArn=pipeline["PipelineArn"])["Tags"]
    }
    assert tags["sagemaker-gitops:model-version"] == str(version.version)
    assert tags["sagemaker-gitops:git-commit"] == f"c{version.version:07d}"
    assert tags["sagemaker-gitops:pull-request"] == "7"

    state = batch.backend.describe_endpoint("staging")
    assert state is not None and state.name == PIPELINE and state.status == "InService"
    assert state.model_version == version.version and state.url == ""
    assert state.config["type"] == "batch" and state.config["last_run"] is None
    assert state.config["settings"]["batch.schedule"] == "cron(0 3 * * ? *)"


def test_deploy_again_is_a_no_op_and_a_schedule_change_one_update(batch: AwsHarness) -> None:
    version = batch.seed_version()
    deploy(batch, version.version)
    batch.reset_mutations()
    result = batch.cli("deploy", "--env", "staging", "--commit", "c0000001", "--pr", "7")
    assert result.exit_code == 0, result.output
    assert batch.mutations() == []
    assert "no change" in result.output

    batch.reset_mutations()
    deploy(batch, version.version, schedule="cron(30 1 * * ? *)", max_payload_mb=2)
    assert batch.mutations() == ["scheduler:UpdateSchedule"]
    assert schedule_parameters()["MaxPayloadInMB"] == "2"
    schedule = admin_client("scheduler").get_schedule(Name=PIPELINE)
    assert schedule["ScheduleExpression"] == "cron(30 1 * * ? *)"


def test_a_no_op_deploy_builds_no_definition_and_a_changed_input_updates_both_pipelines(
    batch: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#27: the batch and monitoring pipelines carry the fingerprint of their definitions'
    inputs; the same manifest and code again builds neither (no SDK import), a new image tag
    (an input of both) rebuilds and updates both, and nothing else."""
    from test_aws_pipeline import count_builds

    version = batch.seed_version()
    batch.attach_monitor_reports(version.version)  # the monitor watches the batch's capture
    deploy(batch, version.version)
    built = count_builds(monkeypatch)
    batch.reset_mutations()
    batch.new_process()
    result = batch.cli("deploy", "--env", "staging", "--commit", "c0000001", "--pr", "7")
    assert result.exit_code == 0, result.output
    assert built == [] and batch.mutations() == []

    (batch.project.root / "Dockerfile").write_text("FROM python:3.12-slim\n")  # new image tag
    batch.new_process()
    deploy(batch, version.version)
    assert sorted(built) == ["pipelines.batch", "pipelines.monitoring"]
    assert batch.mutations() == ["sagemaker:UpdatePipeline", "sagemaker:UpdatePipeline"]
    described = admin_client("sagemaker").describe_pipeline(PipelineName=PIPELINE)
    assert ":" + image_tag(batch.project.root) in described["PipelineDefinition"]


def test_a_new_version_gets_its_model_and_the_pipeline_remembers_the_previous(
    batch: AwsHarness,
) -> None:
    first, second = batch.seed_version(), batch.seed_version()
    deploy(batch, first.version)
    batch.reset_mutations()
    deploy(batch, second.version)
    assert set(batch.mutations()) == {
        "sagemaker:UpdateModelPackage",  # the merge approves the new version
        "sagemaker:CreateModel",
        "sagemaker:AddTags",
        "scheduler:UpdateSchedule",
    }
    state = batch.backend.describe_endpoint("staging")
    assert state is not None
    assert (state.model_version, state.config["previous_version"]) == (2, 1)


def put_input(aws: AwsHarness, uri: str, text: str) -> None:
    bucket, key = uri[5:].split("/", 1)
    admin_client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())


def test_run_batch_uses_what_runs_now_and_checks_the_join(batch: AwsHarness) -> None:
    version = batch.seed_version()
    manifest = deploy(batch, version.version)
    bucket = batch.project.artifact_bucket
    smoke_in = f"s3://{bucket}/batch/staging/input_smoke/"
    smoke_out = f"s3://{bucket}/batch/staging/output_smoke/"
    put_input(batch, smoke_in + "a.csv", "a1,1.0,2.0,0.1\na2,1.5,2.5,0.2\n")
    put_input(batch, smoke_in + "day/b.csv", "b1,3.0,1.0,0.3\n")

    run = batch.backend.run_batch("staging", manifest, input_uri=smoke_in, output_uri=smoke_out)

    assert run.status == "Succeeded" and run.model_version == version.version
    assert (run.input_uri, run.output_uri, run.rows) == (smoke_in, smoke_out, 3)
    sent = admin_client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=run.id
    )["PipelineParameters"]
    sent_map = {p["Name"]: p["Value"] for p in sent}
    # a scratch output is not traffic: no capture records for the monitor
    expected = {**schedule_parameters(), "InputUri": smoke_in, "OutputUri": smoke_out}
    assert sent_map == {**expected, "CaptureUri": ""}
    last = batch.backend.last_batch_run("staging")
    assert last is not None and (last.id, last.status) == (run.id, "Succeeded")


def test_outputs_that_lose_an_answer_fail_the_run_naming_file_and_line(
    batch: AwsHarness,
) -> None:
    manifest = deploy(batch, batch.seed_version().version)
    source = manifest["batch"]["input_prefix"]
    put_input(batch, source + "a.csv", "a1,1.0,2.0,0.1\n")
    batch.transform_answer = "1"  # the probability column is missing

    run = batch.backend.run_batch("staging", manifest)

    assert run.status == "Failed" and run.rows is None
    output = manifest["batch"]["output_prefix"] + "a.csv.out"
    assert run.failure_reason == f"{output}:1: 1 prediction column(s), expected 2"


def test_a_failed_transform_is_reported_with_its_reason(batch: AwsHarness) -> None:
    version = batch.seed_version()
    deploy(batch, version.version)

    arn = batch.fail_batch_run("staging", "ClientError: 400 from the model")  # as scheduled

    last = batch.backend.last_batch_run("staging")
    assert last is not None and last.id == arn and last.status == "Failed"
    assert last.failure_reason == "step Transform: ClientError: 400 from the model"
    assert last.model_version == version.version
    state = batch.backend.describe_endpoint("staging")
    assert state is not None and state.status == "Failed"
    assert state.failure_reason == last.failure_reason
    assert state.config["last_run"]["id"] == arn
    result = batch.cli("status")
    assert "ClientError: 400 from the model" in result.output
    # a new version deployed after it is healthy until one of its own runs fails
    deploy(batch, batch.seed_version().version)
    state = batch.backend.describe_endpoint("staging")
    assert state is not None and state.status == "InService"


def test_a_bad_run_request_changes_nothing(batch: AwsHarness) -> None:
    manifest = point(batch, batch.seed_version().version)
    with pytest.raises(CIError, match=f"batch pipeline {PIPELINE}: not deployed in staging"):
        batch.backend.run_batch("staging", manifest)
    batch.cli("deploy", "--env", "staging", "--commit", "c1")
    batch.reset_mutations()
    with pytest.raises(CIError, match="batch-run --input /tmp/x: expected an s3://"):
        batch.backend.run_batch("staging", manifest, input_uri="/tmp/x")
    assert batch.mutations() == []
    with pytest.raises(CIError, match="no endpoint to invoke"):
        batch.backend.invoke("staging", b"1,2,3")


def test_destroy_removes_schedule_pipeline_and_models(batch: AwsHarness) -> None:
    first, second = batch.seed_version(), batch.seed_version()
    deploy(batch, first.version)
    manifest = deploy(batch, second.version)
    plan = batch.backend.teardown_plan("staging", manifest)
    assert plan[:2] == [f"schedule {PIPELINE}", f"batch pipeline {PIPELINE}"]
    assert [line.split("-v")[1][0] for line in plan[2:]] == ["1", "2"]

    removed = batch.backend.teardown("staging", manifest)

    assert removed == plan
    assert admin_client("scheduler").list_schedules()["Schedules"] == []
    assert admin_client("sagemaker").list_pipelines()["PipelineSummaries"] == []
    assert admin_client("sagemaker").list_models()["Models"] == []
    batch.reset_mutations()
    assert batch.backend.teardown("staging", manifest) == []  # nothing left: nothing done
    assert batch.mutations() == []


def test_prune_keeps_rollback_versions_and_what_runs(batch: AwsHarness) -> None:
    for _ in range(3):
        deploy(batch, batch.seed_version().version)
    models = sorted(m["ModelName"] for m in admin_client("sagemaker").list_models()["Models"])
    assert len(models) == 3  # prune after deploy keeps the five newest versions named in git

    removed = batch.backend.prune("staging", keep_versions={2})

    # version 1 goes; 2 is kept; 3 runs now (the schedule's ModelName), so it stays too
    assert removed == [f"model {models[0]}"]
    left = sorted(m["ModelName"] for m in admin_client("sagemaker").list_models()["Models"])
    assert left == models[1:]


def test_the_monitor_watches_a_batch_env_and_goes_with_it(batch: AwsHarness) -> None:
    version = batch.seed_version()
    batch.attach_monitor_reports(version.version)
    manifest = deploy(batch, version.version)

    monitor = f"{PIPELINE.removesuffix('-batch')}-monitor"
    schedule = admin_client("scheduler").get_schedule(Name=monitor)
    listed = schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    capture = next(p["Value"] for p in listed if p["Name"] == "CaptureUrl")
    # the monitor reads the capture prefix the batch pipeline's Capture step writes under
    assert schedule_parameters()["CaptureUri"] == capture + "batch"
    assert json.loads(next(p["Value"] for p in listed if p["Name"] == "MonitorConfig"))[
        "model_version"
    ] == (version.version)

    # its job runs in the account hosting staging, as that account's execution role
    definition = admin_client("sagemaker").describe_pipeline(PipelineName=monitor)
    (step,) = json.loads(definition["PipelineDefinition"])["Steps"]
    assert step["Arguments"]["RoleArn"] == batch.project.role_arn("staging")

    plan = batch.backend.teardown_plan("staging", manifest)
    assert f"monitoring schedule {monitor}" in plan and f"schedule {PIPELINE}" in plan
    batch.backend.teardown("staging", manifest)
    assert admin_client("scheduler").list_schedules()["Schedules"] == []
    assert admin_client("sagemaker").list_pipelines()["PipelineSummaries"] == []


def test_a_bad_input_file_fails_the_run_by_file_and_line_and_writes_nothing(
    batch: AwsHarness,
) -> None:
    """On AWS the CheckInput step's container writes its ``<file>:<line>: <reason>`` line to
    /opt/ml/output/message, which DescribeProcessingJob returns as ExitMessage (SageMaker
    Developer Guide, "Save and Access Metadata Information About Your Processing Job"); its
    FailureReason only says the container failed. Transform never starts."""
    manifest = deploy(batch, batch.seed_version().version)
    source, target = manifest["batch"]["input_prefix"], manifest["batch"]["output_prefix"]
    put_input(batch, source + "day-1.csv", "a1,1.0,2.0,0.1\na1,1.0,2.0,0.1\n")
    line = f"{source}day-1.csv:2: duplicate id 'a1' (first on line 1)"
    admin_client("sagemaker").create_processing_job(
        ProcessingJobName="pipelines-xyz-CheckInput-abc",
        ProcessingResources={
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            }
        },
        AppSpecification={"ImageUri": "image"},
        RoleArn=batch.project.role_arn("staging"),
    )
    job = batch.moto_sagemaker.processing_jobs["pipelines-xyz-CheckInput-abc"]
    job.processing_job_status = "Failed"
    job.failure_reason = "AlgorithmError: See job logs for more information"
    job.exit_message = line
    batch.pipeline_failure = "Step failure: One or multiple steps failed."
    batch.pipeline_steps = [
        {
            "StepName": "CheckInput",
            "StepStatus": "Failed",
            "Metadata": {"ProcessingJob": {"Arn": job.arn}},
        },
        {"StepName": "Transform", "StepStatus": "NotStarted", "Metadata": {}},
    ]

    result = batch.cli("batch-run", "--env", "staging")

    assert result.exit_code == 1
    assert f"step CheckInput: {line}" in " ".join(result.output.split())
    bucket, prefix = target[5:].split("/", 1)
    assert admin_client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0


def test_validate_builds_the_batch_definition_too(batch: AwsHarness) -> None:
    result = batch.cli("validate")
    assert result.exit_code == 0, result.output
    assert "pipelines/batch.py: definition builds (2 steps: CheckInput, Transform)" in result.output


def test_the_monitor_job_runs_as_the_serving_accounts_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline in prod's account cannot hand its job the dev account's role: the monitoring
    definition is built with the hosting account's execution role (as the batch one is)."""
    from gitops_testkit import use_stub_platform_pipelines, write_model_repo

    from ci_scripts.backends.aws.monitoring import AwsMonitor
    from ci_scripts.backends.aws.session import AwsClients
    from ci_scripts.project import ProjectConfig

    use_stub_platform_pipelines(monkeypatch)
    root = write_model_repo(tmp_path / "repo", deployment="batch", prod_account_id="333333333333")
    project = ProjectConfig.load(root)
    prod_role = "arn:aws:iam::333333333333:role/churn-model-sagemaker-execution"
    assert project.role_arn("prod") == prod_role
    (monitor,) = AwsMonitor(project, AwsClients("eu-west-1"))._definition("prod")["Steps"]
    assert monitor["Arguments"]["RoleArn"] == prod_role


def test_destroy_refuses_while_a_run_executes_and_removes_nothing(batch: AwsHarness) -> None:
    """SageMaker deletes a pipeline only when none of its executions runs (API_DeletePipeline,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeletePipeline.html)."""
    manifest = deploy(batch, batch.seed_version().version)
    running = admin_client("sagemaker").start_pipeline_execution(PipelineName=PIPELINE)
    execution = batch.moto_sagemaker.pipelines[PIPELINE].pipeline_executions[
        running["PipelineExecutionArn"]
    ]
    execution.pipeline_execution_status = "Executing"
    admin_client("sagemaker").start_pipeline_execution(PipelineName=PIPELINE)  # newer, done
    batch.reset_mutations()

    with pytest.raises(CIError, match="is Executing; wait for it"):
        batch.backend.teardown("staging", manifest)
    assert batch.mutations() == []


@pytest.mark.parametrize("monitoring", ["no", "yes"], ids=["monitoring-no", "capture-off"])
def test_a_batch_env_without_capture_deploys_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monitoring: str
) -> None:
    """Scheduler takes no empty pipeline parameter value (botocore: SageMakerPipelineParameterValue
    min 1; API_SageMakerPipelineParameter): with nothing to capture the schedule leaves CaptureUri
    out (the pipeline's default "" skips Capture), and prod deploys too."""
    with aws_harness(tmp_path, monkeypatch, deployment="batch", monitoring=monitoring) as aws:
        version = aws.seed_version()
        if monitoring == "yes":  # monitored project, capture turned off in the manifest
            for env in ("staging", "prod"):
                path = aws.project.manifest_path(env)
                data = json.loads(path.read_text())
                data["data_capture"]["enabled"] = False
                path.write_text(json.dumps(data, indent=2) + "\n")
            aws.commit("no capture")
        deploy(aws, version.version)
        params = schedule_parameters()
        assert "CaptureUri" not in params and all(params.values())
        put_input(aws, params["InputUri"] + "a.csv", "a1,1.0,2.0,0.1\n")
        assert aws.backend.run_batch("staging", {}).status == "Succeeded"
        aws.reset_mutations()
        result = aws.cli("deploy", "--env", "staging", "--commit", "c0000001", "--pr", "7")
        assert result.exit_code == 0, result.output
        assert aws.mutations() == []
