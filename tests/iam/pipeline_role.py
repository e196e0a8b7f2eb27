"""What SageMaker does as the pipelines' execution roles, for the IAM judge.

No CLI command makes these calls: SageMaker Pipelines makes them as a pipeline's role once an
execution starts (``run-pipeline`` for training; EventBridge Scheduler, ``batch-run`` and
``smoke-test`` for an environment's monitoring and batch pipelines), and the jobs it starts make
theirs as the role they are given (tests/iam/execution_role.py). They are derived from the real
definitions, built offline as CreatePipeline receives them (the training pipeline of the
template's ``pipelines/pipeline.py``, the platform's monitoring and batch pipelines, with the
layout's accounts and the project KMS key), run with the parameter values the loop really sent
(tests/iam/pipeline_values.py), so a step the pipelines gain without its grant fails the judge:

- ``Processing``: CreateProcessingJob with the step's arguments (iam:PassRole of its RoleArn),
  AddTags on the job, DescribeProcessingJob while it runs, StopProcessingJob when the execution
  is stopped; ``Training`` and ``Transform`` likewise (a transform job passes no role: it runs
  as its model's); ``Model``: CreateModel; ``RegisterModel``: CreateModelPackage in the group;
  ``Condition`` and ``Fail`` call nothing ("Types of steps",
  https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps-types.html). Tags on
  the jobs need sagemaker:AddTags (the SAR lists it as a dependent action of each Create*).
- ``Tuning``: CreateHyperParameterTuningJob with the step's arguments (passing the execution
  role to the trials: iam:PassRole), AddTags on the tuning job and its trials,
  DescribeHyperParameterTuningJob while it runs, ListTrainingJobsForHyperParameterTuningJob for
  the best trial's model (the step's TrainingJobSummaries), StopHyperParameterTuningJob when the
  execution is stopped; each trial is a training job of the TrainingJobDefinition.
- the definition's ``MlflowConfig``: the experiment named after the pipeline found or created
  in the tracking server, a run per execution, its parameters/metrics and tags, the run ended
  (sagemaker-mlflow actions on the mlflow-tracking-server:
  https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-create-tracking-server-iam.html).

The endpoints the loop deploys serve as their models' roles too (execution_role.endpoint). Each
request is recorded under the command that started the execution or deployed the endpoint, with
the role as identity, so the judge evaluates that role's policies.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from execution_role import Model, endpoint, processing_job, training_job, transform_job
from gitops_testkit import write_model_repo
from iam_recorder import Request
from pipeline_values import BEST_TRIAL, EXECUTION_ID, TUNING_JOB, Execution, job_name

from ci_scripts.batch import BATCH_MODULE
from ci_scripts.monitoring import MONITORING_MODULE
from ci_scripts.pipeline_module import build_definition
from ci_scripts.project import ProjectConfig

COMMAND = "run-pipeline"
REGION = "eu-west-1"
TRAINING_MODULE = "pipelines.pipeline"
# The judge's stacks get this as MlflowTrackingServerArn; the pipeline is built with it.
TRACKING_SERVER = "arn:aws:sagemaker:eu-west-1:{account}:mlflow-tracking-server/churn-tracking"
# Step types that call nothing: a Condition is decided by Pipelines itself, a Fail ends the run.
SILENT_STEPS = ("Condition", "Fail")
_REPOS: dict[tuple[str, ...], Path] = {}


@cache
def _definition(root: str, module: str, overrides: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return build_definition(ProjectConfig.load(Path(root)), module, **dict(overrides))


def model_repo(tmp: Path, **answers: str) -> Path:
    """The template's model repo for these answers' accounts, written once per session
    (definitions are cached by its path). The other answers (deployment, monitoring) choose
    which pipelines exist, not what a definition is built from (the model, its schema and the
    pyproject's pipeline keys), so one repo per account layout serves every combination."""
    accounts = {k: v for k, v in answers.items() if k.endswith("_account_id")}
    key = tuple(sorted(accounts.items()))
    if key not in _REPOS:
        root = tmp / f"pipeline-repo-{len(_REPOS)}"
        write_model_repo(root, pipeline="template", **accounts)
        _REPOS[key] = root
    return _REPOS[key]


def definition(
    tmp: Path,
    module: str,
    kms_key: str = "",
    settings: dict[str, Any] | None = None,
    **answers: str,
) -> dict[str, Any]:
    """The real definition of ``module`` for these answers (accounts), with the project key
    when given, as ci_scripts builds it: the training pipeline with a tracking server, an
    environment's pipelines with that environment's ``role_arn`` (and the batch pipeline's
    ``transform_instance_type``) in ``settings`` (PipelineSettings fields, hashable values)."""
    overrides = dict(settings or {})
    if module == TRAINING_MODULE:
        overrides["mlflow_tracking_arn"] = TRACKING_SERVER.format(account=answers["dev_account_id"])
    if kms_key:
        overrides["kms_key_arn"] = kms_key
    root = model_repo(tmp, **answers)
    return _definition(str(root), module, tuple(sorted(overrides.items())))


class Steps:
    """The requests of one execution of a definition, as ``role`` (the pipeline's)."""

    def __init__(self, command: str, role: str, models: dict[str, Model]) -> None:
        self.command, self.role, self.models = command, role, models
        self.account = role.split(":")[4]
        self.requests: list[Request] = []

    def call(self, service: str, operation: str, **params: Any) -> None:
        self.requests.append(Request(self.command, self.role, service, operation, params))

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{self.account}:{kind}/{name.lower()}"

    def job(self, kind: str, noun: str, name: str, args: dict[str, Any]) -> None:
        """Create<Kind>Job, its tags, Describe while it runs, Stop with the execution."""
        self.call("sagemaker", f"Create{noun}Job", **{f"{noun}JobName": name}, **args)
        self.call("sagemaker", "AddTags", ResourceArn=self.arn(kind, name), Tags=[_TAG])
        self.call("sagemaker", f"Describe{noun}Job", **{f"{noun}JobName": name})
        self.call("sagemaker", f"Stop{noun}Job", **{f"{noun}JobName": name})

    def execute(self, definition: dict[str, Any], parameters: dict[str, Any]) -> None:
        for step in Execution(definition, parameters).run():
            kind, args = step["Type"], step["Arguments"]
            name = job_name(step["Name"])
            if kind == "Processing":
                self.job("processing-job", "Processing", name, args)
                self.requests += processing_job(self.command, name, args)
            elif kind == "Training":
                self.job("training-job", "Training", name, args)
                self.requests += training_job(self.command, name, args)
            elif kind == "Transform":
                self.job("transform-job", "Transform", name, args)
                model = self.models.get(args["ModelName"])
                assert model, f"step {step['Name']}: no CreateModel made {args['ModelName']}"
                self.requests += transform_job(self.command, name, args, model)
            elif kind == "Tuning":
                self.tuning(args)
            elif kind == "Model":
                self.call("sagemaker", "CreateModel", ModelName=name, **args)
            elif kind == "RegisterModel":
                self.call("sagemaker", "CreateModelPackage", **args)
            else:
                assert kind in SILENT_STEPS, (
                    f"step {step['Name']}: type {kind} is not known to tests/iam/pipeline_role.py"
                )
        server = (definition.get("MlflowConfig") or {}).get("MlflowResourceArn")
        if server:
            for operation in (
                "GetExperimentByName",
                "CreateExperiment",
                "CreateRun",
                "LogBatch",
                "SetTag",
                "UpdateRun",
            ):
                self.call("sagemaker-mlflow", operation, TrackingServerArn=server)

    def tuning(self, args: dict[str, Any]) -> None:
        job = TUNING_JOB
        self.call(
            "sagemaker", "CreateHyperParameterTuningJob", HyperParameterTuningJobName=job, **args
        )
        self.call(
            "sagemaker",
            "AddTags",
            ResourceArn=self.arn("hyper-parameter-tuning-job", job),
            Tags=[_TAG],
        )
        self.call(
            "sagemaker", "AddTags", ResourceArn=self.arn("training-job", BEST_TRIAL), Tags=[_TAG]
        )
        self.call("sagemaker", "DescribeHyperParameterTuningJob", HyperParameterTuningJobName=job)
        self.call(
            "sagemaker",
            "ListTrainingJobsForHyperParameterTuningJob",
            HyperParameterTuningJobName=job,
        )
        self.call("sagemaker", "StopHyperParameterTuningJob", HyperParameterTuningJobName=job)
        self.requests += training_job(self.command, BEST_TRIAL, args["TrainingJobDefinition"])


_TAG = {"Key": "sagemaker:pipeline-execution", "Value": EXECUTION_ID}


def execution_requests(
    command: str,
    role: str,
    definition: dict[str, Any],
    parameters: dict[str, Any],
    models: dict[str, Model] | None = None,
) -> list[Request]:
    """The requests of one execution of ``definition`` run as ``role`` (the pipeline's) with
    ``parameters``; ``models``: the SageMaker Models its Transform steps may name."""
    steps = Steps(command, role, models or {})
    steps.execute(definition, parameters)
    return steps.requests


def _parameters(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {p["Name"]: p["Value"] for p in items or []}


def _unique(requests: list[Request]) -> list[Request]:
    """One of each request (executions with the same resources ask the same)."""
    seen: dict[str, Request] = {}
    for r in requests:
        key = json.dumps(
            [r.command, r.identity, r.service, r.operation, r.params, r.via], sort_keys=True
        )
        seen.setdefault(key, r)
    return list(seen.values())


def package_model(training: dict[str, Any]) -> tuple[str, str]:
    """(image, model data URL) of the model package the training pipeline registers."""
    for step in Execution(training).run():
        if step["Type"] == "RegisterModel":
            container = step["Arguments"]["InferenceSpecification"]["Containers"][0]
            return container["Image"], container["ModelDataUrl"]
    raise AssertionError("the training definition registers no model package")


def pipeline_role_requests(
    recorded: list[Request], tmp: Path, kms_key: str = "", **answers: str
) -> list[Request]:
    """What the loop's pipelines and endpoints do as their execution roles: every execution the
    loop started or scheduled, and every endpoint it deployed, from ``recorded``."""
    training = definition(tmp, TRAINING_MODULE, kms_key, **answers)
    image, model_data = package_model(training)
    models = {
        r.params["ModelName"]: Model(
            r.params["ModelName"], r.params["ExecutionRoleArn"], image, model_data
        )
        for r in recorded
        if r.operation == "CreateModel"
        and "ModelPackageName" in r.params.get("PrimaryContainer", {})
    }
    roles = {
        r.params["PipelineName"]: r.params["RoleArn"]
        for r in recorded
        if r.operation in ("CreatePipeline", "UpdatePipeline") and r.params.get("RoleArn")
    }
    requests: list[Request] = []
    for request, pipeline, parameters in _executions(recorded):
        role = roles.get(pipeline)
        assert role, f"{request.command}: starts {pipeline}, which no CreatePipeline made"
        if request.command == COMMAND:
            module, settings = TRAINING_MODULE, {}
        elif pipeline.endswith("-monitor"):
            module, settings = MONITORING_MODULE, {"role_arn": role}
        elif pipeline.endswith("-batch"):
            settings = {"role_arn": role, "transform_instance_type": parameters["InstanceType"]}
            module = BATCH_MODULE
        else:
            raise AssertionError(f"{request.command}: starts {pipeline}, a pipeline of no module")
        built = definition(tmp, module, kms_key, settings, **answers)
        requests += execution_requests(request.command, role, built, parameters, models)
    configs = {
        r.params["EndpointConfigName"]: r.params
        for r in recorded
        if r.operation == "CreateEndpointConfig"
    }
    for r in recorded:
        if (
            r.operation in ("CreateEndpoint", "UpdateEndpoint")
            and r.params["EndpointConfigName"] in configs
        ):
            config = configs[r.params["EndpointConfigName"]]
            requests += endpoint(r.command, r.params["EndpointName"], config, models)
    return _unique(requests)


def _executions(recorded: list[Request]) -> list[tuple[Request, str, dict[str, Any]]]:
    """(request, pipeline name, parameters) of every execution the loop started (or a schedule
    it created will start)."""
    found = []
    for r in recorded:
        if r.operation == "StartPipelineExecution":
            found.append(
                (r, r.params["PipelineName"], _parameters(r.params.get("PipelineParameters")))
            )
        elif r.operation in ("CreateSchedule", "UpdateSchedule"):
            target = r.params.get("Target") or {}
            sagemaker = target.get("SageMakerPipelineParameters")
            if sagemaker is not None:
                name = target["Arn"].rsplit("/", 1)[1]
                found.append((r, name, _parameters(sagemaker.get("PipelineParameterList"))))
    return found
