"""SageMaker Model Monitor for the aws backend: read the latest data quality results.

``monitor --env E`` reads what the environment's schedule ``<project>-<env>-data-quality`` found
last: ListMonitoringExecutions (newest first) gives the execution and its scheduled hour, which
names its report folder under the job definition's output (``data_quality.report_prefix``, the
only place prod's read-only role may read), and ``constraint_violations.json`` there the
violations, in the format the local backend writes too. An execution that failed because no
request was captured in its window is "no data", not a failure (Model Monitor's reason:
"Job inputs had no data").
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts import data_quality as dq
from ci_scripts.backends.aws_errors import aws_errors, describe_aws_error, error_code, is_not_found
from ci_scripts.backends.aws_session import AwsClients
from ci_scripts.backends.base import MonitoringResult
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

log = logging.getLogger(__name__)

FINISHED = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
NO_DATA_MARKERS = ("inputs had no data", "no data")


class AwsMonitoring:
    """Model Monitor data quality of one project's endpoints."""

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    def latest_result(self, env: str) -> MonitoringResult:
        schedule = dq.schedule_name(self.project.project, env)
        sagemaker = self.clients("sagemaker")
        try:
            summaries = sagemaker.list_monitoring_executions(
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
        latest = next((s for s in summaries if s["MonitoringExecutionStatus"] in FINISHED), None)
        result = MonitoringResult(env=env, schedule=schedule, status="NoData")
        if latest is None:
            result.failure_reason = f"monitoring schedule {schedule} has no finished execution yet"
            return result
        status = latest["MonitoringExecutionStatus"]
        result.checked_at = str(latest.get("ScheduledTime", ""))
        reason = str(latest.get("FailureReason") or "")
        if status in ("Failed", "Stopped"):
            if any(marker in reason.lower() for marker in NO_DATA_MARKERS):
                result.failure_reason = f"execution at {result.checked_at}: {reason}"
                return result
            raise CIError(
                f"monitoring schedule {schedule}: execution at {result.checked_at} {status}: "
                f"{reason or 'no reason given'}"
            )
        result.status = status
        if status == "Completed":
            return result
        result.report_uri = self._report_uri(env, schedule, latest.get("ScheduledTime"))
        result.violations = self._violations(result.report_uri)
        return result

    def _report_uri(self, env: str, schedule: str, scheduled: Any) -> str:
        """The execution's report folder: ``<output>/<endpoint>/<schedule>/YYYY/MM/DD/HH``.

        Model Monitor names it after the scheduled hour under the job definition's output URI
        (``dq.report_prefix``, where the read-only role may read). When the hour's folder is
        not where it should be, the newest report under the schedule's prefix is taken.
        """
        prefix = dq.report_prefix(self.project.artifact_bucket, env)
        base = f"{prefix}/{self.project.endpoint_name(env)}/{schedule}"
        if isinstance(scheduled, datetime):
            folder = f"{base}/{scheduled.astimezone(UTC).strftime('%Y/%m/%d/%H')}"
            if self._exists(f"{folder}/{dq.VIOLATIONS_FILE}"):
                return folder
        bucket, _, key = base.removeprefix("s3://").partition("/")
        newest: tuple[Any, str] | None = None
        with aws_errors(f"{base}/"):
            pages = self.clients("s3").get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=key + "/"):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/" + dq.VIOLATIONS_FILE) and (
                        newest is None or item["Key"] > newest[1]
                    ):
                        newest = (item["LastModified"], item["Key"])
        if newest is None:
            raise CIError(f"{base}/: no {dq.VIOLATIONS_FILE} from monitoring schedule {schedule}")
        return f"s3://{bucket}/{newest[1].rsplit('/', 1)[0]}"

    def _exists(self, uri: str) -> bool:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            self.clients("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc) or error_code(exc) in ("403", "AccessDenied"):
                return False
            raise CIError(describe_aws_error(exc, uri)) from exc
        return True

    def _violations(self, report_uri: str) -> list[dict[str, str]]:
        uri = f"{report_uri}/{dq.VIOLATIONS_FILE}"
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        with aws_errors(uri):
            body = self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            document: Any = json.loads(body)
            violations = document["violations"]
            if not isinstance(violations, list):
                raise TypeError("'violations' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise CIError(f"{uri}: not a constraint_violations.json report: {exc}") from None
        return [
            {
                "feature_name": str(v.get("feature_name", "")),
                "constraint_check_type": str(v.get("constraint_check_type", "")),
                "description": str(v.get("description", "")),
            }
            for v in violations
            if isinstance(v, dict)
        ]


# -- the schedule deploy keeps in step with the served version -----------------------------------
def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class DataQualitySchedule:
    """One data quality job definition per served version, one schedule per environment.

    Job definitions are immutable, so a new version gets a new one
    (``<project>-<env>-dq-v<version>``) and the schedule is pointed at it; the previous
    definition is then deleted. The baseline constraints are copied under
    ``monitoring/<env>/baselines/v<version>/`` with the manifest's ``monitoring.drift_threshold``
    (the one place the threshold is set), next to the statistics they compare with.
    """

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    def sync(self, env: str, manifest: dict[str, Any], version: Any) -> str:
        """Create, replace or remove ``env``'s schedule; return what was done (one line).

        Logged, not returned to deploy: the endpoint's state (and deploy's no-op test) stays
        the endpoint's alone."""
        schedule = dq.schedule_name(self.project.project, env)
        if not self.project.monitoring:
            return "no monitoring schedule (the project was generated with monitoring=no)"
        capture = (manifest.get("data_capture") or {}).get("enabled", False)
        realtime = (manifest.get("endpoint") or {}).get("type") == "realtime"
        if not realtime:  # serverless endpoints capture nothing: no schedule was ever made
            return "no monitoring schedule (serverless endpoint)"
        if not capture:
            current = self._describe(schedule)
            if current:
                self._delete(schedule, current)
                return f"monitoring schedule {schedule} deleted (no data capture)"
            return "no monitoring schedule (no data capture)"
        baseline = self._baseline(version)
        if baseline is None:
            message = (
                f"{version.arn}: no data quality baseline in Model Monitor's format "
                f"(statistics.json + constraints.json) in the registry; {schedule} not changed"
            )
            log.warning(message)
            return message
        statistics_uri, constraints_uri = baseline
        current = self._describe(schedule)
        definition = f"{self.project.project}-{env}-dq-v{version.version}"
        cron = (manifest.get("monitoring") or {}).get("schedule", "cron(0 * ? * * *)")
        job = (current or {}).get("MonitoringScheduleConfig", {})
        if job.get("MonitoringJobDefinitionName") == definition and (
            job.get("ScheduleConfig", {}).get("ScheduleExpression") == cron
        ):
            return f"monitoring schedule {schedule} unchanged ({definition})"
        threshold = float((manifest.get("monitoring") or {}).get("drift_threshold", 0.1))
        env_constraints = self._copy_constraints(env, version.version, constraints_uri, threshold)
        self._create_definition(env, definition, statistics_uri, env_constraints)
        config = {
            "ScheduleConfig": {"ScheduleExpression": cron},
            "MonitoringJobDefinitionName": definition,
            "MonitoringType": "DataQuality",
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
        return f"monitoring schedule {schedule} {verb}: {definition}, threshold {threshold}"

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
        try:
            self.clients("sagemaker").delete_data_quality_job_definition(JobDefinitionName=name)
        except ClientError as exc:
            if not is_not_found(exc):
                raise CIError(
                    describe_aws_error(exc, f"data quality job definition {name}")
                ) from exc

    def _baseline(self, version: Any) -> tuple[str, str] | None:
        uri = (version.baseline_uri or "").rstrip("/")
        if not uri.endswith((dq.STATISTICS_FILE, dq.CONSTRAINTS_FILE)):
            return None
        folder = uri.rsplit("/", 1)[0]
        return f"{folder}/{dq.STATISTICS_FILE}", f"{folder}/{dq.CONSTRAINTS_FILE}"

    def _copy_constraints(self, env: str, version: int, source: str, threshold: float) -> str:
        s3 = self.clients("s3")
        bucket, key = _s3_parts(source)
        with aws_errors(source):
            document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        target = (
            f"s3://{self.project.artifact_bucket}/monitoring/{env}/baselines/v{version}/"
            f"{dq.CONSTRAINTS_FILE}"
        )
        bucket, key = _s3_parts(target)
        with aws_errors(target):
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(dq.with_threshold(document, threshold), indent=2).encode(),
                ContentType="application/json",
            )
        return target

    def _create_definition(
        self, env: str, name: str, statistics_uri: str, constraints_uri: str
    ) -> None:
        from sagemaker.core import image_uris  # only on this path: it is a heavy import

        p = self.project
        with aws_errors(f"data quality job definition {name}"):
            self.clients("sagemaker").create_data_quality_job_definition(
                JobDefinitionName=name,
                DataQualityBaselineConfig={
                    "ConstraintsResource": {"S3Uri": constraints_uri},
                    "StatisticsResource": {"S3Uri": statistics_uri},
                },
                DataQualityAppSpecification={
                    "ImageUri": image_uris.retrieve("model-monitor", p.region)
                },
                DataQualityJobInput={
                    "EndpointInput": {
                        "EndpointName": p.endpoint_name(env),
                        "LocalPath": "/opt/ml/processing/input/endpoint",
                    }
                },
                DataQualityJobOutputConfig={
                    "MonitoringOutputs": [
                        {
                            "S3Output": {
                                "S3Uri": dq.report_prefix(p.artifact_bucket, env),
                                "LocalPath": "/opt/ml/processing/output",
                                "S3UploadMode": "EndOfJob",
                            }
                        }
                    ]
                },
                JobResources={
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": "ml.m5.xlarge",
                        "VolumeSizeInGB": 20,
                    }
                },
                RoleArn=p.role_arn(env),
                StoppingCondition={"MaxRuntimeInSeconds": 3600},
            )
