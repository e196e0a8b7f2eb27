"""``promote --from staging --to prod``: propose for prod the version staging serves healthy.

Only a version that staging serves InService, that its manifest names, and that is Approved can
be promoted; the prod deploy checks the same again before it changes anything. The body states
the shadow test policy (deployment.shadow) the prod deploy will run after the merge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ci_scripts import cost
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend
from ci_scripts.commands.deploy import SERVING
from ci_scripts.commands.propose import branch_name, emit_body
from ci_scripts.errors import CIError
from ci_scripts.github import write_outputs
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig
from ci_scripts.report import proposal_body
from ci_scripts.shadow import ShadowPolicy

PATHS = {("staging", "prod")}


def shadow_note(effective: dict[str, Any], target: str, serving: bool) -> str:
    """What the prod deploy's shadow test (ci_scripts.shadow) will do, for the proposal.

    The test runs only after this pull request is merged (prod deploys only from a merged pull
    request, behind the protected environment), so the proposal states the policy and the
    deploy appends the result to this pull request's body.
    """
    policy = ShadowPolicy.from_manifest(effective)
    if not policy.enabled:
        return f"**Shadow test**: {policy.describe(target)}."
    when = (
        "After the merge, the deploy runs it and appends its report to this pull request."
        if serving
        else f"Nothing serves {target} yet, so this first deploy has no traffic to shadow."
    )
    return f"**Shadow test** (`deployment.shadow`): {policy.describe(target)}. {when}"


def run(
    project: ProjectConfig, backend: Backend, source: str, target: str, body_file: Path | None
) -> None:
    if (source, target) not in PATHS:
        raise CIError(
            f"--from {source} --to {target}: the only promotion is --from staging --to prod"
        )
    group = project.model_package_group
    src = manifests.load(project, source)
    version = src.model_version
    if version is None:
        # A new repo's first push: staging names nothing yet, so there is nothing to propose.
        typer.echo(f"nothing to promote: {src.label} names no model_version yet")
        write_outputs(proposed=False)
        return
    serving = backend.describe_endpoint(source)
    if serving is None or serving.model_version != version or serving.status != SERVING:
        what = (
            "no endpoint"
            if serving is None
            else f"v{serving.model_version} with status {serving.status}"
        )
        raise CIError(
            f"endpoint {project.endpoint_name(source)}: runs {what}, not version {version} "
            f"InService as {src.label} names; deploy and smoke-test {source} first"
        )
    candidate = backend.get_version(group, version)
    if candidate is None or candidate.approval_status != "Approved":
        status = candidate.approval_status if candidate else "missing from the registry"
        raise CIError(
            f"{src.at('model_version')}: version {version} is {status}; only Approved versions "
            "are promoted"
        )
    dst = manifests.load(project, target)
    if dst.model_version == version:
        typer.echo(f"nothing to promote: {dst.label} already names version {version}")
        write_outputs(proposed=False)
        return
    running = backend.describe_endpoint(target)
    base_version = (running.model_version if running else None) or dst.model_version
    baseline = backend.get_version(group, base_version) if base_version else None
    note = (
        f"It replaces version {base_version}, which {target} runs now."
        if baseline
        else f"Nothing is deployed to {target} yet."
    )
    body = proposal_body(
        contract=load_contract(project),
        env=target,
        manifest_label=dst.label,
        candidate=candidate,
        baseline=baseline,
        baseline_note=f"{source.capitalize()} serves it healthy (smoke-tested). {note}",
        next_step=(
            f"The deploy workflow then deploys {target} in the protected `{target}` GitHub "
            f"environment, after checking again that the version is Approved and serving in "
            f"{source} (or that it served {target} before).\n\n"
            + shadow_note(dst.with_version(version).effective, target, baseline is not None)
        ),
        cost=cost.proposal_section(
            project, {source: src.effective, target: dst.with_version(version).effective}, target
        ),
    )
    manifests.write(dst.with_version(version), project)
    emit_body(body, body_file)
    typer.echo(f"proposed version {version} for {target} in {dst.label}")
    write_outputs(
        proposed=True,
        version=version,
        branch=branch_name(target, version),
        title=f"Deploy model version {version} to {target}",
        manifest=dst.label,
    )
