"""What the data quality and model quality schedules of the aws backend share.

Both kinds (aws_monitoring.py, aws_model_quality.py) keep one Model Monitor schedule per
environment in step with the served version the same way: job definitions are immutable, so a
served version (and its constraints) gets its own definition, the schedule is created or pointed
at it, and the previous definition is deleted. Only the job kind differs: its label, its
``MonitoringType`` and the ``*_job_definition`` API names. The reading side shares how the latest
finished execution is found and when a failed one only means "no data".
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, is_not_found
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

FINISHED = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
NO_DATA_MARKERS = ("inputs had no data", "no data")
DEFAULT_CRON = "cron(0 * ? * * *)"


def s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# -- reading: the latest execution of a schedule ---------------------------------------------------
def latest_finished_execution(
    clients: AwsClients, env: str, schedule: str
) -> dict[str, Any] | None:
    """The newest execution of ``schedule`` that has finished, None when none has yet."""
    try:
        summaries = clients("sagemaker").list_monitoring_executions(
            MonitoringScheduleName=schedule,
            SortBy="ScheduledTime",
            SortOrder="Descending",
            MaxResults=10,
        )["MonitoringExecutionSummaries"]
    except ClientError as exc:
        if is_not_found(exc):
            raise CIError(
                f"monitoring schedule {schedule}: not found; deploy {env} with data capture "
                "enabled creates it"
            ) from exc
        raise CIError(describe_aws_error(exc, f"monitoring schedule {schedule}")) from exc
    return next((s for s in summaries if s["MonitoringExecutionStatus"] in FINISHED), None)


def no_data_reason(schedule: str, execution: dict[str, Any], checked_at: str) -> str | None:
    """For a Failed or Stopped ``execution``: the failure reason when it only means that no
    request was captured in its window (Model Monitor: "Job inputs had no data"); any other
    failure is raised. None for an execution that completed."""
    status = execution["MonitoringExecutionStatus"]
    if status not in ("Failed", "Stopped"):
        return None
    reason = str(execution.get("FailureReason") or "")
    if any(marker in reason.lower() for marker in NO_DATA_MARKERS):
        return f"execution at {checked_at}: {reason}"
    raise CIError(
        f"monitoring schedule {schedule}: execution at {checked_at} {status}: "
        f"{reason or 'no reason given'}"
    )


# -- writing: the schedule deploy keeps in step with the served version ---------------------------
@dataclass(frozen=True)
class JobKind:
    """What differs between the data quality and the model quality schedule."""

    label: str  # "data quality": in error contexts ("<label> job definition <name>")
    monitoring_type: str  # MonitoringScheduleConfig.MonitoringType
    api: str  # the SageMaker call names: delete_<api>_job_definition
    absent: str  # how the "no ... schedule (why)" lines name the schedule


@dataclass(frozen=True)
class SchedulePlan:
    """The job definition a served version needs, and how to make it when it is not there."""

    definition: str
    create: Callable[[], None]  # write the constraints, create the job definition
    note: str = ""  # appended to the "created"/"replaced" line


class MonitoringSchedule(ABC):
    """Create, replace or remove one environment's schedule of one job kind.

    A subclass names its kind, its schedule and, in :meth:`plan`, the job definition the served
    version needs (or why there can be none: that line is returned, nothing is changed).
    """

    kind: ClassVar[JobKind]

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    @abstractmethod
    def schedule_name(self, env: str) -> str:
        """The schedule's name for ``env``."""

    @abstractmethod
    def plan(self, env: str, manifest: dict[str, Any], version: Any, schedule: str) -> Any:
        """A :class:`SchedulePlan`, or the (logged) line saying why the schedule stays."""

    def sync(self, env: str, manifest: dict[str, Any], version: Any) -> str:
        """Return what was done (one line).

        Logged by the caller, not returned to deploy: the endpoint's state (and deploy's no-op
        test) stays the endpoint's alone."""
        schedule = self.schedule_name(env)
        absent = self.kind.absent
        if not self.project.monitoring:
            return f"no {absent} (the project was generated with monitoring=no)"
        if (manifest.get("endpoint") or {}).get("type") != "realtime":
            # serverless endpoints capture nothing: no schedule was ever made
            return f"no {absent} (serverless endpoint)"
        if not (manifest.get("data_capture") or {}).get("enabled", False):
            current = self._describe(schedule)
            if current:
                self._delete(schedule, current)
                return f"monitoring schedule {schedule} deleted (no data capture)"
            return f"no {absent} (no data capture)"
        plan = self.plan(env, manifest, version, schedule)
        if not isinstance(plan, SchedulePlan):
            return plan
        current = self._describe(schedule)
        definition = plan.definition
        cron = (manifest.get("monitoring") or {}).get("schedule", DEFAULT_CRON)
        job = (current or {}).get("MonitoringScheduleConfig", {})
        if job.get("MonitoringJobDefinitionName") == definition and (
            job.get("ScheduleConfig", {}).get("ScheduleExpression") == cron
        ):
            return f"monitoring schedule {schedule} unchanged ({definition})"
        plan.create()
        config = {
            "ScheduleConfig": {"ScheduleExpression": cron},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": self.kind.monitoring_type,
        }
        sagemaker = self.clients("sagemaker")
        with aws_errors(f"monitoring schedule {schedule}"):
            if current:
                sagemaker.update_monitoring_schedule(
                    MonitoringScheduleName=schedule, MonitoringScheduleConfig=config
                )
            else:
                sagemaker.create_monitoring_schedule(
                    MonitoringScheduleName=schedule,
                    MonitoringScheduleConfig=config,
                    Tags=[{"Key": "model_version", "Value": str(version.version)}],
                )
        old = job.get("MonitoringJobDefinitionName")
        if old and old != definition:
            self._delete_definition(old)
        verb = "replaced" if current else "created"
        return f"monitoring schedule {schedule} {verb}: {definition}{plan.note}"

    def exists(self, env: str) -> str | None:
        """The name of ``env``'s schedule when there is one (destroy lists it)."""
        schedule = self.schedule_name(env)
        return schedule if self._describe(schedule) else None

    def remove(self, env: str) -> str | None:
        """Delete ``env``'s schedule and its job definition (destroy); what was removed."""
        schedule = self.schedule_name(env)
        current = self._describe(schedule)
        if not current:
            return None
        self._delete(schedule, current)
        return f"monitoring schedule {schedule}"

    def _describe(self, schedule: str) -> dict[str, Any] | None:
        try:
            return self.clients("sagemaker").describe_monitoring_schedule(
                MonitoringScheduleName=schedule
            )
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, f"monitoring schedule {schedule}")) from exc

    def _delete(self, schedule: str, current: dict[str, Any]) -> None:
        with aws_errors(f"monitoring schedule {schedule}"):
            self.clients("sagemaker").delete_monitoring_schedule(MonitoringScheduleName=schedule)
        old = current.get("MonitoringScheduleConfig", {}).get("MonitoringJobDefinitionName")
        if old:
            self._delete_definition(old)

    def _delete_definition(self, name: str) -> None:
        delete = getattr(self.clients("sagemaker"), f"delete_{self.kind.api}_job_definition")
        try:
            delete(JobDefinitionName=name)
        except ClientError as exc:
            if not is_not_found(exc):
                raise CIError(
                    describe_aws_error(exc, f"{self.kind.label} job definition {name}")
                ) from exc

    def _put_json(self, uri: str, document: dict[str, Any]) -> None:
        """Write ``document`` (the environment's constraints) at ``uri``."""
        bucket, key = s3_parts(uri)
        with aws_errors(uri):
            self.clients("s3").put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(document, indent=2).encode(),
                ContentType="application/json",
            )

    def _baselines_uri(self, env: str, version: int, name: str) -> str:
        """Where ``env``'s constraints for ``version`` go, next to the baseline they judge by."""
        return f"s3://{self.project.artifact_bucket}/monitoring/{env}/baselines/v{version}/{name}"

    def _job_output(self, report_prefix: str) -> dict[str, Any]:
        """The job definition's output config: its reports under ``report_prefix``, encrypted
        with the project KMS key when there is one."""
        output: dict[str, Any] = {
            "MonitoringOutputs": [
                {
                    "S3Output": {
                        "S3Uri": report_prefix,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    }
                }
            ]
        }
        if self.project.kms_key_id:
            output["KmsKeyId"] = self.project.kms_key_id
        return output

    def _job_resources(self, env: str) -> dict[str, Any]:
        """What both kinds of job definition run with: instance, role, time limit."""
        return {
            "JobResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.xlarge",
                    "VolumeSizeInGB": 20,
                    **(
                        {"VolumeKmsKeyId": self.project.kms_key_id}
                        if self.project.kms_key_id
                        else {}
                    ),
                }
            },
            "RoleArn": self.project.role_arn(env),
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        }
