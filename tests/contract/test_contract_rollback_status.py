"""rollback (from the manifest's git history), status (drift), smoke-test."""

from __future__ import annotations

import json

from gitops_testkit import BackendHarness

NO_COLUMNS: dict = {"COLUMNS": None}  # CliRunner unsets it: stdout is no terminal, as in CI


def merge_and_deploy(harness: BackendHarness, env: str, version: int, pr: int) -> None:
    """What a merged manifest PR and its deploy workflow do."""
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")
    sha = harness.commit(f"Merge pull request #{pr} from propose/{env}-v{version}")
    result = harness.cli("deploy", "--env", env, "--commit", sha)
    assert result.exit_code == 0, result.output


def test_rollback_deploys_previous_version_and_rewrites_manifest(backend: BackendHarness) -> None:
    first, second = backend.seed_version(), backend.seed_version()
    merge_and_deploy(backend, "staging", first.version, pr=1)
    merge_and_deploy(backend, "staging", second.version, pr=2)

    backend.expect_healthy_smoke_test("staging")
    result = backend.cli("rollback", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert f"from version {second.version} to version {first.version}" in result.stdout
    restored = f"staging: version {first.version} is restored and its smoke test passed"
    assert restored in result.stdout
    assert backend.backend.describe_endpoint("staging").model_version == first.version
    manifest = json.loads(backend.project.manifest_path("staging").read_text())
    assert manifest["model_version"] == first.version


def test_rollback_skips_rejected_versions(backend: BackendHarness) -> None:
    first, second, third = (backend.seed_version() for _ in range(3))
    merge_and_deploy(backend, "staging", first.version, pr=1)
    merge_and_deploy(backend, "staging", second.version, pr=2)
    merge_and_deploy(backend, "staging", third.version, pr=3)
    backend.backend.set_approval(second.group, second.version, "Rejected", "bad data")

    backend.expect_healthy_smoke_test("staging")
    result = backend.cli("rollback", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert backend.backend.describe_endpoint("staging").model_version == first.version


def test_rollback_without_history_changes_nothing(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    merge_and_deploy(backend, "staging", seeded.version, pr=1)
    backend.reset_mutations()
    before = backend.project.manifest_path("staging").read_text()

    result = backend.cli("rollback", "--env", "staging")

    assert result.exit_code == 1
    assert "deploy/staging.json: $.model_version: no earlier deployable version" in result.stderr
    # the full history was read: no shallow clone to blame; it names what serves
    assert "shallow" not in result.stderr
    assert f"v{seeded.version} serves now" in result.stderr
    assert backend.project.manifest_path("staging").read_text() == before
    assert backend.mutations() == []


def test_status_in_sync_exits_zero(backend: BackendHarness) -> None:
    seeded = backend.seed_version(metrics={"auc": 0.9876})
    merge_and_deploy(backend, "staging", seeded.version, pr=1)

    result = backend.cli("status", "--format", "json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    staging, prod = document["environments"]
    assert staging["desired_version"] == staging["running_version"] == seeded.version
    assert staging["desired_approval"] == "Approved"
    assert staging["primary_metric"] == "auc"  # the model's, by name (model_contract)
    assert staging["primary_metric_value"] == 0.9876 and staging["out_of_sync"] is False
    assert staging["differences"] == []
    assert prod["desired_version"] is None and prod["endpoint_status"] == "absent"
    assert document["template_version"] == "0.1.0"

    table = backend.cli("status")
    assert table.exit_code == 0
    assert "staging" in table.stdout and "0.9876" in table.stdout


def test_status_drift_exits_3(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = seeded.version
    path.write_text(json.dumps(data, indent=2) + "\n")

    result = backend.cli("status", env=NO_COLUMNS)

    assert result.exit_code == 3
    assert result.stderr.strip() == (
        f"error: out of sync with git: staging names v{seeded.version} but runs -"
    )
    assert "in sync" in result.stdout and " no " in result.stdout
    # No terminal (a CI log): rows stay on one line instead of wrapping at 80 columns.
    staging = next(line for line in result.stdout.splitlines() if "│ staging" in line)
    assert "PendingManualApproval" in staging and "churn-model-staging" in staging
    assert len(staging) > 80


def test_smoke_test_passes_on_a_healthy_endpoint(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    merge_and_deploy(backend, "staging", seeded.version, pr=1)
    rows = json.loads(backend.project.manifest_path("staging").read_text())["smoke_test"]["rows"]
    backend.prepare_invocations("staging", rows)

    result = backend.cli("smoke-test", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("smoke-test staging: OK")
    assert "p95" in result.stdout


def test_smoke_test_without_endpoint_names_env(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    path = backend.project.manifest_path("prod")
    data = json.loads(path.read_text())
    data["model_version"] = seeded.version
    path.write_text(json.dumps(data, indent=2) + "\n")

    result = backend.cli("smoke-test", "--env", "prod")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: smoke-test prod: endpoint")


def test_nothing_deployed_is_a_green_no_op_through_smoke_test(backend: BackendHarness) -> None:
    """A new repo's first push: both null manifests changed; deploy, smoke-test and promote
    all end green without touching anything."""
    for env in ("staging", "prod"):
        deployed = backend.cli("deploy", "--env", env)
        assert deployed.exit_code == 0, deployed.output
        smoke = backend.cli("smoke-test", "--env", env, "--rollback-on-failure")
        assert smoke.exit_code == 0, smoke.output
        assert f"smoke-test {env}: deploy/{env}.json names no model_version" in smoke.stdout
    promoted = backend.cli("promote", "--from", "staging", "--to", "prod")
    assert promoted.exit_code == 0, promoted.output
    assert "nothing to promote" in promoted.stdout
    assert backend.mutations() == []


def test_rollback_of_an_empty_manifest_is_refused(backend: BackendHarness) -> None:
    result = backend.cli("rollback", "--env", "prod")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: deploy/prod.json: $.model_version: is null; nothing to roll back"
    )


def test_status_compares_every_setting_the_endpoint_exposes(backend: BackendHarness) -> None:
    """A setting changed behind git's back (or in git, not yet deployed) is out of sync too."""
    seeded = backend.seed_version()
    merge_and_deploy(backend, "staging", seeded.version, pr=1)
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["data_capture"]["sampling_percentage"] = 37
    data["endpoint"]["autoscaling"]["max_capacity"] = 3
    path.write_text(json.dumps(data, indent=2) + "\n")

    result = backend.cli("status", env=NO_COLUMNS)

    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("error: out of sync with git: staging runs other settings")
    assert "data_capture.sampling_percentage: git 37, running 100" in result.stdout
    assert "endpoint.autoscaling.max_capacity: git 3, running 2" in result.stdout
    document = json.loads(backend.cli("status", "--format", "json").stdout)
    assert document["environments"][0]["out_of_sync"] is True
    assert len(document["environments"][0]["differences"]) == 2


def test_status_shows_every_environment_when_one_manifest_is_invalid(
    backend: BackendHarness,
) -> None:
    seeded = backend.seed_version()
    merge_and_deploy(backend, "staging", seeded.version, pr=1)
    path = backend.project.manifest_path("prod")
    data = json.loads(path.read_text())
    data["endpoint"]["instance_type"] = "ml.bogus.huge"
    path.write_text(json.dumps(data, indent=2) + "\n")

    result = backend.cli("status", env=NO_COLUMNS)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: status of prod unknown: deploy/prod.json: ")
    assert "$.endpoint.instance_type" in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["staging", "prod"]
