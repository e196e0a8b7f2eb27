"""``validate``: everything CI can check without touching AWS.

Both manifests against the schema and the project (environment = file name, group = the
project's), and the pipeline definition builds. Each manifest's rollout is stated (canary or all
at once, ci_scripts.canary), so a fleet too small to canary is said before any deploy, and so is
prod's shadow test policy (ci_scripts.shadow); a batch manifest's policy (what each run scores,
where, when) is stated instead.
The vendored platform is checked first: each ci_scripts/ file changed, added or removed since the
template vendored it (ci_scripts.vendored) is named on its own line, and validate fails; a repo
rendered before the record existed gets a warning.
The first failure exits non-zero naming it.
"""

from __future__ import annotations

import typer

from ci_scripts import batch as batching
from ci_scripts import canary, manifest_rules, vendored
from ci_scripts import manifest as manifests
from ci_scripts.errors import CIError
from ci_scripts.pipeline_module import PIPELINE_FILE, build_definition, module_file
from ci_scripts.project import ENVIRONMENTS, ProjectConfig
from ci_scripts.shadow import ShadowPolicy


def check_vendored(project: ProjectConfig) -> None:
    """ci_scripts/ against the record the template wrote when it vendored it."""
    package = project.root / "ci_scripts"
    if not package.is_dir():  # run from an installed ci_scripts: nothing vendored to check
        return
    if not (package / vendored.RECORD).is_file():
        typer.echo(
            f"warning: ci_scripts/{vendored.RECORD}: missing (rendered by a sagemaker-gitops "
            "release before it was written), so local edits to ci_scripts/ cannot be named; "
            "`cruft update` writes it",
            err=True,
        )
        return
    try:
        version, found = vendored.problems(package)
    except (OSError, ValueError) as exc:
        raise CIError(str(exc)) from None
    if not found:
        typer.echo(f"ci_scripts/: as sagemaker-gitops {version} vendored it")
        return
    for name, change in found[:-1]:  # one line per file; the last one is the error raised
        typer.echo(f"error: {vendored.mismatch_message(name, change, version)}", err=True)
    raise CIError(vendored.mismatch_message(*found[-1], version))


def run(project: ProjectConfig) -> None:
    check_vendored(project)
    for env in ENVIRONMENTS:
        manifest = manifests.load(project, env)
        version = manifest.model_version
        named = f"version {version}" if version is not None else "no version yet"
        typer.echo(f"{manifest.label}: valid ({named})")
        if batching.is_batch(manifest.effective):
            typer.echo(f"{manifest.label}: batch: {batching.describe_policy(manifest.effective)}")
            continue
        typer.echo(f"{manifest.label}: rollout: {canary.describe_manifest(manifest.effective)}")
        if env == "prod":
            policy = ShadowPolicy.from_manifest(manifest.effective)
            typer.echo(f"{manifest.label}: shadow test: {policy.describe(env)}")
            sampling = manifest.spec.data_capture.sampling_percentage
            if policy.enabled and sampling < 100:
                typer.echo(
                    f"warning: {manifest.label}: $.deployment.shadow pairs captured requests "
                    f"only: with data_capture.sampling_percentage {sampling}, about {sampling}% "
                    f"of the shadow's requests can be paired (min_requests "
                    f"{policy.min_requests} needs about "
                    f"{-(-policy.min_requests * 100 // max(sampling, 1))} prod requests in "
                    f"{policy.duration_minutes} min)",
                    err=True,
                )
        for warning in (
            canary.production_warning(env, manifest.effective),
            manifest_rules.capacity_warning(manifest.effective),
        ):
            if warning:
                typer.echo(f"warning: {manifest.label}: {warning}", err=True)
    modules = [(PIPELINE_FILE.as_posix(), "pipelines.pipeline")]
    if project.deployment == "batch":  # what deploy upserts as <project>-<env>-batch
        modules.append((module_file(batching.BATCH_MODULE).as_posix(), batching.BATCH_MODULE))
    for file, module in modules:
        definition = build_definition(project, module)
        steps = [str(step.get("Name", "?")) for step in definition["Steps"]]
        typer.echo(f"{file}: definition builds ({len(steps)} steps: {', '.join(steps)})")
