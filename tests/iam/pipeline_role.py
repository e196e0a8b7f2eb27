"""What SageMaker does as the training pipeline's execution role, for the IAM judge.

No CLI command makes these calls: SageMaker Pipelines makes them as the pipeline's role once
``run-pipeline`` has started an execution. They are derived from the real definition of the
template's pipeline (built offline, as CreatePipeline receives it), so a step the pipeline gains
without its grant fails the judge:

- each ``Tuning`` step: CreateHyperParameterTuningJob with the step's arguments (passing the
  execution role to the trials: iam:PassRole), AddTags on the tuning job and its trials (the
  SAR lists sagemaker:AddTags as a dependent action of CreateHyperParameterTuningJob),
  DescribeHyperParameterTuningJob while it runs, ListTrainingJobsForHyperParameterTuningJob for
  the best trial's model (the step's TrainingJobSummaries), StopHyperParameterTuningJob when the
  execution is stopped ("Tuning step":
  https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps-types.html);
- the definition's ``MlflowConfig``: the experiment named after the pipeline found or created
  in the tracking server, a run per execution, its parameters/metrics and tags, the run ended
  (sagemaker-mlflow actions on the mlflow-tracking-server:
  https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-create-tracking-server-iam.html).

Requests are recorded under ``run-pipeline`` (the job whose execution it is) with the execution
role as identity, so the judge evaluates that role's policies.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from gitops_testkit import write_model_repo
from iam_recorder import Request

from ci_scripts.pipeline_module import build_definition
from ci_scripts.project import ProjectConfig

COMMAND = "run-pipeline"
REGION = "eu-west-1"
# The judge's stacks get this as MlflowTrackingServerArn; the pipeline is built with it.
TRACKING_SERVER = "arn:aws:sagemaker:eu-west-1:{account}:mlflow-tracking-server/churn-tracking"
# Pipelines names the tuning job (at most 32 characters) and the job its trials.
TUNING_JOB = "a1b2c3d4e5f6-Tune-0A1b2C3d4E"


@cache
def _definition(root: str, tracking_server: str) -> dict[str, Any]:
    return build_definition(ProjectConfig.load(Path(root)), mlflow_tracking_arn=tracking_server)


def training_definition(tmp: Path, **answers: str) -> dict[str, Any]:
    """The template pipeline's definition for these answers, with a tracking server set."""
    account = answers["dev_account_id"]
    root = tmp / f"pipeline-repo-{account}"
    if not root.exists():
        write_model_repo(root, pipeline="template", **answers)
    return _definition(str(root), TRACKING_SERVER.format(account=account))


def pipeline_role_requests(definition: dict[str, Any], role_arn: str) -> list[Request]:
    """The execution role's requests for one execution of ``definition``."""
    account = role_arn.split(":")[4]
    requests: list[Request] = []

    def call(service: str, operation: str, **params: Any) -> None:
        requests.append(Request(COMMAND, role_arn, service, operation, params))

    for step in definition.get("Steps", []):
        if step.get("Type") != "Tuning":
            continue
        job = TUNING_JOB
        job_arn = f"arn:aws:sagemaker:{REGION}:{account}:hyper-parameter-tuning-job/{job.lower()}"
        trial_arn = f"arn:aws:sagemaker:{REGION}:{account}:training-job/{job.lower()}-001-0a1b2c3d"
        call(
            "sagemaker",
            "CreateHyperParameterTuningJob",
            HyperParameterTuningJobName=job,
            **step["Arguments"],
        )
        call("sagemaker", "AddTags", ResourceArn=job_arn, Tags=[{"Key": "k", "Value": "v"}])
        call("sagemaker", "AddTags", ResourceArn=trial_arn, Tags=[{"Key": "k", "Value": "v"}])
        call("sagemaker", "DescribeHyperParameterTuningJob", HyperParameterTuningJobName=job)
        call(
            "sagemaker",
            "ListTrainingJobsForHyperParameterTuningJob",
            HyperParameterTuningJobName=job,
        )
        call("sagemaker", "StopHyperParameterTuningJob", HyperParameterTuningJobName=job)
    mlflow = definition.get("MlflowConfig") or {}
    server = mlflow.get("MlflowResourceArn")
    if server:
        for operation in (
            "GetExperimentByName",
            "CreateExperiment",
            "CreateRun",
            "LogBatch",
            "SetTag",
            "UpdateRun",
        ):
            call("sagemaker-mlflow", operation, TrackingServerArn=server)
    return requests
