"""`make demo-quality`: after the loop, unshifted test-split traffic goes to prod with inference
ids, labels (a share flipped) are uploaded with `ground-truth`, data quality stays clean and
`monitor --quality` catches the drop (the issue's "quality drop on data that did not move")."""

from __future__ import annotations

import json
from pathlib import Path

from test_demo import continue_demo, finished_loop, live_pids

__all__ = ["finished_loop"]  # the fixture of the session's one loop, which this test continues


def test_quality_drop_is_caught_where_drift_sees_nothing(finished_loop, tmp_path: Path) -> None:
    proc = continue_demo(finished_loop, tmp_path, "quality")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (
        "labelled traffic → prod",
        "upload ground truth",
        "monitor prod (drift)",
        "monitor prod --quality",
    ):
        assert f"✓ {stage}" in proc.stdout, stage
    out = " ".join(proc.stdout.split())  # rich wraps lines
    lines = [line.strip() for line in proc.stdout.splitlines()]
    assert "no violations: the captured requests match the baseline" in out
    assert "error: churn-model-prod-monitor:" in out and "dropped past max_metric_drop" in out
    assert "accuracy" in out.split("error: churn-model-prod-monitor:")[1]
    # the report's path on one line of its own, whatever its length (not folded by a panel)
    assert any(x.startswith("html report: ") and x.endswith("report.html") for x in lines), out

    repo = tmp_path / "churn-model"
    s3 = repo / ".mlops" / "s3"
    (labels,) = s3.rglob("groundtruth/prod/**/labels-*.jsonl")  # (beside the monitor's seed)
    records = [json.loads(line) for line in labels.read_text().splitlines()]
    assert len(records) == 5 * 57  # the test split, five times
    assert all(r["eventMetadata"]["eventId"].startswith("demo-") for r in records)
    captured_ids = {
        json.loads(line)["eventMetadata"].get("inferenceId")
        for path in (repo / ".mlops" / "datacapture" / "prod").rglob("*.jsonl")
        for line in path.read_text().splitlines()
    }
    assert {r["eventMetadata"]["eventId"] for r in records} & captured_ids  # the join has rows
    summaries = [json.loads(p.read_text()) for p in s3.rglob("monitoring/prod/runs/*/summary.json")]
    (checked,) = [s for s in summaries if s["status"] != "NoData"]  # the second run: nothing new
    failed = {v["metric_name"] for v in checked["model_quality"]["violations"]}
    assert {"accuracy", "auc"} <= failed
    assert not [
        v
        for v in checked["data_quality"]["violations"]
        if v["constraint_check_type"] == "baseline_drift_check"
    ]
    assert live_pids(repo) == []
