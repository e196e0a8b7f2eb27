"""``ci_scripts local ...``: look after the local backend's processes and state.

Deploys on the local backend leave detached processes behind on purpose (an endpoint outlives the
CLI call that deployed it, as on SageMaker). These commands list them, stop them all, or wipe the
whole local world (``.mlops/``) for a fresh start.
"""

import shutil
from pathlib import Path
from typing import Annotated

import typer

from ci_scripts.errors import one_line_errors

app = typer.Typer(
    help="Manage the local backend's processes (routers, model servers) and state (.mlops/).",
    no_args_is_help=True,
)


def _root(ctx: typer.Context) -> Path:
    """The repo root from the global ``--project-dir`` (the CLI's State object), else cwd."""
    return Path(getattr(ctx.obj, "project_dir", None) or ".").resolve()


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Stop every local process (routers and model servers); nothing is left running."""
    from ci_scripts.backends.local.endpoints import stop_everything
    from ci_scripts.backends.local.state import LocalState

    with one_line_errors():
        stopped = stop_everything(LocalState(_root(ctx)))
    for record in stopped:
        typer.echo(f"stopped {record.get('name')} (pid {record.get('pid')})")
    typer.echo(f"local backend down: {len(stopped)} process(es) stopped")


@app.command("reset")
def reset(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop everything and delete .mlops/ (registry, runs, caches, captured data)."""
    from ci_scripts.backends.local.endpoints import stop_everything
    from ci_scripts.backends.local.state import LocalState

    state = LocalState(_root(ctx))
    if not state.home.exists():
        # .mlops deleted while endpoints ran: its processes still carry this repo's mark.
        with one_line_errors():
            stopped = stop_everything(state)
        shutil.rmtree(state.home, ignore_errors=True)  # the journal of those stops, if any
        typer.echo(f"{state.home}: nothing to reset; stopped {len(stopped)} process(es)")
        return
    if not yes:
        typer.confirm(f"Delete {state.home} (local registry, runs, caches)?", abort=True)
    with one_line_errors():
        stopped = stop_everything(state)
        if state.home.is_dir() and not state.home.is_symlink():
            shutil.rmtree(state.home)
        else:  # damaged: a file (or a link) where the folder belongs
            state.home.unlink()
    typer.echo(f"stopped {len(stopped)} process(es); deleted {state.home}")


@app.command("ps")
def ps(ctx: typer.Context) -> None:
    """List local endpoints and the processes behind them (also those whose records were lost)."""
    from ci_scripts.backends.local import processes as procs
    from ci_scripts.backends.local.state import LocalState, read_json
    from ci_scripts.errors import CIError

    state = LocalState(_root(ctx))
    for routes_file in sorted((state.home / "endpoints").glob("*.json")):
        try:
            routes = read_json(routes_file) or {}
        except CIError:
            typer.echo(f"{routes_file}: unreadable; `ci_scripts local down` stops everything")
            continue
        if not isinstance(routes, dict) or not isinstance(routes.get("targets"), list):
            continue
        targets = [t for t in routes["targets"] if isinstance(t, dict)]
        versions = ", ".join(f"{t.get('variant')} {t.get('weight')}%" for t in targets)
        typer.echo(f"{routes.get('env')}: {routes.get('url')} -> {versions}")
    for path in procs.unreadable_records(state):
        typer.echo(f"{path}: unreadable pid record (skipped; `local down` removes it)")
    records = procs.every_process(state)
    for record in records:
        status = "running" if procs.alive(record) else "exited"
        if record.get("discovered"):
            status += " (no pid record: found by its mark)"
        typer.echo(f"  {record.get('name')!s:<32} pid {record.get('pid')!s:<8} {status}")
    if not records:
        typer.echo("no local processes")
