"""deployment=batch on every backend that runs batch jobs: GitOps unchanged (a merge deploys,
a re-apply is a no-op, prod takes only what staging runs healthily), a run scores every input row
with the version the environment runs, and status shows the last run."""

from __future__ import annotations

import json

from gitops_testkit import BackendHarness
from test_contract_rollback_status import merge_and_deploy

N_FEATURES = 30  # the default render's features (the harnesses' batch repos use them)


def put_inputs(harness: BackendHarness, env: str, name: str, ids: list[str]) -> str:
    """Write one batch input file (``<id>,<features>``) under ``env``'s input prefix."""
    manifest = json.loads(harness.project.manifest_path(env).read_text())
    prefix = manifest["batch"]["input_prefix"]
    body = "".join(f"{i},{','.join(['12.5'] * N_FEATURES)}\n" for i in ids)
    harness.backend.write_object(f"{prefix}{name}", body.encode())
    return prefix


def test_batch_deploy_run_no_op_and_status(batch_backend: BackendHarness) -> None:
    harness = batch_backend
    version = harness.seed_version()
    merge_and_deploy(harness, "staging", version.version, pr=1)
    state = harness.backend.describe_endpoint("staging")
    assert (state.name, state.status, state.model_version) == (
        "churn-model-staging-batch",
        "InService",
        version.version,
    )
    assert state.config["type"] == "batch"
    put_inputs(harness, "staging", "day-1.csv", ["a", "b", "c"])

    run = harness.cli("batch-run", "--env", "staging")

    assert run.exit_code == 0, run.output
    assert f"Succeeded (version {version.version}, 3 rows" in run.stdout  # every row scored
    last = harness.backend.last_batch_run("staging")
    assert (last.status, last.model_version) == ("Succeeded", version.version)
    status = harness.cli("status")
    assert status.exit_code == 0, status.output
    assert f"staging: last batch run {last.id} Succeeded" in " ".join(status.stdout.split())

    harness.reset_mutations()
    again = harness.cli("deploy", "--env", "staging", "--commit", "abc1234def")
    assert again.exit_code == 0, again.output
    assert "already scores with" in again.stdout and "no change" in again.stdout
    assert harness.mutations() == []


def test_prod_batch_takes_only_what_staging_runs(batch_backend: BackendHarness) -> None:
    harness = batch_backend
    staged = harness.seed_version()
    merge_and_deploy(harness, "staging", staged.version, pr=1)
    never = harness.seed_version()
    harness.backend.set_approval(never.group, never.version, "Approved", "approved by hand")
    path = harness.project.manifest_path("prod")
    data = json.loads(path.read_text())
    data["model_version"] = never.version
    path.write_text(json.dumps(data, indent=2) + "\n")
    harness.commit("Merge pull request #2 from promote/prod")
    harness.reset_mutations()

    refused = harness.cli("deploy", "--env", "prod", "--commit", "abc1234def")

    assert refused.exit_code == 1
    assert "not serving healthy in staging" in refused.stderr
    assert "churn-model-staging-batch" in refused.stderr
    assert harness.mutations() == []
    merge_and_deploy(harness, "prod", staged.version, pr=3)  # what staging runs: accepted
    assert harness.backend.describe_endpoint("prod").model_version == staged.version
