"""Cost in view (both backends): proposals and status show each environment's instance-hours
per month at minimum and maximum capacity, and the change a proposal makes."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_testkit import BackendHarness


def test_proposal_body_shows_instance_hours_and_the_change(
    backend: BackendHarness, tmp_path: Path
) -> None:
    backend.seed_version()
    # An uncommitted edit on the proposal branch: staging may no longer scale in to 1.
    path = backend.project.manifest_path("staging")
    data = json.loads(path.read_text())
    data["endpoint"]["autoscaling"]["min_capacity"] = 2
    data["endpoint"]["autoscaling"]["max_capacity"] = 3
    path.write_text(json.dumps(data, indent=2) + "\n")
    body_file = tmp_path / "body.md"

    result = backend.cli("propose", "--env", "staging", "--body-file", str(body_file))

    assert result.exit_code == 0, result.output
    body = body_file.read_text()
    assert "### Cost" in body
    assert (
        "| **staging** (this proposal) | 2-3 x ml.m5.large | 1,460-2,190 | +730 h at minimum, "
        "+730 h at maximum |"
    ) in body
    assert "| prod | 2-4 x ml.m5.large | 1,460-2,920 | no change |" in body


def test_status_shows_each_environments_instance_hours(backend: BackendHarness) -> None:
    result = backend.cli("status", "--format", "json")

    assert result.exit_code == 0, result.output
    rows = {row["environment"]: row for row in json.loads(result.stdout)["environments"]}
    assert (rows["staging"]["instance_hours_min"], rows["staging"]["instance_hours_max"]) == (
        730,
        1460,
    )
    assert (rows["prod"]["instance_hours_min"], rows["prod"]["instance_hours_max"]) == (1460, 2920)
    assert rows["prod"]["fleet"] == "2-4 x ml.m5.large: 1,460-2,920 instance-hours/month"
    table = backend.cli("status")
    assert "prod fleet: 2-4 x ml.m5.large: 1,460-2,920 instance-hours/month" in table.stdout
