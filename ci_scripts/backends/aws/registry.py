"""SageMaker Model Registry as the Registry interface.

Packages live in the dev account; staging and prod read them cross-account, so every call names
packages and groups by ARN. A version's metrics come from the model-quality report the pipeline
attached (ModelMetrics.ModelQuality.Statistics, an S3 JSON object in SageMaker's format), and
hyperparameters from CustomerMetadataProperties:

- ``hyperparameters``: a JSON object of name -> value, and/or
- ``hyperparameter:<name>``: one value per key;
- ``metric:<name>``: a number, used when the report cannot be read;
- ``baseline_uri``: the training-data baseline of older versions (a baseline.csv).

The data quality baseline is DriftCheckBaselines' ModelDataQuality (else ModelMetrics'):
Model Monitor's statistics.json + constraints.json, which the monitoring schedule needs; a
``baseline_uri`` is used only when a version has neither. The Bias and Explainability reports
are read and summarized (ci_scripts.model_reports) for proposals.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts import model_reports
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, is_not_found
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.base import APPROVAL_STATUSES, ModelVersion, training_metadata
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

log = logging.getLogger(__name__)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CIError(f"{uri}: not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def flatten_metrics(report: Any) -> dict[str, float]:
    """``{"binary_classification_metrics": {"auc": {"value": 0.9}}}`` -> ``{"auc": 0.9}``."""
    metrics: dict[str, float] = {}
    if not isinstance(report, dict):
        return metrics
    for section in report.values():
        if not isinstance(section, dict):
            continue
        for name, entry in section.items():
            value = entry.get("value") if isinstance(entry, dict) else entry
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                metrics[name] = number
    return metrics


def metadata_parts(properties: dict[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    """Hyperparameters and fallback metrics from CustomerMetadataProperties."""
    hyperparameters: dict[str, str] = {}
    metrics: dict[str, float] = {}
    blob = properties.get("hyperparameters")
    if blob:
        try:
            parsed = json.loads(blob)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            hyperparameters.update({str(k): str(v) for k, v in parsed.items()})
    for key, value in properties.items():
        if key.startswith("hyperparameter:"):
            hyperparameters[key.split(":", 1)[1]] = value
        elif key.startswith("metric:"):
            try:
                metrics[key.split(":", 1)[1]] = float(value)
            except ValueError:
                continue
    return hyperparameters, metrics


def version_of(arn: str) -> int:
    return int(arn.rsplit("/", 1)[1])


class AwsRegistry:
    def __init__(self, project: ProjectConfig, clients: AwsClients) -> None:
        self.project = project
        self.clients = clients

    def group_arn(self, group: str) -> str:
        p = self.project
        return f"arn:aws:sagemaker:{p.region}:{p.accounts['dev']}:model-package-group/{group}"

    def package_arn(self, group: str, version: int) -> str:
        return self.project.model_package_arn(version, group)

    def list_versions(self, group: str) -> list[ModelVersion]:
        """Newest first. Summaries only (no metrics): ``get_version`` reads the full record."""
        sagemaker = self.clients("sagemaker")
        versions = []
        with aws_errors(f"model package group {group}"):
            pages = sagemaker.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=self.group_arn(group),
                ModelPackageType="Versioned",
                SortBy="CreationTime",
                SortOrder="Descending",
            )
            for page in pages:
                for item in page.get("ModelPackageSummaryList", []):
                    versions.append(
                        ModelVersion(
                            group=item.get("ModelPackageGroupName", group),
                            version=int(
                                item.get("ModelPackageVersion")
                                or version_of(item["ModelPackageArn"])
                            ),
                            arn=item["ModelPackageArn"],
                            approval_status=item.get("ModelApprovalStatus", ""),
                            model_data_url="",
                            image_uri="",
                            description=item.get("ModelPackageDescription", ""),
                            created=_iso(item.get("CreationTime")),
                        )
                    )
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get_version(self, group: str, version: int) -> ModelVersion | None:
        arn = self.package_arn(group, version)
        try:
            described = self.clients("sagemaker").describe_model_package(ModelPackageName=arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, f"model package {arn}")) from exc
        return self._to_version(described, group, version)

    def set_approval(self, group: str, version: int, status: str, description: str) -> ModelVersion:
        if status not in APPROVAL_STATUSES:
            raise CIError(f"approval status {status!r}: not one of {', '.join(APPROVAL_STATUSES)}")
        arn = self.package_arn(group, version)
        with aws_errors(f"model package {arn}"):
            self.clients("sagemaker").update_model_package(
                ModelPackageArn=arn,
                ModelApprovalStatus=status,
                ApprovalDescription=description[:1024],
            )
        updated = self.get_version(group, version)
        if updated is None:
            raise CIError(f"model package {arn}: disappeared while being approved")
        return updated

    def with_trials(self, version: ModelVersion) -> ModelVersion:
        """The trials of the tuning job named in ``version``'s metadata (the dev account's:
        only ``propose``, which runs there, asks), best first as the local registry records
        them; ``version`` unchanged when it was not tuned or the trials cannot be listed."""
        job = version.training.get("tuning_job")
        if not job or version.training.get("trials"):
            return version
        try:
            trials = self._trials(job, version.training.get("best_training_job", ""))
        except ClientError as exc:
            # The proposal still shows the best trial from the version's metadata.
            log.warning("trials of tuning job %s unreadable: %s", job, describe_aws_error(exc))
            return version
        if not trials:
            return version
        training = {**version.training, "trials": json.dumps(trials, separators=(",", ":"))}
        return dataclasses.replace(version, training=training)

    def with_checks(self, version: ModelVersion) -> ModelVersion:
        """``version`` with the summaries of its bias, explainability and data statistics
        reports, read from S3 (one GetObject each): only proposals show them, so get_version
        leaves them out and a deploy does not pay the reads (#27)."""
        if version.checks:
            return version
        checks = {}
        for kind, uri in version.reports.items():
            if kind in ("bias", "explainability", "data_statistics"):
                summary = model_reports.summarize(kind, self._read_json(uri, kind))
                if summary:
                    checks[kind] = summary
        return dataclasses.replace(version, checks=checks) if checks else version

    def _trials(self, job: str, best: str) -> list[dict[str, Any]]:
        """ListTrainingJobsForHyperParameterTuningJob, every page: each trial's name, status,
        objective (FinalHyperParameterTuningJobObjectiveMetric) and tuned hyperparameters.
        Best first: the registered best trial, then completed trials by objective in the
        tuning job's direction, then trials without an objective."""
        paginator = self.clients("sagemaker").get_paginator(
            "list_training_jobs_for_hyper_parameter_tuning_job"
        )
        summaries = [
            summary
            for page in paginator.paginate(HyperParameterTuningJobName=job)
            for summary in page.get("TrainingJobSummaries", [])
        ]
        trials, scored, direction = [], [], "Maximize"
        for summary in summaries:
            final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
            value = final.get("Value")
            direction = final.get("Type") or direction
            trial = {
                "job": summary.get("TrainingJobName", ""),
                "status": summary.get("TrainingJobStatus", ""),
                "objective": float(value) if value is not None else None,
                "hyperparameters": {
                    str(k): str(v) for k, v in (summary.get("TunedHyperParameters") or {}).items()
                },
            }
            (scored if trial["objective"] is not None else trials).append(trial)
        scored.sort(key=lambda t: t["objective"], reverse=direction == "Maximize")
        ranked = scored + trials
        ranked.sort(key=lambda t: t["job"] != best)  # stable: the registered trial first
        return ranked

    # -- details ----------------------------------------------------------------------------
    def _to_version(self, d: dict[str, Any], group: str, version: int) -> ModelVersion:
        containers = d.get("InferenceSpecification", {}).get("Containers") or [{}]
        properties = d.get("CustomerMetadataProperties") or {}
        hyperparameters, fallback_metrics = metadata_parts(properties)
        metrics = self._report_metrics(d) or fallback_metrics
        reports = model_reports.report_uris(d.get("ModelMetrics"), d.get("DriftCheckBaselines"))
        return ModelVersion(
            group=d.get("ModelPackageGroupName", group),
            version=int(d.get("ModelPackageVersion") or version),
            arn=d.get("ModelPackageArn", self.package_arn(group, version)),
            approval_status=d.get("ModelApprovalStatus", ""),
            model_data_url=containers[0].get("ModelDataUrl", ""),
            image_uri=containers[0].get("Image", ""),
            metrics=metrics,
            hyperparameters=hyperparameters,
            baseline_uri=_baseline_uri(d),
            description=d.get("ModelPackageDescription", ""),
            created=_iso(d.get("CreationTime")),
            approval_description=d.get("ApprovalDescription", "") or "",
            reports=reports,
            training=training_metadata(properties),
        )

    def _read_json(self, uri: str, what: str) -> Any:
        """A report's JSON, or None (logged) when it cannot be read: reviewers see less."""
        try:
            bucket, key = split_s3_uri(uri)
            return json.loads(self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        except (ClientError, CIError, ValueError) as exc:
            log.warning("%s report %s unreadable: %s", what, uri, describe_aws_error(exc))
            return None

    def _report_metrics(self, d: dict[str, Any]) -> dict[str, float]:
        uri = d.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if not uri:
            return {}
        try:
            bucket, key = split_s3_uri(uri)
            body = self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            return flatten_metrics(json.loads(body))
        except (ClientError, CIError, ValueError) as exc:
            # A package stays deployable when its report is unreadable; reviewers see no metrics.
            log.warning("metrics report %s unreadable: %s", uri, describe_aws_error(exc))
            return {}


def _baseline_uri(d: dict[str, Any]) -> str | None:
    """The data quality baseline: drift-check statistics.json (Model Monitor's format, what a
    monitoring schedule needs), else ModelMetrics', else an older version's ``baseline_uri``."""
    for source in (d.get("DriftCheckBaselines") or {}, d.get("ModelMetrics") or {}):
        uri = source.get("ModelDataQuality", {}).get("Statistics", {}).get("S3Uri")
        if uri:
            return uri
    return (d.get("CustomerMetadataProperties") or {}).get("baseline_uri") or None


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")
