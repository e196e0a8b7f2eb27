"""``monitor`` on the local backend: captured requests checked against the version's baseline.

The captures are written in SageMaker's data capture format (what the local router writes), the
baseline is a baseline.csv in the local s3 tree as the pipeline leaves it; the checks run through
the real CLI command and write Model Monitor's report files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_testkit import BUCKET, MANIFEST

from ci_scripts import data_quality as dq
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.cli import State, app

FEATURES = ("a", "b", "c")
RNG_SEED = 7


def _rows(n: int, seed: int, scale: dict[int, float] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.column_stack(
        [rng.normal(10, 2, n), rng.normal(0.5, 0.1, n), rng.lognormal(1, 0.3, n)]
    )
    for column, factor in (scale or {}).items():
        values[:, column] *= factor
    return values


def _capture_line(rows: Any, content_type: str = "text/csv") -> str:
    if content_type == "text/csv":
        data, encoding = "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows), "CSV"
    else:
        data, encoding = json.dumps({"instances": list(rows)}), "JSON"
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": "{}",
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": "x", "inferenceTime": "2024-01-01T00:00:00.000Z"},
            "eventVersion": "0",
        }
    )


@pytest.fixture
def monitored(repo: Path, backend: LocalBackend) -> LocalBackend:
    """Version 1 serves prod (manifest), registered with a 400-row baseline.csv."""
    baseline = backend.state.s3_path(f"s3://{BUCKET}/runs/x/Preprocess/baseline/baseline.csv")
    baseline.parent.mkdir(parents=True)
    lines = [",".join(FEATURES)] + [",".join(map(str, r)) for r in _rows(400, RNG_SEED)]
    baseline.write_text("\n".join(lines) + "\n")
    backend.registry.register(
        "churn-model",
        model_data_url=f"s3://{BUCKET}/m/model.tar.gz",
        image_uri="img",
        baseline_uri=backend.state.s3_uri(baseline),
    )
    (repo / "deploy").mkdir(exist_ok=True)
    for env in ("staging", "prod"):
        manifest = {**MANIFEST, "environment": env}
        (repo / "deploy" / f"{env}.json").write_text(json.dumps(manifest))
    return backend


def _capture(backend: LocalBackend, *lines: str, version: int = 1) -> None:
    folder = backend.state.capture_dir("prod") / f"version-{version}" / "2024/01/01/00"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "capture-1.jsonl").open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def _monitor(backend: LocalBackend, *extra: str) -> Any:
    from typer.testing import CliRunner

    state = State(project_dir=backend.project.root, backend_instance=backend)
    return CliRunner().invoke(
        app, ["monitor", "--env", "prod", *extra], obj=state, catch_exceptions=False
    )


def _report(backend: LocalBackend) -> Path:
    reports = backend.state.s3_path(dq.report_prefix(BUCKET, "prod"))
    (folder,) = {p.parent for p in reports.rglob(dq.VIOLATIONS_FILE)}
    return folder


def test_unshifted_traffic_is_not_flagged(monitored: LocalBackend) -> None:
    # 60 requests of 5 rows: the sizes a smoke test and a little traffic produce.
    rows = _rows(300, seed=99)
    _capture(monitored, *(_capture_line(rows[i : i + 5]) for i in range(0, 300, 5)))
    result = _monitor(monitored)
    assert result.exit_code == 0, result.output
    assert "no violations" in result.output
    folder = _report(monitored)
    assert json.loads((folder / dq.VIOLATIONS_FILE).read_text()) == {"violations": []}
    stats = json.loads((folder / dq.STATISTICS_FILE).read_text())
    assert stats["dataset"]["item_count"] == 300
    assert [f["name"] for f in stats["features"]] == list(FEATURES)
    constraints = json.loads((folder / dq.CONSTRAINTS_FILE).read_text())
    assert (
        constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    )


def test_shifted_feature_is_drift_exit_3_naming_it(monitored: LocalBackend) -> None:
    rows = _rows(120, seed=5, scale={0: 1.4})  # feature a scaled by 1.4
    _capture(
        monitored, _capture_line(rows[:60]), _capture_line(rows[60:].tolist(), "application/json")
    )
    result = _monitor(monitored)
    assert result.exit_code == 3, result.output
    assert "error: churn-model-prod-data-quality: 1 feature(s) drifted" in result.output
    assert "model version 1: a" in result.output
    violations = json.loads((_report(monitored) / dq.VIOLATIONS_FILE).read_text())["violations"]
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [
        ("a", dq.DRIFT_CHECK)
    ]
    assert "exceeds threshold: 0.1" in violations[0]["description"]


def test_manifest_threshold_decides(monitored: LocalBackend, repo: Path) -> None:
    """monitoring.drift_threshold in deploy/<env>.json is the one knob (schema default 0.1)."""
    _capture(monitored, _capture_line(_rows(120, seed=5, scale={0: 1.4})))
    manifest = json.loads((repo / "deploy" / "prod.json").read_text())
    manifest["monitoring"] = {"drift_threshold": 0.95}
    (repo / "deploy" / "prod.json").write_text(json.dumps(manifest))
    result = _monitor(monitored)
    assert result.exit_code == 0, result.output
    folder = _report(monitored)
    constraints = json.loads((folder / dq.CONSTRAINTS_FILE).read_text())
    assert (
        constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.95
    )


def test_few_rows_do_not_raise_alarms_by_noise(monitored: LocalBackend) -> None:
    # 8 rows: even a visible distance is within what sampling alone produces.
    _capture(monitored, _capture_line(_rows(8, seed=3, scale={0: 1.1})))
    result = _monitor(monitored)
    assert result.exit_code == 0, result.output


def test_schema_change_is_reported_naming_columns(monitored: LocalBackend) -> None:
    rows = _rows(50, seed=1)
    _capture(
        monitored,
        _capture_line(rows[:, :2]),  # column c missing
        _capture_line([{"a": 1.0, "b": 0.5, "c": 2.0, "d": 7.0}], "application/json"),
    )
    result = _monitor(monitored)
    assert result.exit_code == 1, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("error:"))
    assert "do not match model version 1's baseline schema" in line
    assert "captured column(s) not in the baseline: d" in line
    assert "retraining cannot fix it" in line


def test_extra_csv_values_and_missing_columns(monitored: LocalBackend) -> None:
    _capture(monitored, _capture_line(np.column_stack([_rows(20, seed=2), np.ones(20)])))
    result = _monitor(monitored)
    assert result.exit_code == 1
    assert "captured column(s) not in the baseline: _c3" in result.output

    data = dq.captured_dataset([[1.0, 2.0]], list(FEATURES))
    stats = dq.statistics(dq.read_csv(_baseline_csv(monitored)))
    found = dq.check(data, stats, dq.constraints(stats)).violations
    assert [(v["feature_name"], v["constraint_check_type"]) for v in found] == [
        ("c", dq.MISSING_COLUMN_CHECK)
    ]


def _baseline_csv(backend: LocalBackend) -> Path:
    version = backend.get_version("churn-model", 1)
    assert version and version.baseline_uri
    return backend.state.s3_path(version.baseline_uri)


def test_nothing_captured_is_no_failure(monitored: LocalBackend) -> None:
    result = _monitor(monitored)
    assert result.exit_code == 0, result.output
    assert "nothing to check: no requests captured for version 1" in result.output


def test_unreadable_baseline_exits_1(monitored: LocalBackend) -> None:
    _baseline_csv(monitored).write_text("a,b,c\n")
    _capture(monitored, _capture_line(_rows(10, seed=1)))
    result = _monitor(monitored)
    assert result.exit_code == 1
    assert "baseline s3://" in result.output and "cannot read" in result.output


def test_ks_distance_and_statistics_format() -> None:
    base = np.sort(np.arange(100, dtype=float))
    assert dq.ks_distance(base, base) == 0.0
    assert dq.ks_distance(base, base + 1000) == 1.0
    assert dq.ks_distance(base, base + 50) == pytest.approx(0.5)
    stats = dq.statistics(dq.Dataset(["x"], base.reshape(-1, 1)))
    feature = stats["features"][0]
    assert feature["inferred_type"] == "Integral"
    numbers = feature["numerical_statistics"]
    assert numbers["common"] == {"num_present": 100, "num_missing": 0}
    assert numbers["min"] == 0 and numbers["max"] == 99 and numbers["mean"] == 49.5
    kll = numbers["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == 100
    assert kll["sketch"]["data"][0] == base.tolist()
    assert dq.critical_distance(455, 20, 0.01 / 30) == pytest.approx(0.477, abs=0.01)
