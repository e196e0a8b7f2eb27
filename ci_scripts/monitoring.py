"""The repo's own monitor, seen from ci_scripts: names, the run's parameters, reading its results.

The monitor is step code of the model repo (src/<package>/monitor.py) run by the monitoring
pipeline (ci_scripts/pipelines/monitoring.py), one per environment, ``<project>-<env>-monitor``:

- **where it runs**: in the account that hosts the environment's endpoint (in a single-account
  set-up, that one account). ``deploy --env E`` is what changes what E serves, and it holds E's
  role, so it upserts E's monitoring pipeline and schedule in the same call; the captures and the
  labels are written to that account's capture bucket, where the job reads them before any
  replication delay; its alarms sit next to the endpoint's. Reports go to the dev artifact
  bucket under ``monitoring/<env>/``, where E's read-only role (``monitor`` in the workflow) and
  the dev account read them next to the replicated captures and labels.
- **when**: EventBridge Scheduler starts the pipeline on ``monitoring.schedule`` with the
  parameters below (the served version's baseline, reports and model, the manifest's thresholds);
  locally ``monitor`` runs the same definition through the local pipeline interpreter.
- **results**: every run writes ``summary.json``, ``report.html`` and ``metrics.json`` under
  ``monitoring/<env>/runs/<execution id>/``; ``monitor`` reads the newest ``summary.json``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from ci_scripts import model_quality as mq
from ci_scripts.backends.base import ModelVersion, MonitoringResult
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

SUMMARY_FILE = "summary.json"
HTML_FILE = "report.html"
METRICS_FILE = "metrics.json"
SCHEMA_CHECKS = frozenset({"missing_column_check", "extra_column_check"})
MISSING_COLUMN_CHECK = "missing_column_check"
EXTRA_COLUMN_CHECK = "extra_column_check"
MONITORING_MODULE = "ci_scripts.pipelines.monitoring"
# SageMaker's and Scheduler's limit on a pipeline parameter value (botocore: String1024,
# SageMakerPipelineParameterValue)
MAX_PARAMETER_LENGTH = 1024
SEED_FILE = "_monitor-seed.jsonl"  # an empty object keeping a monitor input prefix non-empty


def pipeline_name(project: ProjectConfig, env: str) -> str:
    return f"{project.project}-{env}-monitor"


def schedule_name(project: ProjectConfig, env: str) -> str:
    """The EventBridge Scheduler schedule (default group) that starts the pipeline."""
    return f"{project.project}-{env}-monitor"


def scheduler_role_arn(project: ProjectConfig, env: str) -> str:
    """The role Scheduler assumes to start the pipeline (infra/bootstrap.yml)."""
    return f"arn:aws:iam::{project.accounts[env]}:role/{project.project}-{env}-monitor-scheduler"


def namespace(project: ProjectConfig) -> str:
    """The CloudWatch namespace the monitor publishes to (the execution role may only use it)."""
    return f"{project.project}/Monitoring"


def alarm_names(project: ProjectConfig, env: str) -> dict[str, str]:
    """metric -> alarm: any drifted feature, any quality/bias/attribution violation."""
    return {
        "DriftedFeatures": f"{project.project}-{env}-monitor-drift",
        "QualityViolations": f"{project.project}-{env}-monitor-quality",
    }


def monitoring_prefix(project: ProjectConfig, env: str) -> str:
    return f"s3://{project.artifact_bucket}/monitoring/{env}"


def runs_prefix(project: ProjectConfig, env: str) -> str:
    return f"{monitoring_prefix(project, env)}/runs"


def state_prefix(project: ProjectConfig, env: str) -> str:
    return f"{monitoring_prefix(project, env)}/state"


def capture_prefix(project: ProjectConfig, env: str) -> str:
    """Where ``env``'s endpoint captures (aws: then ``<endpoint>/<variant>/YYYY/MM/DD/HH``)."""
    return f"s3://{project.capture_bucket(env)}/datacapture/{env}/{project.endpoint_name(env)}"


def settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """``monitoring`` of ``manifest`` over the schema's defaults (the one source of them)."""
    from dataclasses import fields

    from ci_scripts.manifest import spec

    view = spec(manifest).monitoring
    top = {f.name: getattr(view, f.name) for f in fields(view) if f.name != "quality"}
    return {**top, "quality": mq.settings(manifest)}


def version_inputs(version: ModelVersion) -> dict[str, str] | str:
    """The served version's monitor inputs from the registry, or why it has none (one line)."""
    reports = version.reports or {}
    statistics = reports.get("data_statistics") or version.baseline_uri or ""
    if not statistics.endswith("statistics.json"):
        return f"{version.arn}: no monitor baseline (statistics.json) in the registry"
    missing = [kind for kind in ("bias", "explainability") if not reports.get(kind)]
    if missing:
        return f"{version.arn}: no {' or '.join(missing)} report in the registry"
    return {
        "BaselineUrl": statistics.rsplit("/", 1)[0] + "/",
        "BiasReportUrl": reports["bias"],
        "ExplainabilityReportUrl": reports["explainability"],
        "ModelDataUrl": version.model_data_url,
    }


