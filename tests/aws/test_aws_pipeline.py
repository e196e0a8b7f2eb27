"""run-pipeline on the aws backend (moto) and validate's pipeline check."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_harness import AwsHarness, admin_client, aws_harness
from botocore.stub import Stubber
from gitops_testkit import run_cli, write_model_repo

from ci_scripts.backends.aws.pipeline import AwsPipelineRunner
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.imagetag import image_tag

REGISTERED = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-model/3"
STEPS_OK = [
    {"StepName": "Preprocess", "StepStatus": "Succeeded", "Metadata": {}},
    {"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {}},
    {"StepName": "Evaluate", "StepStatus": "Succeeded", "Metadata": {}},
    {"StepName": "CheckMetric", "StepStatus": "Succeeded", "Metadata": {}},
    {
        "StepName": "RegisterModel",
        "StepStatus": "Succeeded",
        "Metadata": {"RegisterModel": {"Arn": REGISTERED}},
    },
]


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_run_pipeline_upserts_starts_waits_and_reports_version(
    aws: AwsHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.pipeline_steps = STEPS_OK
    github_output = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))

    result = aws.cli("run-pipeline", "--wait", "--param", "MetricThreshold=0.8")

    assert result.exit_code == 0, result.output
    assert "Succeeded" in result.stdout and "registered model version 3" in result.stdout
    assert outputs(github_output)["version"] == "3"
    sagemaker = admin_client("sagemaker")
    pipeline = sagemaker.describe_pipeline(PipelineName="churn-model-train")
    assert pipeline["RoleArn"] == "arn:aws:iam::123456789012:role/churn-model-sagemaker-execution"
    definition = json.loads(pipeline["PipelineDefinition"])
    image = definition["Steps"][0]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(f"/churn-model:{image_tag(aws.project.root)}")  # tagged by content
    (execution,) = sagemaker.list_pipeline_executions(PipelineName="churn-model-train")[
        "PipelineExecutionSummaries"
    ]
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    data = aws.project.root / "data" / "dataset.csv"
    staged = f"churn-model/data/{hashlib.sha256(data.read_bytes()).hexdigest()[:16]}/dataset.csv"
    bucket = aws.project.artifact_bucket
    assert parameters == [
        {"Name": "MetricThreshold", "Value": "0.8"},
        {"Name": "InputDataUrl", "Value": f"s3://{bucket}/{staged}"},
    ]
    uploaded = admin_client("s3").get_object(Bucket=bucket, Key=staged)["Body"].read()
    assert uploaded == data.read_bytes()


def test_unchanged_definition_and_data_are_not_sent_again(aws: AwsHarness) -> None:
    assert aws.cli("run-pipeline").exit_code == 0
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert aws.mutations() == ["sagemaker:StartPipelineExecution"]

    with (aws.project.root / "data" / "dataset.csv").open("a") as handle:
        handle.write("1,1.0,1.0,0.5\n")  # new data: new key, so no stale cached steps
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert aws.mutations() == ["s3:PutObject", "sagemaker:StartPipelineExecution"]

    (aws.project.root / "Dockerfile").write_text("FROM python:3.12-slim\n")  # new image tag
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert aws.mutations() == ["sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution"]


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules whose definition is built from now on (each build imports the SDK on a
    real repo: seconds)."""
    import ci_scripts.pipeline_module as pipeline_module

    built: list[str] = []
    real = pipeline_module.build_definition

    def counted(project: Any, module: str = "pipelines.pipeline", **overrides: Any) -> Any:
        built.append(module)
        return real(project, module, **overrides)

    monkeypatch.setattr(pipeline_module, "build_definition", counted)
    return built


