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


def test_reapply_of_prod_after_staging_moved_on_is_a_no_op(backend: BackendHarness) -> None:
    first, _ = staging_moves_on(backend)
    backend.reset_mutations()

    result = deploy(backend, "prod")  # workflow_dispatch: re-apply main's manifest

    assert result.exit_code == 0, result.output
    assert f"prod runs version {first} already" in result.stdout
    assert "no change" in result.stdout
    assert backend.mutations() == []


def test_config_change_keeping_prods_version_needs_no_staging_check(
    backend: BackendHarness,
) -> None:
    first, _ = staging_moves_on(backend)
    merge(backend, "prod", 4, max_capacity=6)

    result = deploy(backend, "prod")

    assert result.exit_code == 0, result.output
    assert backend.backend.describe_endpoint("prod").model_version == first


def test_git_revert_of_prod_takes_a_version_that_served_prod_before(
    backend: BackendHarness,
) -> None:
    first, second = staging_moves_on(backend)
    ship(backend, "prod", second, pr=4)
    third = backend.seed_version()
    ship(backend, "staging", third.version, pr=5)
    merge(backend, "prod", 6, model_version=first)  # `git revert` of the v2 change

    result = deploy(backend, "prod")

    assert result.exit_code == 0, result.output
    assert f"version {first} served prod before" in result.stdout
    assert backend.backend.describe_endpoint("prod").model_version == first
    assert backend.backend.describe_endpoint("staging").model_version == third.version


def test_never_staged_version_is_refused_even_on_a_later_edit(backend: BackendHarness) -> None:
    first, _ = staging_moves_on(backend)
    never = backend.seed_version()
    backend.backend.set_approval(never.group, never.version, "Approved", "approved by hand")
    merge(backend, "prod", 4, model_version=never.version)
    backend.reset_mutations()

    refused = deploy(backend, "prod")
    merge(backend, "prod", 5, max_capacity=6)  # the same version stays named: still refused
    again = deploy(backend, "prod")

    for result in (refused, again):
        assert result.exit_code == 1
        assert "not serving healthy in staging" in result.stderr
        assert "never served prod" in result.stderr
    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("prod").model_version == first


def test_rollback_of_prod_never_picks_the_running_version(backend: BackendHarness) -> None:
    first, second = staging_moves_on(backend)
    ship(backend, "prod", second, pr=4)
    third = backend.seed_version()
    ship(backend, "staging", third.version, pr=5)
    # prod.json names v3 but prod still runs v2 (its deploy has not run, or was restored).
    merge(backend, "prod", 6, model_version=third.version)

    result = backend.cli("rollback", "--env", "prod")

    assert result.exit_code == 0, result.output
    assert f"from version {third.version} to version {first}" in result.stdout
    assert backend.backend.describe_endpoint("prod").model_version == first
