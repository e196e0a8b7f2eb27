"""``run-pipeline [--wait] [--param NAME=VALUE]``: upsert and start the training pipeline.

With ``--wait`` a failed execution exits non-zero naming the failing step and its reason (for
the quality gate, the metric and threshold), and a successful one prints the registered version.
Each step is shown on stderr as it starts and ends, with its time and whether its cached outputs
were reused (``ci_scripts.step_progress``; the local backend reports them).
"""

from __future__ import annotations

import typer

from ci_scripts.backends.base import Backend, PipelineRun
from ci_scripts.errors import CIError
from ci_scripts.github import write_outputs

FAILED = frozenset({"Failed", "Stopped"})


def parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CIError(f"--param {item!r}: expected NAME=VALUE")
        params[name.strip()] = value
    return params


def failure_text(run: PipelineRun) -> str:
    """The failed step and its own reason (e.g. the quality gate's message), else the run's."""
    for step in run.steps:
        if str(step.get("status", "")) in FAILED:
            reason = step.get("failure_reason") or run.failure_reason or "failed"
            return f"step {step.get('name', '?')}: {reason}"
    return run.failure_reason or "no reason reported"


def run(backend: Backend, param_items: list[str], wait: bool) -> None:
    from ci_scripts.step_progress import show_steps

    params = parse_params(param_items)
    with show_steps():
        execution = backend.run_pipeline(params or None, wait=wait)
    write_outputs(
        execution=execution.id, status=execution.status, version=execution.registered_version
    )
    if execution.status in FAILED:
        raise CIError(
            f"pipeline execution {execution.id}: {execution.status}: {failure_text(execution)}"
        )
    typer.echo(f"pipeline execution {execution.id}: {execution.status}")
    if execution.registered_version is not None:
        typer.echo(f"registered model version {execution.registered_version}")
    elif wait:
        typer.echo("no model version was registered")
