"""``propose --env staging``: point the staging manifest at the newest registered version.

The workflow commits the rewritten manifest on a branch and opens a pull request with the body
written here; merging it is the approval. Prod is never proposed from the registry: it is fed by
``promote`` with the version staging serves.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ci_scripts import cost
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


def check_body_file(body_file: Path | None) -> None:
    """Refuse a --body-file that cannot be written, before anything (the manifest) changes."""
    if body_file is None:
        return
    if body_file.is_dir():
        raise CIError(f"--body-file {body_file}: is a directory; name a file to write")
    parent = next((p for p in body_file.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise CIError(f"--body-file {body_file}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK) or (body_file.exists() and not os.access(body_file, os.W_OK)):
        raise CIError(f"--body-file {body_file}: not writable")


def emit_body(body: str, body_file: Path | None) -> None:
    if body_file is None:
        typer.echo(body)
    else:
        body_file.parent.mkdir(parents=True, exist_ok=True)
        body_file.write_text(body, encoding="utf-8")


def same_model(a: ModelVersion, b: ModelVersion) -> bool:
    """True when two versions are one model: the same artifact and the same image.

    A pipeline re-run with nothing changed hits the step cache, so its RegisterModel step
    registers the cached training output again: a new version number for the very same
    ``model.tar.gz`` (SageMaker's step caching reuses the earlier step's outputs, S3 URIs
    included: https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-caching.html).
    """
    return bool(a.model_data_url) and (a.model_data_url, a.image_uri) == (
        b.model_data_url,
        b.image_uri,
    )


def run(project: ProjectConfig, backend: Backend, env: str, body_file: Path | None) -> None:
    if env != "staging":
        raise CIError(
            f"propose --env {env}: only staging is proposed from the registry; prod gets the "
            "version staging serves through `promote --from staging --to prod`"
        )
    check_body_file(body_file)
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
    found = backend.get_version(group, candidate.version) or candidate
    full = backend.with_checks(backend.with_trials(found))
    baseline = backend.get_version(group, current) if current else None
    updated = manifest.with_version(full.version)
    if baseline and same_model(full, baseline):
        typer.echo(
            f"nothing to propose: version {full.version} is the same model as version {current}, "
            f"which {manifest.label} names (same artifact {full.model_data_url} and image); "
            "the pipeline re-ran with nothing changed and its steps were cached"
        )
        write_outputs(proposed=False)
        return
    if baseline:
        note = f"It replaces version {current}, which {manifest.label} named before this change."
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
        cost=cost.proposal_section(
            project,
            {env: updated.effective, "prod": manifests.load(project, "prod").effective},
            env,
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
