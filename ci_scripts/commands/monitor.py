"""``monitor --env E [--retrain]``: did the traffic drift away from the served version's baseline?

(``--quality`` checks the model's metrics on labelled traffic instead: commands/monitor_quality.py.)

Reads the latest data drift check of ``env``: the newest run of its monitoring pipeline that
checked new traffic (on aws the one EventBridge Scheduler started last; locally the pipeline is
run now through the local interpreter), prints the violations per feature and the run's HTML
report (an S3 URI on aws, a path on disk locally), and exits:

- 0: no violation, or nothing captured to check yet;
- 3 (DriftError): drift, with one line ``error: <finding>`` that the monitor workflow passes to
  train.yml as the retraining ``reason``; with ``--retrain`` the training pipeline runs first
  (locally: the whole pipeline; the workflow dispatches train.yml instead);
- 1: the results cannot be read, or the captured columns differ from the baseline's (a schema
  change: retraining on the old columns cannot fix that, a person must look).
"""

from __future__ import annotations

from collections import defaultdict

import typer

from ci_scripts import manifest as manifests
from ci_scripts import monitoring
from ci_scripts.backends.base import Backend, MonitoringResult
from ci_scripts.commands.run_pipeline import FAILED, failure_text
from ci_scripts.errors import CIError, DriftError
from ci_scripts.project import ProjectConfig

MAX_NAMED = 5  # features named in the one-line finding; the table lists them all


def run(project: ProjectConfig, backend: Backend, env: str, retrain: bool = False) -> None:
    manifest = manifests.load(project, env)
    read = backend.monitoring_result
    result: MonitoringResult = read(env, manifest.effective)
    typer.echo(_headline(result))
    if result.html_report:
        typer.echo(f"html report: {result.html_report}")
    if result.status == "NoData":
        typer.echo(f"nothing to check: {result.failure_reason}")
        return
    if not result.violations:
        typer.echo("no violations: the captured requests match the baseline")
        return
    typer.echo(_table(result.violations))

    schema = [
        v for v in result.violations if v["constraint_check_type"] in monitoring.SCHEMA_CHECKS
    ]
    if schema:
        raise CIError(_mismatch(result, schema))
    finding = _finding(result)
    if retrain:
        retrain_after(backend, env, finding, "drift")
    raise DriftError(finding)


def retrain_after(backend: Backend, env: str, finding: str, what: str) -> None:
    """Run the training pipeline to completion after ``finding`` (drift or a quality drop)."""
    typer.echo(f"{what} found: {finding}")
    typer.echo("retraining: running the training pipeline ...")
    execution = backend.run_pipeline(None, wait=True)
    if execution.status in FAILED:
        raise CIError(
            f"retraining after {what} on {env}: pipeline execution {execution.id} "
            f"{execution.status}: {failure_text(execution)}"
        )
    registered = execution.registered_version
    typer.echo(
        f"retrained: pipeline execution {execution.id} {execution.status}"
        + (f", registered model version {registered}" if registered else "")
    )


def _headline(result: MonitoringResult) -> str:
    parts = [f"{result.env}: monitoring pipeline {result.schedule}"]
    if result.model_version is not None:
        parts.append(f"model version {result.model_version}")
    if result.rows is not None:
        parts.append(f"{result.rows} captured rows")
    parts.append(result.status)
    if result.checked_at:
        parts.append(f"at {result.checked_at}")
    line = ", ".join(parts)
    return f"{line}\nreport: {result.report_uri}" if result.report_uri else line


def _table(violations: list[dict[str, str]]) -> str:
    by_feature: dict[str, list[dict[str, str]]] = defaultdict(list)
    for violation in violations:
        by_feature[violation["feature_name"]].append(violation)
    width = max(len("feature"), *(len(name) for name in by_feature))
    lines = [f"{'feature':<{width}}  {'check':<22}  description"]
    for name, found in by_feature.items():
        for violation in found:
            lines.append(
                f"{name:<{width}}  {violation['constraint_check_type']:<22}  "
                f"{violation['description']}"
            )
    return "\n".join(lines)


def _finding(result: MonitoringResult) -> str:
    features = list(dict.fromkeys(v["feature_name"] for v in result.violations))
    named = ", ".join(features[:MAX_NAMED]) + (
        f" and {len(features) - MAX_NAMED} more" if len(features) > MAX_NAMED else ""
    )
    version = f" of model version {result.model_version}" if result.model_version else ""
    return (
        f"{result.schedule}: {len(features)} feature(s) drifted from the baseline{version}: {named}"
    )


def _mismatch(result: MonitoringResult, schema: list[dict[str, str]]) -> str:
    missing = [
        v["feature_name"]
        for v in schema
        if v["constraint_check_type"] == monitoring.MISSING_COLUMN_CHECK
    ]
    extra = [
        v["feature_name"]
        for v in schema
        if v["constraint_check_type"] == monitoring.EXTRA_COLUMN_CHECK
    ]
    parts = []
    if missing:
        parts.append(f"baseline column(s) missing from the captured requests: {', '.join(missing)}")
    if extra:
        parts.append(f"captured column(s) not in the baseline: {', '.join(extra)}")
    version = f"model version {result.model_version}'s" if result.model_version else "the"
    return (
        f"{result.schedule}: captured requests do not match {version} baseline schema: "
        f"{'; '.join(parts)} (a schema change, not drift: retraining cannot fix it)"
    )
