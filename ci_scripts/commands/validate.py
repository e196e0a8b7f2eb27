"""``validate``: everything CI can check without touching AWS.

Both manifests against the schema and the project (environment = file name, group = the
project's), and the pipeline definition builds. Each manifest's rollout is stated (canary or all
at once, ci_scripts.canary), so a fleet too small to canary is said before any deploy, and so is
prod's shadow test policy (ci_scripts.shadow); a batch manifest's policy (what each run scores,
where, when) is stated instead.
The first failure exits non-zero naming it.
"""

from __future__ import annotations

import typer

from ci_scripts import batch as batching
from ci_scripts import canary
from ci_scripts import manifest as manifests
from ci_scripts.pipeline_module import PIPELINE_FILE, build_definition
from ci_scripts.project import ENVIRONMENTS, ProjectConfig
from ci_scripts.shadow import ShadowPolicy


def run(project: ProjectConfig) -> None:
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
        warning = canary.production_warning(env, manifest.effective)
        if warning:
            typer.echo(f"warning: {manifest.label}: {warning}", err=True)
    modules = [(PIPELINE_FILE.as_posix(), "pipelines.pipeline")]
    if project.deployment == "batch":  # what deploy upserts as <project>-<env>-batch
        modules.append(("pipelines/batch.py", "pipelines.batch"))
    for file, module in modules:
        definition = build_definition(project, module)
        steps = [str(step.get("Name", "?")) for step in definition["Steps"]]
        typer.echo(f"{file}: definition builds ({len(steps)} steps: {', '.join(steps)})")
