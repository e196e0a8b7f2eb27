"""`make demo-rollback`: after the loop, a broken version is proposed, merged and deployed to
staging; its canary fails, traffic goes back to the good version, deploy exits non-zero naming
the reason, and status shows staging still serving the good version."""

from __future__ import annotations

import json
from pathlib import Path

from test_demo import continue_demo, finished_loop, live_pids

__all__ = ["finished_loop"]  # the fixture of the session's one loop, which this test continues


def test_broken_version_canary_is_rolled_back(finished_loop, tmp_path: Path) -> None:
    proc = continue_demo(finished_loop, tmp_path, "rollback")

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in ("register broken", "merge broken PR", "deploy broken", "status after canary"):
        assert f"✓ {stage}" in proc.stdout, stage
    out = " ".join(proc.stdout.split())  # rich wraps lines
    # Staging runs one instance: all at once behind the alarms, said as such.
    assert (
        "error: endpoint churn-model-staging: rollout of version 2 rolled back (all at once "
        "behind alarms: 1 instance)" in out
    )
    assert "answered 5xx" in out and "version 1 keeps serving" in out
    assert "staging still serves version 1; git names version 2" in out
    repo = tmp_path / "churn-model"
    journal = [
        json.loads(line)["operation"]
        for line in (repo / ".mlops" / "journal.jsonl").read_text().splitlines()
    ]
    assert journal.count("StartCanary") == 1 and journal.count("RollbackCanary") == 1
    assert live_pids(repo) == []
