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
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts import data_quality as dq
from ci_scripts.backends.aws_errors import aws_errors, describe_aws_error, error_code, is_not_found
from ci_scripts.backends.aws_session import AwsClients
from ci_scripts.backends.base import MonitoringResult
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

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
