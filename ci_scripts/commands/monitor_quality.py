"""``monitor --env E --quality``: has the served model got worse on labelled live traffic?

Reads the latest model quality check of ``env`` (Model Monitor's last model quality execution
on aws; a join of the captured predictions with the ground truth run now on local), prints each
metric live against the version's registered evaluation value, and the coverage (labelled /
captured rows), then exits:

- 0: every metric within ``monitoring.quality.max_metric_drop`` of its registered value, or too
  few labelled rows to judge (``min_labelled_rows``), or nothing labelled yet;
- 3 (DriftError): a metric dropped further, one line ``error: <finding>`` (with ``--retrain``
  the training pipeline runs first, as for data drift);
- 1: the results or the label files cannot be read, or the labels cover less than
  ``min_coverage`` of the captured rows (a broken labelling feed, which retraining cannot fix).

The judgement is made here, from the manifest, for both backends: Model Monitor's own
constraints are written from the same numbers at deploy time.
"""

from __future__ import annotations

import math

import typer

from ci_scripts import manifest as manifests
from ci_scripts import model_quality as mq
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
    coverage = result.coverage
    if rules["min_coverage"] and coverage is not None and coverage < rules["min_coverage"]:
        raise CIError(
            f"{result.schedule}: labels cover {coverage:.0%} of the {result.captured_rows} "
            f"captured rows, below {manifest.at('monitoring', 'quality', 'min_coverage')} "
            f"{rules['min_coverage']:.0%}; check the ground truth written under "
            f"{mq.ground_truth_prefix(project.capture_bucket(env), env)}/"
        )
    if result.status == "NoData" or not result.live:
        typer.echo(f"nothing to check: {result.failure_reason or 'no labelled requests'}")
        return
    kind = load_contract(project).problem_type
    found = mq.violations(
        result.live, mq.constraints(result.registered, rules["max_metric_drop"], kind)
    )
    typer.echo(_table(result, rules["max_metric_drop"], found))
    if result.labelled_rows < rules["min_labelled_rows"]:
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


def _headline(result: mq.QualityResult) -> str:
    parts = [f"{result.env}: schedule {result.schedule}"]
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
    result: mq.QualityResult, max_drop: dict[str, float], found: list[dict[str, str]]
) -> str:
    failed = {v["metric_name"] for v in found}
    header = f"{'metric':<10}  {'registered':>10}  {'live':>7}  {'drop':>7}  {'max drop':>8}"
    lines = [f"{header}  check"]
    for name in mq.METRICS:
        registered = result.registered.get(name, math.nan)
        live = result.live.get(name, math.nan)
        if math.isnan(registered) and math.isnan(live):
            continue
        drop = registered - live
        check = "FAIL" if name in failed else ("n/a" if math.isnan(drop) else "ok")
        lines.append(
            f"{name:<10}  {registered:>10.4f}  {live:>7.4f}  {drop:>7.4f}  "
            f"{max_drop.get(name, math.nan):>8.4f}  {check}"
        )
    return "\n".join(lines)


def _finding(result: mq.QualityResult, found: list[dict[str, str]]) -> str:
    drops = ", ".join(
        f"{v['metric_name']} {result.live[v['metric_name']]:.3f} vs "
        f"{result.registered[v['metric_name']]:.3f} registered"
        for v in found
    )
    version = f" of model version {result.model_version}" if result.model_version else ""
    return (
        f"{result.schedule}: {len(found)} metric(s){version} dropped past max_metric_drop on "
        f"{result.labelled_rows} labelled rows: {drops}"
    )
