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
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, error_code, is_not_found
from ci_scripts.backends.aws.monitoring_schedule import (
    JobKind,
    MonitoringSchedule,
    SchedulePlan,
    latest_finished_execution,
    no_data_reason,
    s3_parts,
)
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.base import MonitoringResult
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

log = logging.getLogger(__name__)


class AwsMonitoring:
    """Model Monitor data quality of one project's endpoints."""

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    def latest_result(self, env: str) -> MonitoringResult:
        schedule = dq.schedule_name(self.project.project, env)
        latest = latest_finished_execution(self.clients, env, schedule)
        result = MonitoringResult(env=env, schedule=schedule, status="NoData")
        if latest is None:
            result.failure_reason = f"monitoring schedule {schedule} has no finished execution yet"
            return result
        status = latest["MonitoringExecutionStatus"]
        result.checked_at = str(latest.get("ScheduledTime", ""))
        no_data = no_data_reason(schedule, latest, result.checked_at)
        if no_data:
            result.failure_reason = no_data
            return result
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
        bucket, key = s3_parts(base)
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
        bucket, key = s3_parts(uri)
        try:
            self.clients("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc) or error_code(exc) in ("403", "AccessDenied"):
                return False
            raise CIError(describe_aws_error(exc, uri)) from exc
        return True

    def _violations(self, report_uri: str) -> list[dict[str, str]]:
        uri = f"{report_uri}/{dq.VIOLATIONS_FILE}"
        bucket, key = s3_parts(uri)
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
class DataQualitySchedule(MonitoringSchedule):
    """One data quality job definition per served version, one schedule per environment.

    Job definitions are immutable, so a new version gets a new one
    (``<project>-<env>-dq-v<version>``) and the schedule is pointed at it; the previous
    definition is then deleted (:class:`MonitoringSchedule`). The baseline constraints are copied
    under ``monitoring/<env>/baselines/v<version>/`` with the manifest's
    ``monitoring.drift_threshold`` (the one place the threshold is set), next to the statistics
    they compare with.
    """

    kind = JobKind(
        label="data quality",
        monitoring_type="DataQuality",
        api="data_quality",
        absent="monitoring schedule",
    )

    def schedule_name(self, env: str) -> str:
        return dq.schedule_name(self.project.project, env)

    def plan(
        self, env: str, manifest: dict[str, Any], version: Any, schedule: str
    ) -> SchedulePlan | str:
        baseline = self._baseline(version)
        if baseline is None:
            message = (
                f"{version.arn}: no data quality baseline in Model Monitor's format "
                f"(statistics.json + constraints.json) in the registry; {schedule} not changed"
            )
            log.warning(message)
            return message
        statistics_uri, constraints_uri = baseline
        definition = f"{self.project.project}-{env}-dq-v{version.version}"
        threshold = float((manifest.get("monitoring") or {}).get("drift_threshold", 0.1))

        def create() -> None:
            env_constraints = self._copy_constraints(
                env, version.version, constraints_uri, threshold
            )
            self._create_definition(env, definition, statistics_uri, env_constraints)

        return SchedulePlan(definition, create, note=f", threshold {threshold}")

    def _baseline(self, version: Any) -> tuple[str, str] | None:
        uri = (version.baseline_uri or "").rstrip("/")
        if not uri.endswith((dq.STATISTICS_FILE, dq.CONSTRAINTS_FILE)):
            return None
        folder = uri.rsplit("/", 1)[0]
        return f"{folder}/{dq.STATISTICS_FILE}", f"{folder}/{dq.CONSTRAINTS_FILE}"

    def _copy_constraints(self, env: str, version: int, source: str, threshold: float) -> str:
        bucket, key = s3_parts(source)
        with aws_errors(source):
            document = json.loads(
                self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            )
        target = self._baselines_uri(env, version, dq.CONSTRAINTS_FILE)
        self._put_json(target, dq.with_threshold(document, threshold))
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
                DataQualityJobOutputConfig=self._job_output(
                    dq.report_prefix(p.artifact_bucket, env)
                ),
                **self._job_resources(env),
            )
