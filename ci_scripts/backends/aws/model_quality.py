"""SageMaker Model Monitor model quality for the aws backend: the schedule and its results.

Deploy keeps one model quality schedule per environment (``<project>-<env>-model-quality``) in step
with the served version, next to the data quality one (aws_monitoring.py; both through
aws_monitoring_schedule.py): job definitions are immutable, so each (version, constraints) pair
gets its own ``<project>-<env>-mq-v<version>-<hash>``; the schedule is pointed at it and the old
definition deleted. The constraints are written from the version's registered metrics and the
manifest's ``monitoring.quality.max_metric_drop`` (:func:`ci_scripts.model_quality.constraints`).
The job merges the endpoint's capture with the labels under ``groundtruth/<env>/`` by inference id.

``monitor --env E --quality`` reads the latest execution's ``statistics.json`` (the live
metrics) from its report folder; the command judges them against the manifest as on local.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from ci_scripts import data_quality as dq
from ci_scripts import model_quality as mq
from ci_scripts.backends.aws.errors import aws_errors
from ci_scripts.backends.aws.monitoring_schedule import (
    JobKind,
    MonitoringSchedule,
    SchedulePlan,
    latest_finished_execution,
    no_data_reason,
    s3_parts,
)
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.base import ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

log = logging.getLogger(__name__)

CONSTRAINTS_KEY = "model_quality_constraints.json"


class ModelQualitySchedule(MonitoringSchedule):
    """Create, replace or remove ``env``'s model quality schedule for the served version."""

    kind = JobKind(
        label="model quality",
        monitoring_type="ModelQuality",
        api="model_quality",
        absent="model quality schedule",
    )

    def schedule_name(self, env: str) -> str:
        return mq.schedule_name(self.project.project, env)

    def plan(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, schedule: str
    ) -> SchedulePlan | str:
        registered = {k: v for k, v in version.metrics.items() if k in mq.METRICS}
        baseline = (version.baseline_uri or "").rstrip("/")
        if not registered or not baseline.endswith((dq.STATISTICS_FILE, dq.CONSTRAINTS_FILE)):
            # made together with the data quality schedule: a version without a Model Monitor
            # baseline (registered by an older pipeline) gets neither
            message = (
                f"{version.arn}: no evaluation metrics or no Model Monitor baseline in the "
                f"registry; {schedule} not changed"
            )
            log.warning(message)
            return message
        constraints = mq.constraints(registered, mq.settings(manifest)["max_metric_drop"])
        digest = hashlib.sha256(json.dumps(constraints, sort_keys=True).encode()).hexdigest()[:8]
        definition = f"{self.project.project}-{env}-mq-v{version.version}-{digest}"

        def create() -> None:
            uri = self._baselines_uri(env, version.version, CONSTRAINTS_KEY)
            self._put_json(uri, constraints)
            self.create_definition(env, definition, uri)

        return SchedulePlan(definition, create)

    def create_definition(self, env: str, name: str, constraints_uri: str) -> None:
        from sagemaker.core import image_uris  # only on this path: it is a heavy import

        p = self.project
        with aws_errors(f"model quality job definition {name}"):
            self.clients("sagemaker").create_model_quality_job_definition(
                JobDefinitionName=name,
                ModelQualityBaselineConfig={"ConstraintsResource": {"S3Uri": constraints_uri}},
                ModelQualityAppSpecification={
                    "ImageUri": image_uris.retrieve("model-monitor", p.region),
                    "ProblemType": "BinaryClassification",
                },
                ModelQualityJobInput={
                    "EndpointInput": {
                        "EndpointName": p.endpoint_name(env),
                        "LocalPath": "/opt/ml/processing/input/endpoint",
                        # serve answers {"predictions": [{"label", "probability"}]}; Model
                        # Monitor merges one label per request (the ground-truth format)
                        "InferenceAttribute": "predictions[0].label",
                        "ProbabilityAttribute": "predictions[0].probability",
                        "ProbabilityThresholdAttribute": 0.5,
                    },
                    "GroundTruthS3Input": {
                        "S3Uri": mq.ground_truth_prefix(p.capture_bucket(env), env)
                    },
                },
                ModelQualityJobOutputConfig=self._job_output(
                    mq.report_prefix(p.artifact_bucket, env)
                ),
                **self._job_resources(env),
            )


class AwsModelQuality:
    """Reads what the model quality schedule of ``env`` found last."""

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    def latest_result(self, env: str, version: ModelVersion | None) -> mq.QualityResult:
        schedule = mq.schedule_name(self.project.project, env)
        result = mq.QualityResult(env=env, schedule=schedule, status="NoData")
        if version is not None:
            result.model_version = version.version
            result.registered = {k: v for k, v in version.metrics.items() if k in mq.METRICS}
        latest = latest_finished_execution(self.clients, env, schedule)
        if latest is None:
            result.failure_reason = f"monitoring schedule {schedule} has no finished execution yet"
            return result
        status = latest["MonitoringExecutionStatus"]
        scheduled = latest.get("ScheduledTime")
        result.checked_at = str(scheduled or "")
        no_data = no_data_reason(schedule, latest, result.checked_at)
        if no_data:
            result.failure_reason = no_data
            return result
        result.report_uri = self._report_uri(env, schedule, scheduled)
        statistics = self._read(f"{result.report_uri}/{mq.STATISTICS_FILE}")
        result.live = mq.metric_values(statistics)
        result.labelled_rows = int((statistics.get("dataset") or {}).get("item_count") or 0)
        result.status = status
        return result

    def _report_uri(self, env: str, schedule: str, scheduled: Any) -> str:
        """``<output>/<endpoint>/<schedule>/YYYY/MM/DD/HH`` of the scheduled hour, else the
        newest folder holding a statistics.json under the schedule's prefix."""
        base = "/".join(
            [
                mq.report_prefix(self.project.artifact_bucket, env),
                self.project.endpoint_name(env),
                schedule,
            ]
        )
        bucket, key = s3_parts(base)
        s3 = self.clients("s3")
        newest = ""
        with aws_errors(f"{base}/"):
            if isinstance(scheduled, datetime):
                hour = scheduled.astimezone(UTC).strftime("%Y/%m/%d/%H")
                found = s3.list_objects_v2(
                    Bucket=bucket, Prefix=f"{key}/{hour}/{mq.STATISTICS_FILE}"
                )
                if found.get("KeyCount"):
                    return f"{base}/{hour}"
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key + "/"
            ):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/" + mq.STATISTICS_FILE) and item["Key"] > newest:
                        newest = item["Key"]
        if not newest:
            raise CIError(f"{base}/: no {mq.STATISTICS_FILE} from monitoring schedule {schedule}")
        return f"s3://{bucket}/{newest.rsplit('/', 1)[0]}"

    def _read(self, uri: str) -> dict[str, Any]:
        bucket, key = s3_parts(uri)
        with aws_errors(uri):
            body = self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError) as exc:
            raise CIError(f"{uri}: not a model quality statistics.json: {exc}") from None
        return document
