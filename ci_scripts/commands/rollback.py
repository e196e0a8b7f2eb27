"""``rollback --env E``: go back to the version the manifest named before, from git history.

The usual rollback is ``git revert`` of the manifest change; this is the emergency path. It deploys
through the same checks as ``deploy`` and then rewrites the manifest so git says what now runs
(the caller commits it). Versions Rejected in the registry are skipped: deploy would refuse them.
"""

from __future__ import annotations

import typer

from ci_scripts import gitinfo
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend
from ci_scripts.commands.deploy import SERVING, deploy_manifest
from ci_scripts.commands.smoke_test import recheck
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


def previous_version(project: ProjectConfig, backend: Backend, manifest: manifests.Manifest) -> int:
    """The newest version in the manifest's git history that is neither the manifest's nor the
    one the endpoint serves now (after an automatic restore that is the older one already). A
    Failed endpoint serves nothing: the version it is tagged with may be put back."""
    current = manifest.model_version
    if current is None:
        raise CIError(f"{manifest.at('model_version')}: is null; nothing to roll back")
    state = backend.describe_endpoint(manifest.env)
    serving = state is not None and state.status == SERVING
    running = state.model_version if state is not None and serving else None
    skipped: list[str] = []
    if isinstance(running, int) and running != current:
        skipped.append(f"v{running} serves now")
    seen: set[int] = {current} | ({running} if isinstance(running, int) else set())
    for sha, content in gitinfo.iter_file_history(project.root, manifest.label):
        data = manifests.parse_text(content) or {}
        version = data.get("model_version")
        if not isinstance(version, int) or version in seen:
            continue
        seen.add(version)
        found = backend.get_version(project.model_package_group, version)
        if found is not None and found.approval_status != "Rejected":
            return version
        why = "Rejected" if found else "missing from the registry"
        skipped.append(f"v{version} ({why}, named in {sha[:12]})")
    if running == current:
        skipped.insert(0, f"v{current} serves now")
    hint = f"; skipped {', '.join(skipped)}" if skipped else ""
    shallow = (
        gitinfo.git(project.root, "rev-parse", "--is-shallow-repository") or ""
    ).strip() == "true"
    clone = " (a shallow clone: fetch with fetch-depth: 0)" if shallow else ""
    raise CIError(
        f"{manifest.at('model_version')}: no earlier deployable version in the git history of "
        f"{manifest.label}{clone}{hint}"
    )


def run(
    project: ProjectConfig,
    backend: Backend,
    env: str,
    *,
    commit: str | None,
    pr: int | None,
    deploy: bool = True,
) -> None:
    manifest = manifests.load(project, env)
    target = previous_version(project, backend, manifest)
    rolled = manifest.with_version(target)
    if deploy:
        # The commit running this; a PR only when given (HEAD's merge message is not the reason).
        commit = commit or gitinfo.current_commit(project.root)
        deploy_manifest(project, backend, rolled, commit=commit, pr=pr, reason="rollback")
    manifests.write(rolled, project)
    current = manifest.model_version
    done = "rolled back" if deploy else "pointed"
    typer.echo(
        f"{env}: {done} {manifest.label} from version {current} to version {target}; "
        f"commit {manifest.label} so git names what runs"
    )
    if deploy:
        # A restored version is smoke-tested like any deploy: the manifest already names what
        # runs (the restore is kept either way), so a failure here is reported, not undone.
        passed, verdict = recheck(project, backend, rolled)
        if not passed:
            raise CIError(f"{env}: version {target} is restored{verdict}")
        typer.echo(f"{env}: version {target} is restored{verdict}")
