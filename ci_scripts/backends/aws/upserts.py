"""Create-or-update of the SageMaker pipelines and Scheduler schedules the aws backend keeps.

The training, monitoring and batch pipelines, and the schedules that start the monitoring and
batch pipelines, are kept the same way: described first, created when missing, updated only
when what SageMaker or Scheduler holds differs from what is wanted, so a deploy that changes
nothing makes no write call (the idempotence the IAM flows and the no-op tests check). A
pipeline's definition is built only when the fingerprint of its inputs differs from the one
stored with it (:func:`plan_pipeline`), so it costs no SDK import either.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, error_code, is_not_found
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


def check_request(client: Any, operation: str, request: dict[str, Any]) -> None:
    """Refuse ``request`` as botocore would send it (its service model's lengths, patterns and
    required members), before any change is made: a CIError naming the operation."""
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    shape = client.meta.service_model.operation_model(operation).input_shape
    try:
        validate_parameters(request, shape)
    except ParamValidationError as exc:
        name = request.get("Name") or request.get("PipelineName") or operation
        raise CIError(f"{name}: {operation} would be refused ({exc}); nothing changed") from exc


def same_json(current: Any, wanted: str) -> bool:
    """``current`` (a definition as DescribePipeline returns it, or None) holds ``wanted``."""
    try:
        return current is not None and json.loads(current) == json.loads(wanted)
    except ValueError:
        return False


# The fingerprint of a pipeline's inputs rides in its PipelineDescription (max 3072 characters,
# API_CreatePipeline / API_UpdatePipeline): DescribePipeline, the one read an upsert makes
# anyway, returns it, so knowing that nothing changed costs no extra call (a tag would cost
# ListTags).
FINGERPRINT = re.compile(r"\[inputs ([0-9a-f]{32})\]")


def stored_fingerprint(current: dict[str, Any] | None) -> str | None:
    """The inputs fingerprint a DescribePipeline answer carries, None when it has none."""
    found = FINGERPRINT.search(str((current or {}).get("PipelineDescription") or ""))
    return found.group(1) if found else None


def describe_pipeline(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribePipeline's answer, None when the pipeline does not exist."""
    try:
        return sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) == "ResourceNotFound":
            return None
        raise CIError(describe_aws_error(exc, f"pipeline {name}")) from exc


def runs_as_planned(current: dict[str, Any] | None, role: str, mark: str) -> bool:
    """The pipeline exists, runs as ``role`` and was built from inputs fingerprinted ``mark``."""
    return (
        current is not None
        and current.get("RoleArn") == role
        and stored_fingerprint(current) == mark
    )


@dataclass(frozen=True)
class PipelinePlan:
    """One pipeline's upsert, worked out before any change: what runs (``current``), the
    fingerprint of the wanted definition's inputs and, only when they differ from what runs,
    the definition itself (``body``; None: nothing to build, nothing to write)."""

    name: str
    role: str
    description: str
    fingerprint: str
    current: dict[str, Any] | None
    body: str | None

    @property
    def unchanged(self) -> bool:
        return self.body is None

    @property
    def definition(self) -> dict[str, Any]:
        """The wanted definition: the one built, else the one running (the same inputs)."""
        source = (
            self.body if self.body is not None else (self.current or {}).get("PipelineDefinition")
        )
        return json.loads(source or "{}")

    @property
    def wanted_description(self) -> str:
        return f"{self.description} [inputs {self.fingerprint}]"[:3072]

    @cached_property  # compares whole definitions; asked by a deploy's progress and the upsert
    def write(self) -> str | None:
        """The call :func:`upsert_pipeline` makes: CreatePipeline, UpdatePipeline (the
        definition, role or recorded fingerprint differ from what runs) or None."""
        current = self.current
        if current is None:
            return "CreatePipeline"
        if self.body is None or (
            same_json(current.get("PipelineDefinition"), self.body)
            and current.get("RoleArn") == self.role
            and current.get("PipelineDescription") == self.wanted_description
        ):
            return None
        return "UpdatePipeline"


