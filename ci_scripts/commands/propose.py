"""``propose --env staging``: point the staging manifest at the newest registered version.

The workflow commits the rewritten manifest on a branch and opens a pull request with the body
written here; merging it is the approval. Prod is never proposed from the registry: it is fed by
``promote`` with the version staging serves.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend, ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.github import write_outputs
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig
from ci_scripts.report import proposal_body

PENDING = "PendingManualApproval"


def branch_name(env: str, version: int) -> str:
    """The branch the workflow pushes the proposal to (one per env and version)."""
    return f"propose/{env}-v{version}"


def newest_candidate(versions: list[ModelVersion], current: int | None) -> ModelVersion | None:
    """The newest PendingManualApproval version newer than what the manifest names."""
    pending = [
        v
        for v in versions
        if v.approval_status == PENDING and (current is None or v.version > current)
    ]
    return max(pending, key=lambda v: v.version, default=None)


def emit_body(body: str, body_file: Path | None) -> None:
    if body_file is None:
        typer.echo(body)
    else:
        body_file.parent.mkdir(parents=True, exist_ok=True)
        body_file.write_text(body, encoding="utf-8")


def run(project: ProjectConfig, backend: Backend, env: str, body_file: Path | None) -> None:
    if env != "staging":
        raise CIError(
            f"propose --env {env}: only staging is proposed from the registry; prod gets the "
            "version staging serves through `promote --from staging --to prod`"
        )
    manifest = manifests.load(project, env)
    current = manifest.model_version
    group = project.model_package_group
    candidate = newest_candidate(backend.list_versions(group), current)
    if candidate is None:
        newer = f" newer than version {current}" if current else ""
        typer.echo(
            f"nothing to propose: no PendingManualApproval version{newer} in model package "
            f"group {group!r}"
        )
        write_outputs(proposed=False)
        return
    full = backend.get_version(group, candidate.version) or candidate
    baseline = backend.get_version(group, current) if current else None
    updated = manifest.with_version(full.version)
    if baseline:
        note = f"It replaces version {current}, which {manifest.label} names now."
    elif current:
        note = f"It replaces version {current}, which is no longer in the registry."
    else:
        note = f"Nothing is deployed to {env} yet."
    body = proposal_body(
        contract=load_contract(project),
        env=env,
        manifest_label=manifest.label,
        candidate=full,
        baseline=baseline,
        baseline_note=note,
        next_step=(
            "The deploy workflow then marks the package Approved (naming this pull request and "
            "its merge commit), deploys staging, smoke-tests it and opens the pull request that "
            "promotes the same version to prod."
        ),
    )
    manifests.write(updated, project)
    emit_body(body, body_file)
    typer.echo(f"proposed version {full.version} for {env} in {manifest.label}")
    write_outputs(
        proposed=True,
        version=full.version,
        branch=branch_name(env, full.version),
        title=f"Deploy model version {full.version} to {env}",
        manifest=manifest.label,
    )
