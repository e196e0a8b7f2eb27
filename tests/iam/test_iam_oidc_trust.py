"""OIDC: every job that assumes a role is trusted with the ``sub`` GitHub gives it, and nothing
else is; and its credentials outlive the job and the waits it makes."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from cfn_stacks import load, stacks
from github_jobs import Job, load_jobs, subjects
from iam_judge import LAYOUTS, job_role, roles
from option_matrix import COMBINATIONS, combination_id
from policy_eval import as_list, statement_applies

from ci_scripts.backends.aws.endpoints import ENDPOINT_WAIT_ATTEMPTS
from ci_scripts.backends.aws.pipeline import PIPELINE_WAITERS, WAITER_NAME

OWNER, REPO = "my-org", "churn-model"  # the render's github_owner / github_repo
OWNER_ID, REPO_ID = "5551234", "987654321"
IMMUTABLE = f"{OWNER}@{OWNER_ID}/{REPO}@{REPO_ID}"
NAME_ONLY = f"{OWNER}/{REPO}"
AUD = "sts.amazonaws.com"  # what aws-actions/configure-aws-credentials asks GitHub for
IDS = {"GitHubOwnerId": OWNER_ID, "GitHubRepoId": REPO_ID}


def trusted(trust: dict, provider: str, sub: str, aud: str = AUD) -> bool:
    context = {
        "token.actions.githubusercontent.com:sub": sub,
        "token.actions.githubusercontent.com:aud": aud,
    }
    return any(
        s["Effect"] == "Allow"
        and statement_applies(
            s, "sts:AssumeRoleWithWebIdentity", "*", context, f"federated:{provider}"
        )
        for s in as_list(trust["Statement"])
    )


def oidc_providers(all_stacks) -> set[str]:
    return {
        f"arn:aws:iam::{s.account}:oidc-provider/token.actions.githubusercontent.com"
        for s in all_stacks
        for r in s.resources.values()
        if r["Type"] == "AWS::IAM::OIDCProvider"
    }


def judged(bake_once, combo, layout, extra=None):
    project = bake_once(**combo)
    jobs = load_jobs(project)
    all_stacks = stacks(load(project / "infra" / "bootstrap.yml"), LAYOUTS[layout], extra)
    return jobs, roles(all_stacks), oidc_providers(all_stacks)


CASES = [
    pytest.param(combo, layout, id=f"{combination_id(combo)}-{layout}")
    for combo in COMBINATIONS
    for layout in LAYOUTS
]


@pytest.mark.parametrize(("combo", "layout"), CASES)
def test_every_job_is_trusted_with_the_sub_github_gives_it(bake_once, combo, layout) -> None:
    jobs, all_roles, providers = judged(bake_once, combo, layout, IDS)
    assert len(jobs) >= 5
    refused = []
    for job in jobs:
        role = job_role(job, all_roles)
        provider = f"arn:aws:iam::{role.account}:oidc-provider/token.actions.githubusercontent.com"
        assert provider in providers, f"{job}: no OIDC provider in account {role.account}"
        trust = role.properties["AssumeRolePolicyDocument"]
        for sub in subjects(job, IMMUTABLE):
            if not trusted(trust, provider, sub):
                refused.append(f"{job}: role {role.name} does not trust sub {sub} (aud {AUD})")
        # the name-only form, another repository, a pull request and another audience are not
        untrusted = [
            *subjects(job, NAME_ONLY),
            f"repo:{OWNER}@{OWNER_ID}/{REPO}@1:ref:refs/heads/main",
            f"repo:{IMMUTABLE}:pull_request",
            f"repo:{IMMUTABLE}:ref:refs/heads/feature",
        ]
        for sub in untrusted:
            assert not trusted(trust, provider, sub), f"{job}: {role.name} trusts {sub}"
        assert not trusted(trust, provider, subjects(job, IMMUTABLE)[0], aud="other"), job
    assert not refused, "\n" + "\n".join(refused)


def test_name_only_subjects_are_an_explicit_choice(bake_once) -> None:
    extra = {**IDS, "SubjectClaimFormat": "name-only"}
    jobs, all_roles, _ = judged(bake_once, COMBINATIONS[0], "three-accounts", extra)
    for job in jobs:
        role = job_role(job, all_roles)
        provider = f"arn:aws:iam::{role.account}:oidc-provider/token.actions.githubusercontent.com"
        trust = role.properties["AssumeRolePolicyDocument"]
        assert all(trusted(trust, provider, sub) for sub in subjects(job, NAME_ONLY)), job
        assert not any(trusted(trust, provider, sub) for sub in subjects(job, IMMUTABLE)), job


def test_prod_deploy_only_from_the_prod_environment(bake_once) -> None:
    jobs, all_roles, _ = judged(bake_once, COMBINATIONS[0], "three-accounts", IDS)
    prod = [j for j in jobs if job_role(j, all_roles).name.endswith("-deploy-prod")]
    assert prod and all(j.environment == "prod" for j in prod)
    role = job_role(prod[0], all_roles)
    provider = f"arn:aws:iam::{role.account}:oidc-provider/token.actions.githubusercontent.com"
    trust = role.properties["AssumeRolePolicyDocument"]
    assert not trusted(trust, provider, f"repo:{IMMUTABLE}:ref:refs/heads/main")


# deployment.shadow.duration_minutes' maximum, from the manifest schema (its one source).
MAX_SHADOW_MINUTES = json.loads(
    (
        Path(__file__).resolve().parents[2] / "ci_scripts" / "schemas" / "manifest.schema.json"
    ).read_text(encoding="utf-8")
)["properties"]["deployment"]["properties"]["shadow"]["properties"]["duration_minutes"]["maximum"]


def _endpoint_wait_seconds() -> int:
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("sagemaker", "waiters-2")["waiters"]["EndpointInService"]
    return int(model["delay"]) * ENDPOINT_WAIT_ATTEMPTS


def _pipeline_wait_seconds() -> int:
    waiter = PIPELINE_WAITERS["waiters"][WAITER_NAME]
    return waiter["delay"] * waiter["maxAttempts"]


def _waits(job: Job, batch: bool = False) -> int:
    """Seconds the job's ci_scripts commands may spend waiting, at most.

    deployment=batch has no endpoint to wait for: its deploy waits for nothing, and each smoke
    test waits for a batch run of the pipeline, twice when it fails and restores the previous
    version (the restore is smoke-tested again)."""
    total = 0
    for command in job.commands:
        if batch:
            if command.startswith("smoke-test "):
                total += 2 * _pipeline_wait_seconds()
            elif command.startswith(("run-pipeline", "batch-run")):
                total += _pipeline_wait_seconds()
            continue
        if command.startswith("deploy "):
            total += _endpoint_wait_seconds()
        if command == "deploy --env prod":  # the shadow test: on, its window, off
            total += 2 * _endpoint_wait_seconds() + MAX_SHADOW_MINUTES * 60
        if command.startswith("smoke-test "):  # --rollback-on-failure redeploys the previous
            total += _endpoint_wait_seconds()
        if command.startswith("run-pipeline"):
            total += _pipeline_wait_seconds()
    return total


SESSION_COMBOS = [COMBINATIONS[0], next(c for c in COMBINATIONS if c["deployment"] == "batch")]


@pytest.mark.parametrize("combo", SESSION_COMBOS, ids=[combination_id(c) for c in SESSION_COMBOS])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_credentials_outlive_every_job_and_its_waits(bake_once, combo, layout) -> None:
    """waits <= timeout-minutes <= role-duration-seconds <= the role's MaxSessionDuration."""
    jobs, all_roles, _ = judged(bake_once, combo, layout, IDS)
    batch = combo["deployment"] == "batch"
    for job in jobs:
        role = job_role(job, all_roles)
        session = int(role.properties.get("MaxSessionDuration", 3600))
        timeout = job.timeout_minutes * 60
        waits = _waits(job, batch)
        assert waits <= timeout, f"{job}: waits {waits} s > timeout {timeout} s"
        assert timeout <= job.duration_seconds, f"{job}: credentials expire before its timeout"
        assert job.duration_seconds <= session, (
            f"{job}: role-duration-seconds {job.duration_seconds} > {role.name} "
            f"MaxSessionDuration {session}"
        )
