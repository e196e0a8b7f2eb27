"""deploy: the approval rule, refusals before any change, prod gate, idempotence."""

from __future__ import annotations

import json

import pytest
from gitops_testkit import BackendHarness


def point(harness: BackendHarness, env: str, version: int | None, group: str | None = None) -> None:
    """Edit deploy/<env>.json as a merged pull request would."""
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    if group:
        data["model_package_group"] = group
    path.write_text(json.dumps(data, indent=2) + "\n")


def deploy(harness: BackendHarness, env: str, *extra: str):
    return harness.cli("deploy", "--env", env, "--commit", "abc1234def", *extra)


def test_staging_deploy_approves_pending_version_naming_commit_and_pr(
    backend: BackendHarness,
) -> None:
    seeded = backend.seed_version()
    assert seeded.approval_status == "PendingManualApproval"
    point(backend, "staging", seeded.version)

    result = deploy(backend, "staging", "--pr", "12")

    assert result.exit_code == 0, result.output
    approved = backend.backend.get_version(backend.project.model_package_group, seeded.version)
    assert approved.approval_status == "Approved"
    assert "PR #12" in approved.approval_description
    assert "abc1234def" in approved.approval_description
    state = backend.backend.describe_endpoint("staging")
    assert state.status == "InService" and state.model_version == seeded.version
    assert f"serving version {seeded.version}" in result.stdout


def test_null_model_version_deploys_nothing(backend: BackendHarness) -> None:
    backend.reset_mutations()
    result = deploy(backend, "staging")
    assert result.exit_code == 0
    assert "nothing to deploy" in result.stdout
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("staging") is None


def test_second_deploy_is_a_no_op(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    point(backend, "staging", seeded.version)
    assert deploy(backend, "staging", "--pr", "1").exit_code == 0
    backend.reset_mutations()

    result = deploy(backend, "staging", "--pr", "1")

    assert result.exit_code == 0, result.output
    assert backend.mutations() == []
    assert "no change" in result.stdout


def test_rejected_version_refused_before_any_change(backend: BackendHarness) -> None:
    seeded = backend.seed_version(approval="Rejected")
    point(backend, "staging", seeded.version)
    backend.reset_mutations()

    result = deploy(backend, "staging")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: deploy/staging.json: $.model_version:")
    assert "Rejected" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("staging") is None


def test_unknown_version_refused_before_any_change(backend: BackendHarness) -> None:
    backend.seed_version()
    point(backend, "staging", 7)
    backend.reset_mutations()

    result = deploy(backend, "staging")

    assert result.exit_code == 1
    assert "deploy/staging.json: $.model_version: version 7 does not exist" in result.stderr
    assert backend.mutations() == []


def test_other_group_refused_before_any_change(backend: BackendHarness) -> None:
    foreign = backend.seed_version(group="someone-elses-model")
    point(backend, "staging", foreign.version, group="someone-elses-model")
    backend.reset_mutations()

    result = deploy(backend, "staging")

    assert result.exit_code == 1
    assert "deploy/staging.json: $.model_package_group: 'someone-elses-model'" in result.stderr
    assert backend.mutations() == []
    assert foreign.approval_status == "PendingManualApproval"
    again = backend.backend.get_version("someone-elses-model", foreign.version)
    assert again.approval_status == "PendingManualApproval"


def test_prod_refuses_version_staging_does_not_serve(backend: BackendHarness) -> None:
    first = backend.seed_version()
    second = backend.seed_version()
    point(backend, "staging", first.version)
    assert deploy(backend, "staging", "--pr", "1").exit_code == 0
    backend.backend.set_approval(second.group, second.version, "Approved", "approved elsewhere")
    point(backend, "prod", second.version)
    backend.reset_mutations()

    result = deploy(backend, "prod")

    assert result.exit_code == 1
    assert "not serving healthy in staging" in result.stderr
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("prod") is None


def test_prod_refuses_pending_version(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    point(backend, "prod", seeded.version)
    backend.reset_mutations()

    result = deploy(backend, "prod")

    assert result.exit_code == 1
    assert "PendingManualApproval" in result.stderr and "only Approved" in result.stderr
    assert backend.mutations() == []
    still = backend.backend.get_version(seeded.group, seeded.version)
    assert still.approval_status == "PendingManualApproval"


def test_prod_deploys_what_staging_serves(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    point(backend, "staging", seeded.version)
    assert deploy(backend, "staging", "--pr", "1").exit_code == 0
    point(backend, "prod", seeded.version)

    result = deploy(backend, "prod", "--pr", "2")

    assert result.exit_code == 0, result.output
    state = backend.backend.describe_endpoint("prod")
    assert state.status == "InService" and state.model_version == seeded.version


def test_new_version_replaces_the_running_one(backend: BackendHarness) -> None:
    first, second = backend.seed_version(), backend.seed_version()
    point(backend, "staging", first.version)
    assert deploy(backend, "staging", "--pr", "1").exit_code == 0
    point(backend, "staging", second.version)

    result = deploy(backend, "staging", "--pr", "2")

    assert result.exit_code == 0, result.output
    assert backend.backend.describe_endpoint("staging").model_version == second.version
    assert "PR #2" in backend.backend.get_version(second.group, second.version).approval_description


def test_an_uncommitted_manifest_is_recorded_as_an_uncommitted_change(
    backend: BackendHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops_testkit import git

    version = backend.seed_version()
    git(backend.project.root, "commit", "-q", "--allow-empty", "-m", "Merge pull request #2 from x")
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = version.version
    path.write_text(json.dumps(data, indent=2) + "\n")  # edited, never committed
    monkeypatch.setenv("GITHUB_ACTIONS", "true")

    result = backend.cli("deploy", "--env", "staging")

    assert result.exit_code == 0, result.output
    head = git(backend.project.root, "rev-parse", "HEAD")
    approval = backend.backend.get_version(version.group, version.version).approval_description
    assert (
        approval
        == f"Approved by an uncommitted change (not in any commit; the checkout is at {head})"
    )
    assert "PR #2" not in result.output
    assert "warning: deploy/staging.json has an uncommitted change" in result.output
    assert "::warning file=deploy/staging.json::" in result.output


def test_unknown_instance_type_refused_before_approval_or_any_change(
    backend: BackendHarness,
) -> None:
    seeded = backend.seed_version()
    point(backend, "staging", seeded.version)
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["instance_type"] = "ml.bogus.huge"
    path.write_text(json.dumps(data, indent=2) + "\n")
    backend.reset_mutations()

    result = deploy(backend, "staging", "--pr", "1")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: deploy/staging.json: $.endpoint.instance_type: ")
    assert backend.mutations() == []
    still = backend.backend.get_version(seeded.group, seeded.version)
    assert still.approval_status == "PendingManualApproval"


def test_realtime_endpoint_switched_to_serverless_is_refused_before_any_change(
    backend: BackendHarness,
) -> None:
    seeded = backend.seed_version()
    point(backend, "staging", seeded.version)
    assert deploy(backend, "staging", "--pr", "1").exit_code == 0
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"] = {"type": "serverless", "serverless": {"memory_size_mb": 2048}}
    path.write_text(json.dumps(data, indent=2) + "\n")
    backend.reset_mutations()

    result = deploy(backend, "staging", "--pr", "2")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: deploy/staging.json: $.endpoint.type: 'serverless'")
    assert "runs realtime" in result.stderr
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("staging").model_version == seeded.version