def test_run_pipeline_with_unchanged_inputs_builds_no_definition(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#27: the fingerprint of the definition's inputs rides in the pipeline's description, so
    run-pipeline with unchanged code builds nothing (no SDK import: 9 s before) and writes
    nothing but the start; a changed input builds and updates."""
    built = count_builds(monkeypatch)
    assert aws.cli("run-pipeline").exit_code == 0
    assert built == ["pipelines.pipeline"]
    described = admin_client("sagemaker").describe_pipeline(PipelineName="churn-model-train")
    assert re.search(r"\[inputs [0-9a-f]{32}\]$", described["PipelineDescription"])
    aws.reset_mutations()

    assert aws.cli("run-pipeline").exit_code == 0

    assert built == ["pipelines.pipeline"]
    assert aws.mutations() == ["sagemaker:StartPipelineExecution"]
    # the pipeline (fingerprint and definition in one answer), the staged data's key, the start
    assert aws.calls == [
        "sagemaker:DescribePipeline",
        "s3:HeadObject",
        "sagemaker:StartPipelineExecution",
    ]
    executions = admin_client("sagemaker").list_pipeline_executions(
        PipelineName="churn-model-train"
    )["PipelineExecutionSummaries"]
    parameters = admin_client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=executions[-1]["PipelineExecutionArn"]
    )["PipelineParameters"]
    staged = next(p["Value"] for p in parameters if p["Name"] == "InputDataUrl")
    assert staged.endswith("/dataset.csv") and "/data/" in staged  # read from what runs

    pipeline_file = aws.project.root / "pipelines" / "pipeline.py"
    pipeline_file.write_text(
        pipeline_file.read_text().replace('"DefaultValue": 0.9', '"DefaultValue": 0.85')
    )
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert built == ["pipelines.pipeline", "pipelines.pipeline"]
    assert aws.mutations() == ["sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution"]


def test_a_new_fingerprint_is_recorded_even_when_the_definition_is_the_same(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input that does not reach the definition (a comment) still changes the fingerprint:
    one UpdatePipeline records it, so the next run skips the build again."""
    built = count_builds(monkeypatch)
    assert aws.cli("run-pipeline").exit_code == 0
    pipeline_file = aws.project.root / "pipelines" / "pipeline.py"
    pipeline_file.write_text(pipeline_file.read_text() + "\n# a comment\n")
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert aws.mutations() == ["sagemaker:UpdatePipeline", "sagemaker:StartPipelineExecution"]
    aws.reset_mutations()
    assert aws.cli("run-pipeline").exit_code == 0
    assert aws.mutations() == ["sagemaker:StartPipelineExecution"]
    assert len(built) == 2


def test_failed_execution_names_step_and_reason(aws: AwsHarness) -> None:
    aws.pipeline_failure = "Step failure: One or multiple steps failed."
    aws.pipeline_steps = [
        *STEPS_OK[:4],
        {
            "StepName": "MetricBelowThreshold",
            "StepStatus": "Failed",
            "Metadata": {
                "Fail": {
                    "ErrorMessage": "binary_classification_metrics.auc.value = 0.71 "
                    "is below MetricThreshold 0.9"
                }
            },
        },
    ]

    result = aws.cli("run-pipeline", "--wait")

    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("error: pipeline execution arn:aws:sagemaker:")
    assert "MetricBelowThreshold" in line and "0.71 is below MetricThreshold 0.9" in line


def test_failed_job_step_reason_comes_from_the_job(aws: AwsHarness) -> None:
    """Stubbed calls (moto has no ListPipelineExecutionSteps and no failed jobs):
    ListPipelineExecutionSteps x1, DescribeTrainingJob x1."""
    clients = AwsClients("eu-west-1", aws.session)
    runner = AwsPipelineRunner(aws.project, clients, waiter_delay=0)
    job = "arn:aws:sagemaker:eu-west-1:123456789012:training-job/pipelines-abc-train-x1"
    failed = {
        "StepName": "Train",
        "StepStatus": "Failed",
        "Metadata": {"TrainingJob": {"Arn": job}},
    }
    with Stubber(clients("sagemaker")) as stub:
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [failed]})
        stub.add_response(
            "describe_training_job",
            {
                "TrainingJobName": "pipelines-abc-train-x1",
                "TrainingJobArn": job,
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": "AlgorithmError: train.py: C must be > 0",
                "AlgorithmSpecification": {"TrainingInputMode": "File"},
                "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
                "ResourceConfig": {"VolumeSizeInGB": 1},
                "StoppingCondition": {},
                "CreationTime": "2025-01-01T00:00:00Z",
            },
            {"TrainingJobName": "pipelines-abc-train-x1"},
        )
        steps = runner.steps("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e")
        stub.assert_no_pending_responses()
    assert steps == [
        {
            "name": "Train",
            "status": "Failed",
            "failure_reason": "AlgorithmError: train.py: C must be > 0",
        }
    ]


