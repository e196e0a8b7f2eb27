"""``deploy --env E``: make an environment run what its manifest names.

The approval rule lives here (DESIGN "Approval semantics"): the merge of a manifest PR is the
approval, so a staging deploy marks a PendingManualApproval package Approved, naming the commit
and PR. Rejected, unknown and other-group packages are refused. Prod takes an Approved package
that staging serves healthy now or that served prod before (a rollback), and a change that keeps
prod's running version needs no staging check. Every check runs before the first change.
With ``deployment.shadow`` on, a new prod version first runs as a shadow of prod's traffic and
is judged against the manifest's limits (ci_scripts.shadow); one that breaks a limit stops there.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import typer

from ci_scripts import gitinfo
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend, EndpointState, ModelVersion
from ci_scripts.batch import runs_batch
from ci_scripts.commands import retention
from ci_scripts.errors import CIError
from ci_scripts.github import append_step_summary, write_outputs
from ci_scripts.interrupts import StateReported, interrupted_by, termination_interrupts
from ci_scripts.manifest_rules import switch_refusal
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig
from ci_scripts.shadow import ShadowPolicy, judge

# Statuses during which SageMaker refuses (or would race) another update.
IN_PROGRESS = frozenset(
    {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting", "UpdateRollbackFailed"}
)
SERVING = "InService"
SOURCE_KEY = "_source"
# The approval of a manifest deployed from the working tree, not from a commit.
UNCOMMITTED = "uncommitted change"


def registered_version(
    project: ProjectConfig, backend: Backend, manifest: manifests.Manifest
) -> ModelVersion:
    """The package the manifest names; refuses unknown, other-group and Rejected ones."""
    version = manifest.model_version
    where = manifest.at("model_version")
    if version is None:
        raise CIError(f"{where}: is null; no model version to deploy")
    found = backend.get_version(project.model_package_group, version)
    if found is None:
        raise CIError(
            f"{where}: version {version} does not exist in model package group "
            f"{project.model_package_group!r}"
        )
    if found.group != project.model_package_group:
        raise CIError(
            f"{where}: {found.arn} belongs to group {found.group!r}, not this project's "
            f"{project.model_package_group!r}"
        )
    if found.approval_status == "Rejected":
        note = f" ({found.approval_description})" if found.approval_description else ""
        raise CIError(f"{where}: version {version} ({found.arn}) is Rejected in the registry{note}")
    return found


def refuse_if_busy(env: str, running: EndpointState | None) -> None:
    if running is not None and running.status in IN_PROGRESS:
        raise CIError(
            f"endpoint {running.name}: status is {running.status}; another deployment of {env} "
            "is in progress, run again when it has finished"
        )


def served_prod_before(
    project: ProjectConfig, running: EndpointState | None, manifest: manifests.Manifest
) -> dict[int, str]:
    """Versions that served prod before, each with where that is recorded.

    The endpoint's record (what it serves now, and what served before the last deploy: the aws
    ``previous-model-version`` tag, the local routes file), and deploy/prod.json's git history
    before the change that put the manifest's version there: a revert brings back a version an
    earlier commit named. The leading run of commits naming the manifest's own version is
    skipped, so a version that was merged but refused stays refused on a later edit.
    """
    found: dict[int, str] = {}
    if running is not None:
        for version, source in (
            (running.model_version, f"endpoint {running.name} serves it"),
            (running.config.get("previous_version"), f"endpoint {running.name} served it before"),
        ):
            if isinstance(version, int):
                found.setdefault(version, source)
    current, leading = manifest.model_version, True
    for sha, content in gitinfo.iter_file_history(project.root, manifest.label):
        version = (manifests.parse_text(content) or {}).get("model_version")
        if leading and version == current:
            continue
        leading = False
        if isinstance(version, int) and not isinstance(version, bool):
            found.setdefault(version, f"{manifest.label} named it in commit {sha[:12]}")
    return found


class ProdGate(NamedTuple):
    """Why prod may take a version, and whether it is new to prod (a promotion from staging)."""

    why: str
    new_to_prod: bool


def require_prod_gate(
    project: ProjectConfig,
    backend: Backend,
    version: ModelVersion,
    running: EndpointState | None,
    manifest: manifests.Manifest,
) -> ProdGate:
    """Prod's rule (DESIGN "Approval semantics"); why this version may go to prod.

    An Approved version only, and then one of: prod runs it already (a re-apply or a
    configuration change), it served prod before (a rollback by ``git revert``, a restore after
    a failed smoke test), or staging serves it healthy now (a promotion: the only case new to
    prod, and so the only one a shadow test judges). A version that never went through staging
    is refused.
    """
    where = manifest.at("model_version")
    if version.approval_status != "Approved":
        raise CIError(
            f"{where}: version {version.version} is {version.approval_status}; prod deploys "
            "only Approved versions (merge its staging pull request first)"
        )
    if running is not None and running.model_version == version.version:
        return ProdGate(f"prod runs version {version.version} already", new_to_prod=False)
    before = served_prod_before(project, running, manifest)
    if version.version in before:
        why = f"version {version.version} served prod before ({before[version.version]})"
        return ProdGate(why, new_to_prod=False)
    staging = backend.describe_endpoint("staging")
    if staging is None:
        raise CIError(
            f"{where}: version {version.version} is not serving in staging (no staging "
            "endpoint) and never served prod; deploy and smoke-test staging first"
        )
    if staging.model_version != version.version or staging.status != SERVING:
        serving = f"v{staging.model_version}" if staging.model_version else "no known version"
        raise CIError(
            f"{where}: version {version.version} is not serving healthy in staging (endpoint "
            f"{staging.name} runs {serving}, status {staging.status}) and never served prod; "
            "deploy staging first"
        )
    return ProdGate(f"staging serves version {version.version} healthy", new_to_prod=True)


def running_type(running: EndpointState | None) -> str | None:
    """``realtime`` or ``serverless`` as the endpoint reports it (None: unknown or absent)."""
    if running is None:
        return None
    value = (running.config.get("settings") or {}).get("endpoint.type")
    return value if isinstance(value, str) else None


def refuse_switch(manifest: manifests.Manifest, running: EndpointState | None) -> None:
    reason = switch_refusal(running_type(running), manifest.effective["endpoint"]["type"])
    if reason:
        raise CIError(f"{manifest.at('endpoint', 'type')}: {reason}")


def approval_description(commit: str, pr: int | None, reason: str = "merge") -> str:
    """What the registry records as the approval: the merge (PR and commit) that asked for it."""
    if reason == UNCOMMITTED:
        return f"Approved by an {UNCOMMITTED} (not in any commit; the checkout is at {commit})"
    if reason != "merge":
        via = f"PR #{pr}, " if pr is not None else ""
        return f"Approved by {reason} ({via}commit {commit})"
    if pr is not None:
        return f"Approved by merge of PR #{pr} (commit {commit})"
    return f"Approved by merge of commit {commit} (no pull request found)"


# What the approval description says while an Approved version is not what staging serves.
ROLLOUT_FAILED = "; its staging rollout failed"


def note_rollout(backend: Backend, version: ModelVersion, commit: str, *, failed: bool) -> None:
    """Keep the registry honest about an Approved version's staging rollout: a failed one is
    noted in the approval description (status shows it), a later successful one clears it. The
    note never hides the deploy's own error."""
    if version.approval_status != "Approved":
        return
    current = version  # read (or approved) by this command: no second registry read
    base = current.approval_description.split(ROLLOUT_FAILED)[0]
    if failed:
        running = backend.describe_endpoint("staging")
        serves = f"v{running.model_version}" if running and running.model_version else "nothing"
        text = f"{base}{ROLLOUT_FAILED} (commit {commit[:12]}); staging serves {serves}"
    else:
        text = base
    if text == current.approval_description:
        return
    try:
        backend.set_approval(version.group, version.version, "Approved", text)
    except CIError as exc:
        typer.echo(f"staging: could not note the rollout in the registry: {exc}", err=True)
    if failed:
        typer.echo(f"staging: version {version.version} stays Approved{text[len(base) :]}")


