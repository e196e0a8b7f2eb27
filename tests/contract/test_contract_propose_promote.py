"""propose (registry -> staging manifest) and promote (staging -> prod manifest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitops_testkit import BackendHarness


def manifest_version(harness: BackendHarness, env: str) -> int | None:
    return json.loads(harness.project.manifest_path(env).read_text())["model_version"]


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def deploy_staging(harness: BackendHarness, version: int) -> None:
    path = harness.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")
    result = harness.cli("deploy", "--env", "staging", "--commit", "c0ffee", "--pr", "3")
    assert result.exit_code == 0, result.output


@pytest.fixture
def github_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "github_output"
    path.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(path))
    return path


def test_nothing_to_propose_leaves_manifest_alone(
    backend: BackendHarness, github_output: Path
) -> None:
    before = backend.project.manifest_path("staging").read_text()

    result = backend.cli("propose", "--env", "staging")

    assert result.exit_code == 0
    assert "nothing to propose" in result.stdout
    assert backend.project.manifest_path("staging").read_text() == before
    assert outputs(github_output)["proposed"] == "false"


def test_propose_writes_manifest_and_body_comparing_with_current(
    backend: BackendHarness, github_output: Path, tmp_path: Path
) -> None:
    current = backend.seed_version(metrics={"auc": 0.90, "f1": 0.80}, hyperparameters={"C": "1.0"})
    deploy_staging(backend, current.version)
    candidate = backend.seed_version(
        metrics={"auc": 0.95, "f1": 0.85}, hyperparameters={"C": "0.5"}
    )
    body_file = tmp_path / "body.md"

    result = backend.cli("propose", "--env", "staging", "--body-file", str(body_file))

    assert result.exit_code == 0, result.output
    assert manifest_version(backend, "staging") == candidate.version
    body = body_file.read_text()
    assert "| **auc** (primary, higher is better) | 0.9500 | 0.9000 | +0.0500 |" in body
    assert "| f1 | 0.8500 | 0.8000 | +0.0500 |" in body
    assert f"v{candidate.version} (candidate)" in body and f"v{current.version} (now)" in body
    assert "| C | `0.5` (changed) | `1.0` |" in body
    assert candidate.arn in body
    assert "merge this pull request" in body.lower()
    written = outputs(github_output)
    assert written["proposed"] == "true"
    assert written["version"] == str(candidate.version)
    assert written["branch"] == f"propose/staging-v{candidate.version}"


def test_propose_skips_rejected_and_older_versions(backend: BackendHarness) -> None:
    pending = backend.seed_version()
    backend.seed_version(approval="Rejected")

    result = backend.cli("propose", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert manifest_version(backend, "staging") == pending.version
    assert "## Deploy model version" in result.stdout  # the body goes to stdout by default

    again = backend.cli("propose", "--env", "staging")
    assert again.exit_code == 0 and "nothing to propose" in again.stdout


def test_propose_prod_is_refused(backend: BackendHarness) -> None:
    result = backend.cli("propose", "--env", "prod")
    assert result.exit_code == 1
    assert "promote --from staging --to prod" in result.stderr


def test_promote_writes_prod_manifest_for_what_staging_serves(
    backend: BackendHarness, github_output: Path, tmp_path: Path
) -> None:
    seeded = backend.seed_version(metrics={"auc": 0.93})
    deploy_staging(backend, seeded.version)
    body_file = tmp_path / "prod.md"

    result = backend.cli(
        "promote", "--from", "staging", "--to", "prod", "--body-file", str(body_file)
    )

    assert result.exit_code == 0, result.output
    assert manifest_version(backend, "prod") == seeded.version
    body = body_file.read_text()
    assert f"## Deploy model version {seeded.version} to prod" in body
    assert "| **auc** (primary, higher is better) | 0.9300 | - | - |" in body
    assert "**Shadow test**: off (deployment.shadow.enabled is false)." in body
    assert outputs(github_output)["branch"] == f"propose/prod-v{seeded.version}"

    again = backend.cli("promote", "--from", "staging", "--to", "prod")
    assert again.exit_code == 0 and "nothing to promote" in again.stdout


def test_promote_refuses_when_staging_does_not_serve_its_manifest(backend: BackendHarness) -> None:
    seeded = backend.seed_version()
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["model_version"] = seeded.version  # merged, but not deployed
    path.write_text(json.dumps(data, indent=2) + "\n")
    before = backend.project.manifest_path("prod").read_text()

    result = backend.cli("promote", "--from", "staging", "--to", "prod")

    assert result.exit_code == 1
    assert f"endpoint {backend.project.endpoint_name('staging')}: runs no endpoint" in result.stderr
    assert backend.project.manifest_path("prod").read_text() == before


def test_promote_only_staging_to_prod(backend: BackendHarness) -> None:
    result = backend.cli("promote", "--from", "prod", "--to", "staging")
    assert result.exit_code == 1
    assert "the only promotion is --from staging --to prod" in result.stderr


def test_propose_opens_nothing_for_the_same_model_as_the_one_running(
    backend: BackendHarness, github_output: Path
) -> None:
    """A pipeline re-run with nothing changed registers the cached artifact again: proposing it
    would ask reviewers to approve the model they already run."""
    running = backend.seed_version()
    deploy_staging(backend, running.version)
    again = backend.seed_version(same_model_as=running)
    before = backend.project.manifest_path("staging").read_text()

    result = backend.cli("propose", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert (
        f"nothing to propose: version {again.version} is the same model as version "
        f"{running.version}, which deploy/staging.json names (same artifact "
        f"{running.model_data_url} and image)"
    ) in result.stdout
    assert backend.project.manifest_path("staging").read_text() == before
    assert outputs(github_output)["proposed"] == "false"


def test_propose_body_names_the_replaced_version_as_it_was(
    backend: BackendHarness, tmp_path: Path
) -> None:
    current = backend.seed_version()
    deploy_staging(backend, current.version)
    backend.seed_version()
    body_file = tmp_path / "body.md"

    assert backend.cli("propose", "--env", "staging", "--body-file", str(body_file)).exit_code == 0

    body = body_file.read_text()
    assert f"It replaces version {current.version}, which deploy/staging.json named before" in body
    assert "names now" not in body


def test_propose_to_a_directory_body_file_changes_nothing(
    backend: BackendHarness, tmp_path: Path
) -> None:
    backend.seed_version()
    before = backend.project.manifest_path("staging").read_text()

    result = backend.cli("propose", "--env", "staging", "--body-file", str(tmp_path))

    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: --body-file {tmp_path}: is a directory; name a file to write"
    )
    assert backend.project.manifest_path("staging").read_text() == before
