"""``monitor --env E --quality``: has the served model got worse on labelled live traffic?

Reads the latest model quality check of ``env`` (the newest monitoring pipeline run that joined
labels; locally the pipeline is run now), prints each metric live against the version's
registered evaluation value, the coverage (labelled / captured rows in the label window), bias
and feature-attribution drift, the HTML report, then exits:

- 0: every metric within ``monitoring.quality.max_metric_drop`` of its registered value, or too
  few labelled rows to judge (``min_labelled_rows``), or nothing labelled yet;
- 3 (DriftError): a metric dropped further, or bias / attribution drifted, one line
  ``error: <finding>`` (with ``--retrain`` the training pipeline runs first, as for data drift);
- 1: the results cannot be read, or the labels cover less than ``min_coverage`` of the captured
  rows (a broken labelling feed, which retraining cannot fix).

The judgement is the monitor step's (src/<package>/monitor.py), made from the manifest's
``monitoring.quality`` the monitoring run was started with; this command only reports it.
"""

from __future__ import annotations

import math

import typer

from ci_scripts import manifest as manifests
from ci_scripts import model_quality as mq
from ci_scripts import problem_types
from ci_scripts.backends.base import Backend
from ci_scripts.errors import CIError, DriftError
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig


def run(project: ProjectConfig, backend: Backend, env: str, retrain: bool = False) -> None:
    from ci_scripts.commands.monitor import retrain_after

    manifest = manifests.load(project, env)
    read = backend.model_quality_result
    result: mq.QualityResult = read(env, manifest.effective)
    rules = mq.settings(manifest.effective)
    typer.echo(_headline(result))
    if result.html_report:
        typer.echo(f"html report: {result.html_report}")
    coverage = result.coverage
    if not result.coverage_ok and coverage is not None:
        raise CIError(
            f"{result.schedule}: labels cover {coverage:.0%} of the {result.captured_rows} "
            f"captured rows, below {manifest.at('monitoring', 'quality', 'min_coverage')} "
            f"{rules['min_coverage']:.0%}; check the ground truth written under "
            f"{mq.ground_truth_prefix(project.capture_bucket(env), env)}/"
        )
    if result.status == "NoData" or not result.live:
        typer.echo(f"nothing to check: {result.failure_reason or 'no labelled requests'}")
        return
    found = result.violations
    problem_type = load_contract(project).problem_type
    typer.echo(_table(result, rules["max_metric_drop"], found, problem_type))
    for kind, check in result.checks.items():
        typer.echo(_check_line(kind, check))
    if not result.judged:
        typer.echo(
            f"not judged: {result.labelled_rows} labelled rows, fewer than "
            f"monitoring.quality.min_labelled_rows ({rules['min_labelled_rows']})"
        )
        return
    if not found:
        typer.echo("no violations: live metrics are within max_metric_drop of the registered ones")
        return
    finding = _finding(result, found)
    if retrain:
        retrain_after(backend, env, finding, "quality drop")
    raise DriftError(finding)


def _check_line(kind: str, check: dict) -> str:
    """One line for the bias or feature-attribution drift check."""
    values = ", ".join(
        f"{side} {name} {value:+.4f}" if isinstance(value, float) else f"{side} {name} {value}"
        for side in ("registered", "live")
        for name, value in (check.get(side) or {}).items()
    )
    reason = f" ({check['reason']})" if check.get("reason") else ""
    return f"{kind.replace('_', ' ')}: {check.get('status', 'NoData')}{reason}" + (
        f": {values}" if values else ""
    )


def _headline(result: mq.QualityResult) -> str:
    parts = [f"{result.env}: monitoring pipeline {result.schedule}"]
    if result.model_version is not None:
        parts.append(f"model version {result.model_version}")
    labelled = f"{result.labelled_rows} labelled rows"
    if result.captured_rows is not None:
        coverage = result.coverage
        share = f" (coverage {coverage:.0%})" if coverage is not None else ""
        labelled += f" of {result.captured_rows} captured{share}"
    parts += [labelled, result.status]
    if result.checked_at:
        parts.append(f"at {result.checked_at}")
    line = ", ".join(parts)
    return f"{line}\nreport: {result.report_uri}" if result.report_uri else line


def _table(
    result: mq.QualityResult,
    max_drop: dict[str, float],
    found: list[dict[str, str]],
    problem_type: str | None = None,
) -> str:
    """registered, live and how much worse live is (``drop``, in each metric's direction)."""
    failed = {v.get("metric_name") for v in found}
    header = f"{'metric':<10}  {'registered':>10}  {'live':>7}  {'drop':>7}  {'max drop':>8}"
    lines = [f"{header}  check"]
    for name in dict.fromkeys([*result.registered, *result.live]):  # the model's metric names
        registered = result.registered.get(name, math.nan)
        live = result.live.get(name, math.nan)
        if math.isnan(registered) and math.isnan(live):
            continue
        drop = problem_types.worsening(problem_type, name, registered, live)
        check = "FAIL" if name in failed else ("n/a" if math.isnan(drop) else "ok")
        lines.append(
            f"{name:<10}  {registered:>10.4f}  {live:>7.4f}  {drop:>7.4f}  "
            f"{max_drop.get(name, math.nan):>8.4f}  {check}"
        )
    return "\n".join(lines)


def _finding(result: mq.QualityResult, found: list[dict[str, str]]) -> str:
    """One line: the metric drops first, then bias / feature-attribution drift."""
    drops = [v for v in found if v.get("metric_name") in result.live]
    other = [v for v in found if v not in drops]
    version = f" of model version {result.model_version}" if result.model_version else ""
    parts = []
    if drops:
        listed = ", ".join(
            f"{v['metric_name']} {result.live[v['metric_name']]:.3f} vs "
            f"{result.registered.get(v['metric_name'], float('nan')):.3f} registered"
            for v in drops
        )
        parts.append(f"{len(drops)} metric(s){version} dropped past max_metric_drop: {listed}")
    if other:
        listed = "; ".join(
            f"{v.get('constraint_check_type')}: {v.get('description')}" for v in other
        )
        parts.append(f"{len(other)} drift finding(s){version}: {listed}")
    return f"{result.schedule}: on {result.labelled_rows} labelled rows, " + "; ".join(parts)
