"""`make demo-drift`: after the loop, shifted traffic to prod is found by `monitor`, retraining
registers a new version and `propose` opens its pull request (the issue's closed loop)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_demo import continue_demo, finished_loop, live_pids

__all__ = ["finished_loop"]  # the fixture of the session's one loop, which this test continues


def test_drift_is_detected_retrained_and_proposed(finished_loop, tmp_path: Path) -> None:
    proc = continue_demo(finished_loop, tmp_path, "drift")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stages = ("shifted traffic → prod", "labelled new data → git", "monitor prod --retrain")
    for stage in (*stages, "propose staging (new)"):
        assert f"✓ {stage}" in proc.stdout, stage
    out = " ".join(proc.stdout.split())  # rich wraps lines
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert "error: churn-model-prod-monitor:" in out and "feature(s) drifted" in out
    # the report's path on one line of its own, whatever its length (not folded by a panel)
    assert any(x.startswith("html report: ") and x.endswith("report.html") for x in lines), out
    assert "registered model version 2" in out
    assert "## Deploy model version 2 to staging" in out

    repo = tmp_path / "churn-model"
    (summary_file,) = (repo / ".mlops" / "s3").rglob("monitoring/prod/runs/*/summary.json")
    names = sorted(p.name for p in summary_file.parent.iterdir())
    assert names == ["metrics.json", "report.html", "summary.json"]
    violations = json.loads(summary_file.read_text())["data_quality"]["violations"]
    # the scaled features drift (sampling makes a fourth one unlikely, not impossible)
    assert {v["feature_name"] for v in violations} >= {"mean_radius", "mean_texture", "mean_area"}
    branches = subprocess.run(
        ["git", "branch", "--format=%(refname:short)"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    assert "propose/staging-v2" in branches
    assert live_pids(repo) == []