def parameters(
    project: ProjectConfig,
    env: str,
    manifest: dict[str, Any],
    version: ModelVersion,
    *,
    since: str | None,
    publish_metrics: bool,
    capture_url: str | None = None,
) -> dict[str, str]:
    """Every parameter of one environment's monitoring run (Scheduler sends them on aws)."""
    inputs = version_inputs(version)
    if isinstance(inputs, str):
        raise CIError(inputs)
    from ci_scripts import model_contract

    contract = model_contract.load(project)  # the model's metric names (src/<pkg>/model.py)
    rules = settings(manifest)
    quality = rules.pop("quality")
    rules.pop("schedule", None)
    config = {
        "env": env,
        "endpoint": project.endpoint_name(env),
        "model_version": version.version,
        "since": since,
        "problem_type": contract.problem_type,
        **rules,
        "quality": quality,
        "registered": {k: round(v, 6) for k, v in version.metrics.items() if k in contract.metrics},
        "namespace": namespace(project),
        "publish_metrics": publish_metrics,
        "region": project.region,
    }
    values = {
        "MonitorConfig": json.dumps(config, separators=(",", ":"), sort_keys=True),
        "ReportsUrl": runs_prefix(project, env),
        "CaptureUrl": capture_url or capture_prefix(project, env) + "/",
        "GroundTruthUrl": mq.ground_truth_prefix(project.capture_bucket(env), env) + "/",
        "StateUrl": state_prefix(project, env) + "/",
        **inputs,
    }
    for name, value in values.items():
        if len(value) > MAX_PARAMETER_LENGTH:
            raise CIError(
                f"monitoring pipeline parameter {name} is {len(value)} characters, more than "
                f"the {MAX_PARAMETER_LENGTH} a pipeline parameter may hold; shorten the "
                f"monitoring settings in deploy/{env}.json"
            )
    return values


def seed_uris(project: ProjectConfig, env: str) -> list[str]:
    """Objects that keep the monitor's prefix inputs non-empty before the first capture or label
    (a SageMaker Processing input with no object under its S3 prefix fails the job)."""
    return [*expiring_seed_uris(project, env), f"{state_prefix(project, env)}/{SEED_FILE}"]


def expiring_seed_uris(project: ProjectConfig, env: str) -> list[str]:
    """The seeds under prefixes the buckets' lifecycle rules expire (datacapture/, groundtruth/:
    infra/bootstrap.yml's retention_rules), which a deploy puts back; the state/ seed stays
    once written (no rule expires state/, and each run of the monitor writes there too)."""
    return [
        f"{capture_prefix(project, env)}/{SEED_FILE}",
        f"{mq.ground_truth_prefix(project.capture_bucket(env), env)}/{SEED_FILE}",
    ]


# -- reading a run's summary.json ----------------------------------------------------------------
def parse_summary(body: bytes, uri: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("format") != "monitor-summary":
            raise ValueError("not a monitor summary")
    except ValueError as exc:
        raise CIError(f"{uri}: not a monitor summary.json: {exc}") from None
    return document


def data_result(
    project: ProjectConfig, env: str, summary: dict[str, Any] | None, folder: str
) -> MonitoringResult:
    """``monitor``'s view of a run (the same on both backends)."""
    result = MonitoringResult(env=env, schedule=pipeline_name(project, env), status="NoData")
    data = _common(result, summary, "data_quality", folder)
    if summary is None:
        return result
    result.rows = int(data.get("rows") or 0)
    result.violations = [
        {
            "feature_name": str(v.get("feature_name", "")),
            "constraint_check_type": str(v.get("constraint_check_type", "")),
            "description": str(v.get("description", "")),
        }
        for v in data.get("violations") or []
        if isinstance(v, dict)
    ]
    return result


def quality_result(
    project: ProjectConfig, env: str, summary: dict[str, Any] | None, folder: str
) -> mq.QualityResult:
    """``monitor --quality``'s view of a run (model quality, bias and attribution drift)."""
    result = mq.QualityResult(env=env, schedule=pipeline_name(project, env), status="NoData")
    quality = _common(result, summary, "model_quality", folder)
    if summary is None:
        return result
    result.registered = _floats(quality.get("registered"))
    result.live = _floats(quality.get("live"))
    result.labelled_rows = int(quality.get("labelled_rows") or 0)
    captured = quality.get("captured_rows")
    result.captured_rows = int(captured) if isinstance(captured, int) else None
    result.coverage_ok = bool(quality.get("coverage_ok", True))
    result.judged = bool(quality.get("judged"))
    result.violations = list(quality.get("violations") or [])
    for kind in ("bias", "feature_attribution"):
        section = summary.get(kind) or {}
        result.checks[kind] = {
            "status": section.get("status", "NoData"),
            "reason": section.get("reason", ""),
            "registered": section.get("registered") or {},
            "live": section.get("live") or {},
        }
        result.violations += list(section.get("violations") or [])
    return result


def _common(
    result: Any, summary: dict[str, Any] | None, section: str, folder: str
) -> dict[str, Any]:
    """Fill what both results take from a run; return the run's ``section``."""
    if summary is None:
        result.failure_reason = f"no monitoring run has finished yet under {folder}"
        return {}
    found = summary.get(section) or {}
    result.report_uri = folder
    result.html_report = f"{folder}/{HTML_FILE}" if summary.get("status") != "NoData" else ""
    result.checked_at = str(summary.get("checked_at") or "")
    result.model_version = summary.get("model_version")
    result.status = str(found.get("status") or "NoData")
    result.failure_reason = str(found.get("reason") or summary.get("reason") or "")
    return found


def _floats(values: Any) -> dict[str, float]:
    found = {}
    for name, value in (values or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found[str(name)] = float(value)
    return found


def newest(items: list[tuple[datetime | float, str]]) -> str | None:
    """The key of the newest (time, key) pair."""
    return max(items)[1] if items else None