def plan_pipeline(
    sagemaker: Any,
    project: ProjectConfig,
    *,
    name: str,
    module: str,
    role: str,
    description: str,
    **overrides: Any,
) -> PipelinePlan:
    """Describe ``name`` and build ``module``'s definition only when the inputs it is built from
    (ci_scripts.definition_inputs.fingerprint) or the role differ from what runs: the build
    imports the sagemaker SDK and runs the pipeline code, seconds a command that changes nothing
    should not pay. A CIError from the build comes before any change."""
    from ci_scripts.definition_inputs import build_overrides, fingerprint

    current = describe_pipeline(sagemaker, name)
    settings = build_overrides(project, **overrides)
    mark = fingerprint(project, module, settings)
    if runs_as_planned(current, role, mark):
        return PipelinePlan(name, role, description, mark, current, body=None)
    from ci_scripts.pipeline_module import build_definition  # imports the sagemaker SDK

    body = json.dumps(build_definition(project, module, **settings), sort_keys=True)
    return PipelinePlan(name, role, description, mark, current, body)


def explicit_plan(
    sagemaker: Any, *, name: str, definition: dict[str, Any], role: str, description: str
) -> PipelinePlan:
    """A plan for a definition given as it is (its own content is its input)."""
    body = json.dumps(definition, sort_keys=True)
    mark = hashlib.sha256(body.encode()).hexdigest()[:32]
    current = describe_pipeline(sagemaker, name)
    built = None if runs_as_planned(current, role, mark) else body
    return PipelinePlan(name, role, description, mark, current, built)


def upsert_pipeline(sagemaker: Any, plan: PipelinePlan, tags: list[dict[str, str]]) -> str:
    """Create the planned pipeline, or update it when its definition, role or recorded
    fingerprint differ from what runs; its ARN. An unchanged plan makes no call."""
    current = plan.current
    with aws_errors(f"pipeline {plan.name}"):
        if plan.write == "CreatePipeline":
            return sagemaker.create_pipeline(
                PipelineName=plan.name,
                PipelineDefinition=plan.body,
                PipelineDescription=plan.wanted_description,
                RoleArn=plan.role,
                ClientRequestToken=str(uuid.uuid4()),
                Tags=tags,
            )["PipelineArn"]
        if plan.write is None:
            return (current or {})["PipelineArn"]
        # Also when only the fingerprint is new (inputs changed, the definition did not): the
        # next command then finds it and skips the build.
        return sagemaker.update_pipeline(
            PipelineName=plan.name,
            PipelineDefinition=plan.body,
            PipelineDescription=plan.wanted_description,
            RoleArn=plan.role,
        )["PipelineArn"]


def schedule_parameters(schedule: dict[str, Any] | None) -> dict[str, str]:
    """The pipeline parameters a schedule (GetSchedule's answer) starts its pipeline with."""
    target = (schedule or {}).get("Target") or {}
    listed = (target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList") or []
    return {p["Name"]: p["Value"] for p in listed}


def pipeline_schedule_request(
    *,
    name: str,
    description: str,
    expression: str,
    pipeline_arn: str,
    role_arn: str,
    parameters: dict[str, str],
) -> dict[str, Any]:
    """A CreateSchedule/UpdateSchedule request that starts a SageMaker pipeline (UTC, no
    flexible window, a missed run not retried: the next one reads what is there then)."""
    return {
        "Name": name,
        "Description": description,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": pipeline_arn,
            "RoleArn": role_arn,
            "SageMakerPipelineParameters": {
                "PipelineParameterList": [
                    {"Name": k, "Value": v} for k, v in sorted(parameters.items())
                ]
            },
            "RetryPolicy": {"MaximumRetryAttempts": 0},
        },
    }


def same_schedule(current: dict[str, Any], request: dict[str, Any]) -> bool:
    """GetSchedule's answer says what CreateSchedule was given (the fields compared here)."""
    target, wanted = current.get("Target") or {}, request["Target"]
    return (
        current.get("ScheduleExpression") == request["ScheduleExpression"]
        and current.get("ScheduleExpressionTimezone", "UTC")
        == request["ScheduleExpressionTimezone"]
        and current.get("State") == request["State"]
        and target.get("Arn") == wanted["Arn"]
        and target.get("RoleArn") == wanted["RoleArn"]
        and schedule_parameters(current) == schedule_parameters(request)
    )


def put_schedule(scheduler: Any, request: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Create the schedule, or update it when it differs from ``request``."""
    if current is not None and same_schedule(current, request):
        return
    with aws_errors(f"schedule {request['Name']}"):
        if current is None:
            scheduler.create_schedule(**request)
        else:
            scheduler.update_schedule(**request)
