"""``batch-run --env E [--input URI] [--no-wait]``: score a batch now with what ``env`` runs.

On AWS EventBridge Scheduler starts the batch pipeline on ``batch.schedule``; this command starts
the same run by hand (a backfill, a re-run after fixing an input file). Locally there is no
scheduler at all, so this is how a scheduled batch runs (``make demo-batch`` calls it). A
Failed run exits 1 with its reason (a bad input file names the file and line, and nothing was
written to the output prefix); ``status`` shows the last run either way.
"""

from __future__ import annotations

import typer

from ci_scripts import batch as batching
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


def run(
    project: ProjectConfig,
    backend: Backend,
    env: str,
    *,
    input_uri: str | None = None,
    wait: bool = True,
) -> None:
    manifest = manifests.load(project, env)
    if not batching.is_batch(manifest.effective):
        raise CIError(
            f"{manifest.at('endpoint', 'type')}: {manifest.effective['endpoint']['type']!r}; "
            "batch-run scores batch deployments only (endpoint.type 'batch')"
        )
    if input_uri is not None and (not input_uri.startswith("s3://") or not input_uri.endswith("/")):
        raise CIError(f"--input {input_uri!r}: not an s3:// prefix ending in /")
    if backend.name == "local":
        typer.echo(f"{env}: no scheduler locally; running the batch now")
    result = backend.run_batch(env, manifest.effective, input_uri=input_uri, wait=wait)
    line = f"{env}: {batching.describe_run(result)}"
    if result.status == "Failed":
        raise CIError(line)
    typer.echo(line)
    if result.status == "Succeeded":
        typer.echo(f"{env}: outputs under {result.output_uri}")