def test_bad_param_is_refused(aws: AwsHarness) -> None:
    result = aws.cli("run-pipeline", "--param", "MetricThreshold")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --param 'MetricThreshold': expected NAME=VALUE"
    assert aws.mutations() == []


def test_execution_waiter_polls_until_done(aws: AwsHarness) -> None:
    """The declared PipelineExecutionComplete waiter. Stubbed calls (moto finishes executions at
    once): DescribePipelineExecution x3 for the waiter, x1 after, ListPipelineExecutionSteps x1."""
    clients = AwsClients("eu-west-1", aws.session)
    runner = AwsPipelineRunner(aws.project, clients, waiter_delay=0)
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/churn-model-train/execution/abc"
    with Stubber(clients("sagemaker")) as stub:
        for status in ("Executing", "Executing", "Succeeded", "Succeeded"):
            stub.add_response(
                "describe_pipeline_execution",
                {"PipelineExecutionArn": arn, "PipelineExecutionStatus": status},
                {"PipelineExecutionArn": arn},
            )
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": STEPS_OK})
        run = runner.wait(arn)
        stub.assert_no_pending_responses()
    assert (run.status, run.registered_version) == ("Succeeded", 3)
    assert [s["name"] for s in run.steps][-1] == "RegisterModel"


def test_validate_ok_and_pipeline_failures(tmp_path: Path) -> None:
    repo = write_model_repo(tmp_path / "repo")
    ok = run_cli(repo, None, "validate")
    assert ok.exit_code == 0, ok.output
    assert "pipelines/pipeline.py: definition builds (1 steps: Train)" in ok.stdout
    # The shipped manifests: staging on one instance says so; prod's default fleet canaries.
    assert "deploy/staging.json: rollout: all at once behind alarms: 1 instance" in ok.stdout
    assert "deploy/prod.json: rollout: canary of 1 of 2 instances (50% of traffic" in ok.stdout
    assert "warning" not in ok.stderr

    (repo / "pipelines" / "pipeline.py").write_text(
        "def definition(settings):\n    raise KeyError('x')\n"
    )
    broken = run_cli(repo, None, "validate")
    assert broken.exit_code == 1
    assert broken.stderr.startswith(
        "error: pipelines/pipeline.py: definition(settings) failed: KeyError"
    )

    (repo / "pipelines" / "pipeline.py").unlink()
    missing = run_cli(repo, None, "validate")
    assert missing.exit_code == 1 and "pipelines/pipeline.py: not found" in missing.stderr


def test_template_pipeline_validates_and_upserts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real pipelines/pipeline.py of the template (sagemaker SDK, built offline)."""
    pytest.importorskip("sagemaker")
    with aws_harness(tmp_path, monkeypatch, pipeline="template") as aws:
        ok = aws.cli("validate")
        assert ok.exit_code == 0, ok.output
        assert "Preprocess, Tune, DataBaseline, Evaluate, CheckBias, Explain" in ok.stdout
        assert aws.cli("run-pipeline").exit_code == 0
        definition = json.loads(
            admin_client("sagemaker").describe_pipeline(PipelineName="churn-model-train")[
                "PipelineDefinition"
            ]
        )
        assert {p["Name"] for p in definition["Parameters"]} >= {"MetricThreshold", "InputDataUrl"}
        assert image_tag(aws.project.root) in json.dumps(definition)

        # Unchanged code: the real pipeline is not built again (#27: 9 s of SDK before).
        import ci_scripts.pipeline_module as pipeline_module

        def no_build(*_: Any, **__: Any) -> Any:
            raise AssertionError("built an unchanged definition")

        monkeypatch.setattr(pipeline_module, "build_definition", no_build)
        aws.reset_mutations()
        again = aws.cli("run-pipeline")
        assert again.exit_code == 0, again.output
        assert aws.mutations() == ["sagemaker:StartPipelineExecution"]
