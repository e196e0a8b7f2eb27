"""``destroy --env E``: remove everything an environment runs, after a confirmation.

The endpoint, its endpoint configs and models, the rollback alarms, the autoscaling target and
policy, and the monitoring set up for it (the backend's teardown, which reads everything first).
Prod is refused without ``--allow-prod``; without ``--yes`` the list is shown and a person must
confirm (a CI job without a terminal passes ``--yes``). Run again, it finds nothing and exits 0.
The manifest is left as it is: git still says what should run, so ``status`` shows the drift
until the manifest's ``model_version`` is set to null (or the environment deployed again).
Buckets, the registry and the bootstrap stacks stay: the generated README says how to remove them.
"""

from __future__ import annotations

import typer

from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


def run(project: ProjectConfig, backend: Backend, env: str, *, yes: bool, allow_prod: bool) -> None:
    if env == "prod" and not allow_prod:
        raise CIError(
            "destroy --env prod: refused; removing the production endpoint needs --allow-prod"
        )
    manifest = manifests.load(project, env)
    backend.preflight(env)
    found = backend.teardown_plan(env, manifest.effective)
    if not found:
        typer.echo(f"{env}: nothing to destroy (no endpoint, config, model, alarm or schedule)")
        return
    typer.echo(f"destroy --env {env} removes:")
    for line in found:
        typer.echo(f"  - {line}")
    if not yes:
        try:
            confirmed = typer.confirm(f"Remove everything {env} runs?", default=False)
        except typer.Abort:  # no terminal (CI): end of input
            confirmed = False
        if not confirmed:
            raise CIError(f"destroy --env {env}: not confirmed (pass --yes); nothing was removed")
    removed = backend.teardown(env, manifest.effective)
    for line in removed:
        typer.echo(f"{env}: removed {line}")
    typer.echo(f"{env}: destroyed ({len(removed)} resources)")
    if manifest.model_version is not None:
        typer.echo(
            f"{manifest.label} still names version {manifest.model_version}: set model_version "
            "to null and commit it, or status reports drift"
        )
