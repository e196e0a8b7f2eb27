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


def script_wrong_answers(harness: BackendHarness) -> None:
    if harness.scripted_invocations:  # moto answers what it is told
        harness.prepare_invocations("staging", 1, answers=[{"predictions": []}])  # type: ignore[call-arg]


def test_failed_smoke_test_restores_the_previous_version(backend: BackendHarness) -> None:
    good = backend.seed_version()
    wrong = seed_wrong_answers(backend)
    merge_and_deploy(backend, "staging", good.version, pr=1)
    merge_and_deploy(backend, "staging", wrong.version, pr=2)
    script_wrong_answers(backend)

    result = backend.cli("smoke-test", "--env", "staging", "--rollback-on-failure")

    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("error: smoke-test staging: row 1: expected 1 predictions, got 0; ")
    assert line.endswith(
        f"rolled back: endpoint churn-model-staging serves version {good.version} again "
        "(revert the change to deploy/staging.json so git names what runs)"
    )
    state = backend.backend.describe_endpoint("staging")
    assert state.status == "InService" and state.model_version == good.version
    status = backend.cli("status")
    assert status.exit_code == 3  # git still names the version that failed: drift
    assert f"staging names v{wrong.version} but runs v{good.version}" in status.stderr


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
    if backend.scripted_invocations:
        backend.prepare_invocations("prod", 1, answers=[{"predictions": []}])  # type: ignore[call-arg]
    restored = backend.cli("smoke-test", "--env", "prod", "--rollback-on-failure")
    assert restored.exit_code == 1 and "rolled back" in restored.stderr
    assert backend.backend.describe_endpoint("prod").model_version == good.version
    backend.reset_mutations()

    merge_and_deploy(backend, "prod", good.version, pr=5)  # `git revert` of PR 4

    assert backend.mutations() == []
    assert backend.backend.describe_endpoint("prod").model_version == good.version
    assert backend.backend.describe_endpoint("staging").model_version == wrong.version
