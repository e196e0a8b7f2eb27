"""``status``: what git says should run (manifests) next to what runs, per environment.

An environment is "out of sync with git" (not to be confused with data drift, which ``monitor``
finds) when its endpoint serves another version than the manifest names, or runs with other
settings than the manifest sets (instance type and count, autoscaling bounds, data capture,
serverless memory and concurrency: every setting the endpoint reports back, compared by JSON
path); that exits 3, so a scheduled workflow can alert on it. An environment whose manifest is
invalid, or whose endpoint cannot be read (no access to its account), is still shown, with the
reason, and exits 1 after the table. Approval status is shown for both sides, since rejecting a
version in the registry is one of the two ways to reject it.
Each environment's fleet is shown with its instance-hours per month at minimum and maximum
capacity (ci_scripts.cost), so what the manifests cost to keep is in view, and the endpoint's
record of its last shadow test (ci_scripts.shadow) when it has one. A batch deployment shows its
last run (a Failed one with its reason); a failed run is not drift from git.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import typer

from ci_scripts import cost
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend, EndpointState, ModelVersion
from ci_scripts.batch import runs_batch
from ci_scripts.errors import CIError, DriftError
from ci_scripts.github import append_step_summary
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ENVIRONMENTS, ProjectConfig

# Endpoint statuses in which the endpoint still serves the version its config names.
SERVING_STATUSES = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack"})
LOG_WIDTH = 200  # the table's width when stdout is no terminal (a CI log)


@dataclass
class EnvStatus:
    environment: str
    desired_version: int | None
    running_version: int | None
    endpoint: str
    endpoint_status: str
    desired_approval: str
    running_approval: str
    primary_metric: str  # the model's (src/<package>/model.py PRIMARY_METRIC), by name
    primary_metric_value: float | None
    url: str
    out_of_sync: bool
    # "<json path>: git <desired>, running <actual>" for each setting that differs.
    differences: list[str] = field(default_factory=list)
    error: str = ""  # why a side could not be read (then being in sync is unknown: False)
    # What the manifest's fleet costs to keep (ci_scripts.cost): None for serverless.
    fleet: str = ""
    instance_hours_min: int | None = None
    instance_hours_max: int | None = None
    # The endpoint's record of its last shadow test (ci_scripts.shadow), "" when none.
    last_shadow: str = ""
    # A batch deployment's newest run (ci_scripts.batch.describe_run), a Failed one with its
    # reason; "" for endpoints.
    last_batch_run: str = ""


def _approval(version: ModelVersion | None, number: int | None) -> str:
    if number is None:
        return ""
    if version is None:
        return "missing"
    # deploy's module (shadow judging, retention) is imported only when there is a version to read
    from ci_scripts.commands.deploy import ROLLOUT_FAILED

    if version.approval_status == "Approved" and ROLLOUT_FAILED in version.approval_description:
        return "Approved (staging rollout failed)"
    return version.approval_status


def setting_differences(desired: dict[str, Any], state: EndpointState | None) -> list[str]:
    """Every setting the manifest sets that the endpoint reports differently."""
    running = (state.config.get("settings") or {}) if state is not None else {}
    return [
        f"{path}: git {desired[path]!r}, running {running[path]!r}"
        for path in desired
        if path in running and running[path] != desired[path]
    ]


def collect_env(project: ProjectConfig, backend: Backend, env: str) -> EnvStatus:
    group = project.model_package_group
    metric = load_contract(project).primary_metric
    try:
        manifest = manifests.load(project, env)
    except CIError as exc:  # an invalid manifest: show it, and the other environments
        manifest, manifest_error = None, str(exc)
    else:
        manifest_error = ""
    desired = manifest.model_version if manifest else None
    fleet = cost.capacity(manifest.effective) if manifest else None
    realtime = fleet is not None and fleet.kind == "realtime"
    try:
        state, error = backend.describe_endpoint(env), ""
    except CIError as exc:  # e.g. no read access to another account: show the rest
        state, error = None, str(exc)
    batch = runs_batch(state)
    # A batch job keeps its version when a run fails (the next run scores with it again);
    # an endpoint that failed serves nothing.
    serving = state is not None and (batch or state.status in SERVING_STATUSES)
    running = state.model_version if serving and state else None
    last_run = _last_batch_run(backend, env) if batch else ""
    desired_mv = backend.get_version(group, desired) if desired else None
    if running == desired:
        running_mv = desired_mv
    else:
        running_mv = backend.get_version(group, running) if running else None
    differences = (
        setting_differences(manifests.endpoint_settings(manifest.effective), state)
        if manifest and running is not None
        else []
    )
    shown = running_mv or desired_mv
    return EnvStatus(
        environment=env,
        desired_version=desired,
        running_version=running,
        endpoint=state.name if state else project.endpoint_name(env),
        endpoint_status=state.status if state else "unreadable" if error else "absent",
        desired_approval=_approval(desired_mv, desired),
        running_approval=_approval(running_mv, running),
        primary_metric=metric,
        primary_metric_value=shown.metrics.get(metric) if shown else None,
        url=state.url if state else "",
        out_of_sync=bool(manifest) and not error and (desired != running or bool(differences)),
        differences=differences,
        error=manifest_error or error,
        fleet=fleet.describe() if fleet else "",
        instance_hours_min=fleet.min_hours if fleet and realtime else None,
        instance_hours_max=fleet.max_hours if fleet and realtime else None,
        last_shadow=str((state.config.get("shadow") if state else None) or ""),
        last_batch_run=last_run,
    )


def _last_batch_run(backend: Backend, env: str) -> str:
    from ci_scripts.batch import describe_run

    run = backend.last_batch_run(env)
    return describe_run(run) if run else "no batch run yet"


def collect(project: ProjectConfig, backend: Backend) -> list[EnvStatus]:
    return [collect_env(project, backend, env) for env in ENVIRONMENTS]


def _version(number: int | None) -> str:
    return f"v{number}" if number is not None else "-"


def render_table(project: ProjectConfig, backend: Backend, rows: list[EnvStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{project.project}: desired (git) vs running",
        expand=False,
        caption=f"template sagemaker-gitops {project.template_version}, backend {backend.name}",
    )
    metric = rows[0].primary_metric if rows else "metric"
    for column in ("env", "desired", "running", "status", "approval", metric, "in sync"):
        table.add_column(column, no_wrap=True)
    table.add_column("endpoint", overflow="fold")
    for row in rows:
        approval = row.desired_approval or "-"
        if row.running_version not in (None, row.desired_version):
            approval += f" (running: {row.running_approval})"
        table.add_row(
            row.environment,
            _version(row.desired_version),
            _version(row.running_version),
            row.endpoint_status,
            approval,
            f"{row.primary_metric_value:.4f}" if row.primary_metric_value is not None else "-",
            "?" if row.error else "[bold red]no[/]" if row.out_of_sync else "yes",
            row.endpoint,
        )
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # CI logs: no terminal width to fit (rich would assume 80), keep rows on one line.
        console = Console(width=LOG_WIDTH)
    console.print(table)
    for row in rows:
        for line in row.differences:
            console.print(
                f"{row.environment}: {line}", soft_wrap=True, highlight=False, markup=False
            )
        if row.error:
            console.print(
                f"{row.environment}: {row.error}", soft_wrap=True, highlight=False, markup=False
            )
        if row.url:
            console.print(f"{row.environment}: {row.url}", soft_wrap=True, highlight=False)
        if row.last_batch_run:
            console.print(
                f"{row.environment}: last {row.last_batch_run}",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )
    for row in rows:  # under the table: a column more would fold it in narrow CI logs
        console.print(f"{row.environment} fleet: {row.fleet}", soft_wrap=True, highlight=False)
    for row in rows:
        if row.last_shadow:
            console.print(
                f"{row.environment} last shadow test: {row.last_shadow}",
                soft_wrap=True,
                highlight=False,
                markup=False,
            )


def summary_markdown(project: ProjectConfig, rows: list[EnvStatus]) -> str:
    lines = [
        f"### {project.project}: desired vs running",
        "",
        "| env | desired | running | endpoint status | approval | in sync with git | fleet |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.environment} | {_version(row.desired_version)} | "
            f"{_version(row.running_version)} | {row.endpoint_status} | "
            f"{row.desired_approval or '-'} | "
            f"{'?' if row.error else 'no' if row.out_of_sync else 'yes'} | "
            f"{row.fleet} |"
        )
    shadows = [f"- {row.environment}: {row.last_shadow}" for row in rows if row.last_shadow]
    if shadows:
        lines += ["", "Last shadow test:", *shadows]
    return "\n".join(lines)


def run(project: ProjectConfig, backend: Backend, output: str = "table") -> None:
    rows = collect(project, backend)
    if output == "json":
        document: dict[str, Any] = {
            "project": project.project,
            "template_version": project.template_version,
            "backend": backend.name,
            "environments": [asdict(row) for row in rows],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        render_table(project, backend, rows)
    append_step_summary(summary_markdown(project, rows))
    unreadable = [row for row in rows if row.error]
    if unreadable:
        raise CIError(f"status of {unreadable[0].environment} unknown: {unreadable[0].error}")
    behind = [row for row in rows if row.out_of_sync]
    if behind:
        raise DriftError("out of sync with git: " + "; ".join(_sync_summary(row) for row in behind))


def _sync_summary(row: EnvStatus) -> str:
    if row.desired_version != row.running_version:
        return (
            f"{row.environment} names {_version(row.desired_version)} but runs "
            f"{_version(row.running_version)}"
        )
    return f"{row.environment} runs other settings ({'; '.join(row.differences)})"
