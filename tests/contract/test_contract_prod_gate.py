"""Prod's gate: an Approved version that staging serves healthy now, or that served prod before;
a change keeping prod's running version needs no staging check; a never-staged one is refused."""

from __future__ import annotations

import json
from typing import Any

from gitops_testkit import BackendHarness


def merge(harness: BackendHarness, env: str, pr: int, **changes: Any) -> str:
    """Commit an edit of deploy/<env>.json as the merge of PR ``pr``; the merge commit."""
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "max_capacity":
            data["endpoint"]["autoscaling"]["max_capacity"] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2) + "\n")
    return harness.commit(f"Merge pull request #{pr} from change/{env}")


def deploy(harness: BackendHarness, env: str):
    return harness.cli("deploy", "--env", env, "--commit", "abc1234def")


def ship(harness: BackendHarness, env: str, version: int, pr: int) -> None:
    merge(harness, env, pr, model_version=version)
    result = deploy(harness, env)
    assert result.exit_code == 0, result.output


def staging_moves_on(harness: BackendHarness) -> tuple[int, int]:
    """v1 in staging and prod, then v2 in staging only: staging no longer serves prod's version."""
    first, second = harness.seed_version(), harness.seed_version()
    ship(harness, "staging", first.version, pr=1)
    ship(harness, "prod", first.version, pr=2)
    ship(harness, "staging", second.version, pr=3)
    return first.version, second.version


def test_changes_keeping_prods_version_pass_and_never_staged_ones_do_not(
    backend: BackendHarness,
) -> None:
    """Staging moved on: a re-apply (workflow_dispatch) and a config-only change of prod still
    deploy; a version that never went through staging stays refused, also on a later edit."""
    first, _ = staging_moves_on(backend)
    backend.reset_mutations()

    reapplied = deploy(backend, "prod")  # workflow_dispatch: re-apply main's manifest

    assert reapplied.exit_code == 0, reapplied.output
    assert f"prod runs version {first} already" in reapplied.stdout
    assert "no change" in reapplied.stdout
    assert backend.mutations() == []

    merge(backend, "prod", 4, max_capacity=6)  # autoscaling 4 -> 6 for the running version
    reconfigured = deploy(backend, "prod")
    assert reconfigured.exit_code == 0, reconfigured.output
    assert backend.backend.describe_endpoint("prod").model_version == first

    never = backend.seed_version()
    backend.backend.set_approval(never.group, never.version, "Approved", "approved by hand")
    merge(backend, "prod", 5, model_version=never.version)
    backend.reset_mutations()
    refused = deploy(backend, "prod")
    merge(backend, "prod", 6, max_capacity=5)  # the same version stays named: still refused
    again = deploy(backend, "prod")

    for result in (refused, again):
        assert result.exit_code == 1
        assert "not serving healthy in staging" in result.stderr
        assert "never served prod" in result.stderr
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("prod").model_version == first


def test_revert_returns_an_earlier_prod_version_and_rollback_skips_the_running_one(
    backend: BackendHarness,
) -> None:
    first, second = staging_moves_on(backend)
    ship(backend, "prod", second, pr=4)
    third = backend.seed_version()
    ship(backend, "staging", third.version, pr=5)
    # prod.json names v3 but prod still runs v2 (its deploy has not run, or was restored).
    merge(backend, "prod", 6, model_version=third.version)

    backend.expect_healthy_smoke_test("prod")
    rolled = backend.cli("rollback", "--env", "prod")

    assert rolled.exit_code == 0, rolled.output
    assert f"from version {third.version} to version {first}" in rolled.stdout
    assert backend.backend.describe_endpoint("prod").model_version == first

    backend.commit("rollback: deploy/prod.json names what runs")
    merge(backend, "prod", 7, model_version=second)  # `git revert` of the rollback

    reverted = deploy(backend, "prod")

    assert reverted.exit_code == 0, reverted.output
    assert f"version {second} served prod before" in reverted.stdout
    assert backend.backend.describe_endpoint("prod").model_version == second
    assert backend.backend.describe_endpoint("staging").model_version == third.version