class Stage:
    """How far ``deploy_manifest`` got, for the line an interrupt outside the backend's own
    deploy prints (the backend's deploy reports its own: aws.progress, local endpoints)."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.approved: ModelVersion | None = None  # approved in the registry by this deploy
        self.left = ""  # set once the deploy got past its checks

    def interrupted(self, exc: KeyboardInterrupt) -> StateReported:
        head = f"deploy {self.env} interrupted{interrupted_by(exc)}"
        if isinstance(exc, StateReported):
            if self.approved is None or exc.unchanged is None:
                return exc  # the backend said what it left; the approval is in the log above
            return StateReported(
                f"{head} after approving version {self.approved.version} in the registry: "
                f"nothing else changed ({exc.unchanged}) - rerun deploy to deploy it (it stays "
                "Approved)"
            )
        if self.left:
            return StateReported(f"{head} {self.left}")
        if self.approved is not None:
            return StateReported(
                f"{head} after approving version {self.approved.version} in the registry: "
                "nothing else changed - rerun deploy to deploy it (it stays Approved)"
            )
        return StateReported(
            f"{head} before any change: nothing changed - rerun deploy to start again"
        )


def deploy_manifest(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    *,
    commit: str,
    pr: int | None,
    reason: str = "merge",
) -> EndpointState | None:
    """Check, approve (staging) and deploy ``manifest``; None when it names no version.

    Every refusal (registry, prod's gate, a realtime endpoint switched to serverless) comes
    before the approval and the first change. Ctrl-C, SIGTERM or SIGHUP (ci_scripts.interrupts)
    ends it with one line saying what it left, exit 130.
    """
    env = manifest.env
    if manifest.model_version is None:
        typer.echo(f"{env}: {manifest.label} names no model_version; nothing to deploy")
        write_outputs(changed=False, deployed=False)
        return None
    stage = Stage(env)
    try:
        with termination_interrupts("deploy"):
            return _deploy(project, backend, manifest, commit, pr, reason, stage)
    except KeyboardInterrupt as exc:
        raise stage.interrupted(exc) from None


def _deploy(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    commit: str,
    pr: int | None,
    reason: str,
    stage: Stage,
) -> EndpointState:
    env = manifest.env
    version = registered_version(project, backend, manifest)
    backend.preflight(env)
    running = backend.describe_endpoint(env)
    refuse_if_busy(env, running)
    refuse_switch(manifest, running)
    new_to_prod = False
    if env == "prod":
        gate = require_prod_gate(project, backend, version, running, manifest)
        typer.echo(f"prod: {gate.why}")
        new_to_prod = gate.new_to_prod
    if version.approval_status == "PendingManualApproval":
        description = approval_description(commit, pr, reason)
        version = backend.set_approval(version.group, version.version, "Approved", description)
        stage.approved = version
        typer.echo(f"{env}: approved version {version.version}: {description}")
    desired: dict[str, Any] = dict(manifest.effective)
    desired[SOURCE_KEY] = {"commit": commit, "pull_request": pr}
    try:
        if env == "prod":
            stage.left = (
                f"during the shadow test of version {version.version}: prod serves what it served "
                "before (the shadow test takes itself down when interrupted); version "
                f"{version.version} is not deployed - rerun deploy to test it again"
            )
            shadow_gate(project, backend, manifest, version, running, reason, new_to_prod)
            stage.left = ""
        state = backend.deploy(env, desired, version)
        batch = runs_batch(state)  # a failed last run is the run's, not deploy's
        stage.left = (
            f"after the deploy: {state.name} {'scores with' if batch else 'serves'} version "
            f"{state.model_version}; the registry's note of its rollout or the pruning of "
            "versions no rollback needs may be unfinished - rerun deploy to finish the note (the "
            f"next deploy that changes {env} prunes)"
        )
        if state.model_version != version.version or (state.status != SERVING and not batch):
            reason_text = f": {state.failure_reason}" if state.failure_reason else ""
            raise CIError(
                f"endpoint {state.name}: after deploying version {version.version} it runs "
                f"v{state.model_version} with status {state.status}{reason_text}"
            )
    except CIError:
        if env == "staging":
            note_rollout(backend, version, commit, failed=True)
        raise
    finally:
        if env == "prod":
            backend.release_shadow(env)  # a failed shadow's candidate, unless deploy took it
    if env == "staging":
        note_rollout(backend, version, commit, failed=False)
    changed = running is None or running != state
    noun, serving, serves = (
        ("batch", "scores with", "scores with") if batch else ("endpoint", "serving", "serves")
    )
    if changed:
        typer.echo(f"{env}: {noun} {state.name} InService, {serving} version {version.version}")
        if state.config.get("rollout"):  # canary or all at once (ci_scripts.canary)
            typer.echo(f"{env}: rollout: {state.config['rollout']}")
        for line in retention.prune_after_deploy(project, backend, manifest, state):
            typer.echo(f"{env}: pruned {line} (no rollback needs it)")
    else:
        typer.echo(
            f"{env}: {noun} {state.name} already {serves} version {version.version}; no change"
        )
    write_outputs(
        endpoint=state.name, version=version.version, changed=changed, url=state.url, deployed=True
    )
    return state


def shadow_gate(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    version: ModelVersion,
    running: EndpointState | None,
    reason: str,
    new_to_prod: bool,
) -> None:
    """``deployment.shadow``: the candidate shadows prod's traffic before prod switches.

    Runs for a new version merged for prod (not for a rollback, a restore, or a version that
    served prod before: those return to known behaviour and must not wait), and only when a
    version serves prod (nothing to shadow before the first deploy). The report goes to the
    log, the job summary, the ``shadow``/``shadow_report`` step outputs and the endpoint's
    record; a shadow that breaks a limit raises naming it, and prod keeps its version.
    """
    policy = ShadowPolicy.from_manifest(manifest.effective)
    if not policy.enabled:
        return
    skip = ""
    runs_already = running is not None and running.model_version == version.version
    if reason not in ("merge", UNCOMMITTED) or not (new_to_prod or runs_already):
        skip = f"version {version.version} served prod before; it returns without one"
    elif running is None or running.status != SERVING or running.model_version is None:
        skip = "nothing serves prod yet, so there is no live traffic to shadow"
    elif runs_already:
        skip = f"prod runs version {version.version} already"
    if skip:
        typer.echo(f"prod: shadow test skipped: {skip}")
        write_outputs(shadow="skipped")
        return
    assert running is not None
    typer.echo(
        f"prod: shadow test: version {version.version} shadows version "
        f"{running.model_version}'s traffic ({policy.describe('prod')})"
    )
    contract = load_contract(project)
    measurement = backend.shadow_test(manifest.env, manifest.effective, version, policy)
    report = judge(policy, measurement, contract.problem_type)
    markdown = report.markdown()
    typer.echo(markdown.rstrip())
    append_step_summary(markdown)
    write_outputs(shadow="passed" if report.passed else "failed", shadow_report=markdown)
    backend.record_shadow(manifest.env, report.record())
    if not report.passed:
        raise CIError(
            f"{manifest.at('deployment', 'shadow')}: {report.verdict()}; the rollout stopped "
            f"and version {running.model_version} keeps serving"
        )
    typer.echo(f"prod: {report.verdict()}")


def resolve_source(
    project: ProjectConfig, commit: str | None, pr: int | None
) -> tuple[str, int | None]:
    """The commit and PR that asked for this change (flags first, then the environment/git)."""
    commit = commit or gitinfo.current_commit(project.root)
    if pr is None:
        pr = gitinfo.pull_request_number(project.root, commit)
    return commit, pr


def run(
    project: ProjectConfig, backend: Backend, env: str, *, commit: str | None, pr: int | None
) -> None:
    manifest = manifests.load(project, env)
    uncommitted = uncommitted_manifest(project, manifest, commit)
    commit, pr = resolve_source(project, commit, pr)
    if uncommitted:
        # Not the merge of whatever PR last touched HEAD: nobody merged this change.
        warn(
            manifest.label,
            f"{manifest.label} has an uncommitted change; the approval is recorded as "
            f"'{UNCOMMITTED}', not as a merge (commit it and open a pull request to record one)",
        )
        pr = None
    reason = UNCOMMITTED if uncommitted else "merge"
    deploy_manifest(project, backend, manifest, commit=commit, pr=pr, reason=reason)


def uncommitted_manifest(
    project: ProjectConfig, manifest: manifests.Manifest, commit: str | None
) -> bool:
    """The manifest on disk is not what the commit being deployed holds (only checked for the
    checkout's own HEAD: an explicit other ``--commit`` is the caller's statement)."""
    head = gitinfo.git(project.root, "rev-parse", "HEAD")
    if commit is not None and commit != (head or "").strip():
        return False
    return gitinfo.has_uncommitted_change(project.root, manifest.label)


def warn(path: str, message: str) -> None:
    """A warning on stderr; in GitHub Actions also a workflow annotation on ``path``."""
    typer.echo(f"warning: {message}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        typer.echo(f"::warning file={path}::{message}")
