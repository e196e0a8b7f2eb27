"""destroy --env E (both backends): refuses prod without --allow-prod, asks first, removes what
the environment runs, and run again does nothing. Pruning after deploys keeps what a rollback
needs."""

from __future__ import annotations

import pytest
from gitops_testkit import BackendHarness
from test_contract_rollback_status import merge_and_deploy

from ci_scripts.commands import retention


def test_destroy_refuses_prod_without_allow_prod(backend: BackendHarness) -> None:
    backend.reset_mutations()
    result = backend.cli("destroy", "--env", "prod", "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: destroy --env prod: refused; removing the production endpoint needs --allow-prod"
    )
    assert backend.mutations() == []


def test_destroy_asks_then_removes_everything_and_is_idempotent(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    merge_and_deploy(backend, "staging", seeded.version, pr=1)
    backend.reset_mutations()

    refused = backend.cli("destroy", "--env", "staging")  # no --yes, no answer: nothing done

    assert refused.exit_code == 1
    assert "endpoint churn-model-staging" in refused.stdout  # listed before asking
    assert "error: destroy --env staging: not confirmed (pass --yes); nothing was removed" in (
        refused.stderr
    )
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("staging") is not None

    result = backend.cli("destroy", "--env", "staging", "--yes")

    assert result.exit_code == 0, result.output
    assert "staging: removed endpoint churn-model-staging" in result.stdout
    assert "deploy/staging.json still names version" in result.stdout
    assert backend.backend.describe_endpoint("staging") is None
    assert backend.backend.teardown_plan("staging", {"endpoint": {"type": "realtime"}}) == []
    again = backend.cli("destroy", "--env", "staging", "--yes")
    assert again.exit_code == 0, again.output
    assert "staging: nothing to destroy" in again.stdout
    # The environment can be deployed again from scratch afterwards.
    assert backend.cli("deploy", "--env", "staging").exit_code == 0
    assert backend.backend.describe_endpoint("staging").model_version == seeded.version


def test_deploy_prunes_versions_no_rollback_needs(
    backend: BackendHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "KEEP_VERSIONS", 1)  # only the newest named in git history
    first, second, third = (backend.seed_version() for _ in range(3))
    merge_and_deploy(backend, "staging", first.version, pr=1)
    merge_and_deploy(backend, "staging", second.version, pr=2)

    path = backend.project.manifest_path("staging")
    path.write_text(
        path.read_text().replace(
            f'"model_version": {second.version}', f'"model_version": {third.version}'
        )
    )
    sha = backend.commit(f"Merge pull request #3 from propose/staging-v{third.version}")
    result = backend.cli("deploy", "--env", "staging", "--commit", sha)
    assert result.exit_code == 0, result.output
    out = result.stdout

    # v3 serves, v2 served before it (a failed smoke test goes back to it): both stay.
    assert f"v{first.version}" in out.split("pruned", 1)[1]
    assert f"-v{second.version}-" not in out and f"v{second.version} (" not in out
    backend.expect_healthy_smoke_test("staging")
    assert backend.cli("rollback", "--env", "staging").exit_code == 0  # back to v2 still works
    assert backend.backend.describe_endpoint("staging").model_version == second.version
