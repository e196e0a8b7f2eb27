"""Create-or-update of the SageMaker pipelines and Scheduler schedules the aws backend keeps.

The training, monitoring and batch pipelines, and the schedules that start the monitoring and
batch pipelines, are kept the same way: described first, created when missing, updated only
when what SageMaker or Scheduler holds differs from what is wanted, so a deploy that changes
nothing makes no write call (the idempotence the IAM flows and the no-op tests check).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ci_scripts.backends.aws.errors import aws_errors
from ci_scripts.errors import CIError


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


def pipeline_differs(current: dict[str, Any], body: str, role: str) -> bool:
    """An existing pipeline (its DescribePipeline answer) holds another definition or role."""
    return not (
        same_json(current.get("PipelineDefinition"), body) and current.get("RoleArn") == role
    )


def upsert_pipeline(
    sagemaker: Any,
    *,
    name: str,
    body: str,
    role: str,
    description: str,
    tags: list[dict[str, str]],
    current: dict[str, Any] | None,
) -> str:
    """Create ``name`` from ``body`` or update it when its definition or role differ (its
    DescribePipeline answer is ``current``, None when it does not exist); its ARN."""
    with aws_errors(f"pipeline {name}"):
        if current is None:
            return sagemaker.create_pipeline(
                PipelineName=name,
                PipelineDefinition=body,
                PipelineDescription=description,
                RoleArn=role,
                ClientRequestToken=str(uuid.uuid4()),
                Tags=tags,
            )["PipelineArn"]
        if not pipeline_differs(current, body, role):
            return current["PipelineArn"]
        return sagemaker.update_pipeline(PipelineName=name, PipelineDefinition=body, RoleArn=role)[
            "PipelineArn"
        ]


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
