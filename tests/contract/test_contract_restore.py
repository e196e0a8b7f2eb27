"""Restoring what served before: smoke-test --rollback-on-failure, and rollback of prod."""

from __future__ import annotations

import json

from gitops_testkit import BackendHarness
from test_contract_rollback_status import merge_and_deploy

from ci_scripts.backends.base import ModelVersion


def seed_wrong_answers(harness: BackendHarness) -> ModelVersion:
    """A version whose endpoint answers 200 with no predictions (passes health and canary)."""
    if harness.name == "local":
        return harness.seed_version(serve="empty")  # type: ignore[call-arg]
    return harness.seed_version()


def script_wrong_answers(harness: BackendHarness, env: str = "staging") -> None:
    """The next smoke test of ``env`` fails at its first row (moto answers what it is told; the
    local endpoint of a ``seed_wrong_answers`` version answers that way itself)."""
    if harness.scripted_invocations:
        harness.prepare_invocations(env, 1, answers=[{"predictions": []}])  # type: ignore[call-arg]


def test_failed_smoke_test_restores_the_previous_version(backend: BackendHarness) -> None:
    good = backend.seed_version()
    wrong = seed_wrong_answers(backend)
    merge_and_deploy(backend, "staging", good.version, pr=1)
    merge_and_deploy(backend, "staging", wrong.version, pr=2)
    script_wrong_answers(backend)
    backend.expect_healthy_smoke_test("staging")  # the restored version answers well

    result = backend.cli("smoke-test", "--env", "staging", "--rollback-on-failure")

    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: smoke-test staging: row 1: expected 1 predictions, got 0; ")
    assert line.endswith(
        f"rolled back: endpoint churn-model-staging serves version {good.version} again and "
        "its smoke test passed (revert the change to deploy/staging.json so git names what runs)"
    )
    state = backend.backend.describe_endpoint("staging")
    assert state.status == "InService" and state.model_version == good.version
    status = backend.cli("status")
    assert status.exit_code == 3  # git still names the version that failed: drift
    assert f"staging names v{wrong.version} but runs v{good.version}" in status.stderr


def test_a_restored_version_is_smoke_tested_again(backend: BackendHarness) -> None:
    """Restoring what served before is no proof it serves well now: its smoke test runs again,
    and a failure of both is said in the one line (the restore stays: the best known state)."""
    older = seed_wrong_answers(backend)
    newer = seed_wrong_answers(backend)
    merge_and_deploy(backend, "staging", older.version, pr=1)
    merge_and_deploy(backend, "staging", newer.version, pr=2)
    script_wrong_answers(backend)
    script_wrong_answers(backend)  # and the restored one fails the same way

    result = backend.cli("smoke-test", "--env", "staging", "--rollback-on-failure")

    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert (
        f"rolled back: endpoint churn-model-staging serves version {older.version} again, but "
        "its smoke test failed too (smoke-test staging: row 1: expected 1 predictions, got 0)"
    ) in line
    assert backend.backend.describe_endpoint("staging").model_version == older.version

    # The emergency path says the same and fails: git names what runs, health was not shown.
    assert backend.cli("deploy", "--env", "staging").exit_code == 0  # git names the newer one
    script_wrong_answers(backend)
    rolled = backend.cli("rollback", "--env", "staging")
    assert rolled.exit_code == 1
    assert rolled.stderr.strip() == (
        f"error: staging: version {older.version} is restored, but its smoke test failed too "
        "(smoke-test staging: row 1: expected 1 predictions, got 0)"
    )
    manifest = json.loads(backend.project.manifest_path("staging").read_text())
    assert manifest["model_version"] == older.version


def test_failed_smoke_test_without_earlier_version_changes_nothing(
    backend: BackendHarness,
) -> None:
    wrong = seed_wrong_answers(backend)
    merge_and_deploy(backend, "staging", wrong.version, pr=1)
    script_wrong_answers(backend)
    backend.reset_mutations()

    result = backend.cli("smoke-test", "--env", "staging", "--rollback-on-failure")

    assert result.exit_code == 1
    assert "not rolled back: endpoint churn-model-staging records no earlier version" in (
        result.stderr
    )
    assert backend.mutations() == []


def test_prod_rollback_does_not_need_staging_to_serve_the_old_version(
    backend: BackendHarness,
) -> None:
    first, second = backend.seed_version(), backend.seed_version()
    for version, pr in ((first.version, 1), (second.version, 3)):
        merge_and_deploy(backend, "staging", version, pr=pr)
        merge_and_deploy(backend, "prod", version, pr=pr + 1)

    backend.expect_healthy_smoke_test("prod")
    result = backend.cli("rollback", "--env", "prod")

    assert result.exit_code == 0, result.output
    assert backend.backend.describe_endpoint("prod").model_version == first.version
    assert backend.backend.describe_endpoint("staging").model_version == second.version
    manifest = json.loads(backend.project.manifest_path("prod").read_text())
    assert manifest["model_version"] == first.version


def test_revert_after_an_automatic_prod_restore_is_a_no_op(backend: BackendHarness) -> None:
    """The smoke test's own advice (revert the manifest) after it restored prod changes nothing,
    although staging no longer serves the restored version."""
    good = backend.seed_version()
    wrong = seed_wrong_answers(backend)
    merge_and_deploy(backend, "staging", good.version, pr=1)
    merge_and_deploy(backend, "prod", good.version, pr=2)
    merge_and_deploy(backend, "staging", wrong.version, pr=3)
    merge_and_deploy(backend, "prod", wrong.version, pr=4)
    script_wrong_answers(backend, "prod")
    backend.expect_healthy_smoke_test("prod")
    restored = backend.cli("smoke-test", "--env", "prod", "--rollback-on-failure")
    assert restored.exit_code == 1 and "rolled back" in restored.stderr
    assert backend.backend.describe_endpoint("prod").model_version == good.version
    backend.reset_mutations()

    merge_and_deploy(backend, "prod", good.version, pr=5)  # `git revert` of PR 4

    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("prod").model_version == good.version
    assert backend.backend.describe_endpoint("staging").model_version == wrong.version
