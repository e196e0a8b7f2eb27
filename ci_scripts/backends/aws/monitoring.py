"""The repo's own monitor on AWS: its pipeline, its schedule, its alarms, and reading its runs.

``deploy --env E`` (E's deploy role, in the account that hosts E; ci_scripts.monitoring says why
there) keeps three things in step with what E serves, after the endpoint is updated:

- the SageMaker pipeline ``<project>-<env>-monitor`` (ci_scripts.pipelines.monitoring;
  built only when the fingerprint of its inputs differs from the one stored with it, and
  CreatePipeline / UpdatePipeline only then: aws.upserts), run as the account's SageMaker
  execution role;
- the EventBridge Scheduler schedule ``<project>-<env>-monitor`` on ``monitoring.schedule``,
  whose target starts that pipeline with E's parameters (the served version's baseline, reports
  and model, the manifest's thresholds) through the scheduler role; a changed threshold or
  schedule is an UpdateSchedule, never a resource in use;
- two CloudWatch alarms on the metrics the monitor publishes (any drifted feature, any quality,
  bias or attribution violation), plus empty seed objects that keep the job's prefix inputs from
  being empty before the first capture or label.

``monitor`` (E's read-only role) reads the newest run's ``summary.json`` under
``monitoring/<env>/runs/`` of the artifact bucket.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts import model_quality as mq
from ci_scripts import monitoring
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, error_code, is_not_found
from ci_scripts.backends.aws.registry import split_s3_uri
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.aws.upserts import (
    PipelinePlan,
    explicit_plan,
    pipeline_schedule_request,
    plan_pipeline,
    put_schedule,
    schedule_parameters,
    upsert_pipeline,
)
from ci_scripts.backends.base import ModelVersion, MonitoringResult
from ci_scripts.errors import CIError
from ci_scripts.manifest import spec
from ci_scripts.project import ProjectConfig

log = logging.getLogger(__name__)

ALARM_PERIOD_SECONDS = 3600
# Deployments whose traffic the monitor reads: an endpoint's data capture, or (batch) the capture
# records the batch pipeline's Capture step writes under the same prefix (aws.batch).
MONITORED_TYPES = ("realtime", "batch")


class AwsMonitor:
    """One project's monitoring pipelines, schedules and results."""

    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    # -- deploy: keep the monitor in step with the served version ----------------------------
    def prepare(
        self, env: str, manifest: dict[str, Any], version: ModelVersion
    ) -> PipelinePlan | None:
        """Before deploy's first change: plan the monitoring pipeline (its definition built only
        when its inputs changed) and check the run's parameters (a CIError here changes
        nothing). None when no monitor applies."""
        view = spec(manifest)
        watched = view.endpoint.type in MONITORED_TYPES
        if not (self.project.monitoring and watched and view.data_capture.enabled):
            return None
        if isinstance(monitoring.version_inputs(version), str):
            return None  # sync says why, and leaves the monitor as it is
        monitoring.parameters(
            self.project, env, manifest, version, since=_iso_now(), publish_metrics=True
        )
        return self._plan(env)

    def _plan(self, env: str, definition: dict[str, Any] | None = None) -> PipelinePlan:
        """The monitoring pipeline of ``env``: ``definition`` as given, else built from
        ci_scripts/pipelines/monitoring.py when its inputs changed. Its job runs in the account
        hosting ``env``, as that account's execution role (a job cannot be given another
        account's role)."""
        sagemaker = self.clients("sagemaker")
        name = monitoring.pipeline_name(self.project, env)
        role = self.project.role_arn(env)
        description = f"The monitor of {self.project.endpoint_name(env)}"
        if definition is not None:
            return explicit_plan(
                sagemaker, name=name, definition=definition, role=role, description=description
            )
        return plan_pipeline(
            sagemaker,
            self.project,
            name=name,
            module=monitoring.MONITORING_MODULE,
            role=role,
            description=description,
            role_arn=role,
        )

    def _definition(self, env: str) -> dict[str, Any]:
        """The monitoring definition for ``env``, built (what ``_plan`` builds when needed)."""
        from ci_scripts.pipeline_module import build_definition

        return build_definition(
            self.project, monitoring.MONITORING_MODULE, role_arn=self.project.role_arn(env)
        )

    def sync(
        self,
        env: str,
        manifest: dict[str, Any],
        version: ModelVersion,
        definition: PipelinePlan | dict[str, Any] | None = None,
    ) -> str:
        """Return what was done (one line). ``definition``: the plan ``prepare`` made, or the
        monitoring pipeline's JSON as it is; else planned here (built from
        ci_scripts/pipelines/monitoring.py when its inputs changed)."""
        schedule = monitoring.schedule_name(self.project, env)
        if not self.project.monitoring:
            return "no monitor (the project was generated with monitoring=no)"
        view = spec(manifest)
        if view.endpoint.type not in MONITORED_TYPES or not view.data_capture.enabled:
            if self._get_schedule(schedule) is not None:
                with aws_errors(f"schedule {schedule}"):
                    self.clients("scheduler").delete_schedule(Name=schedule)
                return f"schedule {schedule} deleted (no data capture)"
            return "no monitor (no data capture)"
        inputs = monitoring.version_inputs(version)
        if isinstance(inputs, str):
            log.warning("%s; %s not changed", inputs, schedule)
            return f"{inputs}; {schedule} not changed"
        current = self._get_schedule(schedule)
        since = self._since(current, version)
        parameters = monitoring.parameters(
            self.project, env, manifest, version, since=since, publish_metrics=True
        )
        plan = definition if isinstance(definition, PipelinePlan) else self._plan(env, definition)
        pipeline_arn = upsert_pipeline(
            self.clients("sagemaker"),
            plan,
            [
                {"Key": "project", "Value": self.project.project},
                {"Key": "environment", "Value": env},
            ],
        )
        # The capture and label seeds every time (lifecycle rules expire those prefixes); all
        # of them when the monitor is new (state/ never expires: one check is enough).
        self._seed(env, everything=plan.current is None or current is None)
        self._put_schedule(env, manifest, parameters, pipeline_arn, current)
        self._put_alarms(env)
        return f"monitor {monitoring.pipeline_name(self.project, env)}: version {version.version}"

    def _seed(self, env: str, everything: bool) -> None:
        s3 = self.clients("s3")
        seeds = monitoring.seed_uris if everything else monitoring.expiring_seed_uris
        for uri in seeds(self.project, env):
            bucket, key = split_s3_uri(uri)
            try:
                s3.head_object(Bucket=bucket, Key=key)
                continue
            except ClientError as exc:
                if not (is_not_found(exc) or error_code(exc) in ("404", "NoSuchKey")):
                    raise CIError(describe_aws_error(exc, uri)) from exc
            with aws_errors(uri):
                s3.put_object(Bucket=bucket, Key=key, Body=b"")

    def _get_schedule(self, name: str) -> dict[str, Any] | None:
        try:
            return self.clients("scheduler").get_schedule(Name=name)
        except ClientError as exc:
            if is_not_found(exc) or error_code(exc) == "ResourceNotFoundException":
                return None
            raise CIError(describe_aws_error(exc, f"schedule {name}")) from exc

    def _since(self, current: dict[str, Any] | None, version: ModelVersion) -> str:
        """When ``version`` began to be monitored: kept from the schedule while it is the same
        version (a threshold change must not forget the traffic so far), else now."""
        try:
            config = json.loads(schedule_parameters(current).get("MonitorConfig") or "{}")
        except ValueError:
            config = {}
        if config.get("model_version") == version.version and config.get("since"):
            return str(config["since"])
        return _iso_now()

    def _put_schedule(
        self,
        env: str,
        manifest: dict[str, Any],
        parameters: dict[str, str],
        pipeline_arn: str,
        current: dict[str, Any] | None,
    ) -> None:
        # a run missed is not worth two: the next one reads the same traffic (no retries)
        request = pipeline_schedule_request(
            name=monitoring.schedule_name(self.project, env),
            description=f"Starts {monitoring.pipeline_name(self.project, env)}",
            expression=monitoring.settings(manifest)["schedule"],
            pipeline_arn=pipeline_arn,
            role_arn=monitoring.scheduler_role_arn(self.project, env),
            parameters=parameters,
        )
        put_schedule(self.clients("scheduler"), request, current)

    def _put_alarms(self, env: str) -> None:
        """Create the monitor's alarms when they are not there yet (their settings never
        change with the manifest)."""
        cloudwatch = self.clients("cloudwatch")
        names = monitoring.alarm_names(self.project, env)
        with aws_errors(f"alarms of {monitoring.pipeline_name(self.project, env)}"):
            existing = set(self.clients.describe_alarms(list(names.values())))
        for metric, alarm in names.items():
            if alarm in existing:
                continue
            with aws_errors(f"alarm {alarm}"):
                cloudwatch.put_metric_alarm(
                    AlarmName=alarm,
                    AlarmDescription=f"The monitor of {env} found {metric} (see its report)",
                    Namespace=monitoring.namespace(self.project),
                    MetricName=metric,
                    Dimensions=[{"Name": "Environment", "Value": env}],
                    Statistic="Maximum",
                    Period=ALARM_PERIOD_SECONDS,
                    EvaluationPeriods=1,
                    Threshold=0.0,
                    ComparisonOperator="GreaterThanThreshold",
                    TreatMissingData="notBreaching",
                    Tags=[
                        {"Key": "project", "Value": self.project.project},
                        {"Key": "environment", "Value": env},
                    ],
                )

    # -- destroy: what the monitor of ``env`` leaves in the account ---------------------------
    def resources(self, env: str) -> list[str]:
        """The monitor's schedule, pipeline and alarms that exist for ``env`` (for destroy)."""
        found: list[str] = []
        schedule = monitoring.schedule_name(self.project, env)
        if self._get_schedule(schedule) is not None:
            found.append(f"schedule {schedule}")
        pipeline = monitoring.pipeline_name(self.project, env)
        try:
            self.clients("sagemaker").describe_pipeline(PipelineName=pipeline)
            found.append(f"pipeline {pipeline}")
        except ClientError as exc:
            if not (is_not_found(exc) or error_code(exc) == "ResourceNotFound"):
                raise CIError(describe_aws_error(exc, f"pipeline {pipeline}")) from exc
        names = list(monitoring.alarm_names(self.project, env).values())
        with aws_errors(f"alarms of {pipeline}"):
            alarms = self.clients("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        found += [f"alarm {a['AlarmName']}" for a in sorted(alarms, key=lambda a: a["AlarmName"])]
        return found

    def remove(self, env: str) -> list[str]:
        """Delete the schedule first (nothing starts the pipeline any more), then the pipeline
        and the alarms; return what was removed. Reports in S3 stay (lifecycle rules expire
        them)."""
        found = self.resources(env)
        schedule = monitoring.schedule_name(self.project, env)
        pipeline = monitoring.pipeline_name(self.project, env)
        if f"schedule {schedule}" in found:
            with aws_errors(f"schedule {schedule}"):
                self.clients("scheduler").delete_schedule(Name=schedule)
        if f"pipeline {pipeline}" in found:
            with aws_errors(f"pipeline {pipeline}"):
                self.clients("sagemaker").delete_pipeline(PipelineName=pipeline)
        alarms = [line.split(" ", 1)[1] for line in found if line.startswith("alarm ")]
        if alarms:
            with aws_errors(f"alarms of {pipeline}"):
                self.clients("cloudwatch").delete_alarms(AlarmNames=alarms)
        return found

    # -- monitor: read the newest run ----------------------------------------------------------
    def newest_summary(self, env: str, section: str) -> tuple[dict[str, Any] | None, str]:
        """(summary, folder) of the newest run whose ``section`` checked something, else of the
        newest run at all (its NoData says why)."""
        prefix = monitoring.runs_prefix(self.project, env)
        bucket, key = split_s3_uri(prefix)
        s3 = self.clients("s3")
        found: list[tuple[Any, str]] = []
        with aws_errors(f"{prefix}/"):
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key + "/"
            ):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/" + monitoring.SUMMARY_FILE):
                        found.append((item["LastModified"], item["Key"]))
        newest: tuple[dict[str, Any] | None, str] = (None, prefix)
        for _, summary_key in sorted(found, reverse=True):
            uri = f"s3://{bucket}/{summary_key}"
            with aws_errors(uri):
                body = s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read()
            summary = monitoring.parse_summary(body, uri)
            folder = uri.rsplit("/", 1)[0]
            if newest[0] is None:
                newest = (summary, folder)
            if (summary.get(section) or {}).get("status", "NoData") != "NoData":
                return summary, folder
        return newest

    def data_result(self, env: str) -> MonitoringResult:
        summary, folder = self.newest_summary(env, "data_quality")
        return monitoring.data_result(self.project, env, summary, folder)

    def quality_result(self, env: str) -> mq.QualityResult:
        summary, folder = self.newest_summary(env, "model_quality")
        return monitoring.quality_result(self.project, env, summary, folder)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
