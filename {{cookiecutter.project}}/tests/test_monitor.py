"""The monitor step on synthetic traffic: drift found and no false alarm, categorical features,
schema changes, both sides of capture records (CSV or JSON, single rows and batches), model
quality with and without labels, late labels joined on a later run, and a run with nothing new."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from {{ cookiecutter.__package }} import capture, drift, live_quality, monitor

COLUMNS = ["size", "weight", "colour"]
NOW = datetime.now(UTC)


def _rows(
    n: int, seed: int, shift: float = 0.0, colours: tuple[str, ...] = ("red", "blue")
) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    sizes = rng.normal(10 + shift, 2, n)
    weights = rng.normal(50, 5, n)
    picked = rng.choice(colours, n)
    return [
        [f"{s:.4f}", f"{w:.4f}", str(c)] for s, w, c in zip(sizes, weights, picked, strict=True)
    ]


def _statistics() -> dict[str, Any]:
    rows = _rows(1000, seed=1)
    probabilities = np.random.default_rng(2).beta(2, 2, len(rows))
    return drift.baseline(COLUMNS, rows, probabilities)


def _line(
    rows: list[list[Any]],
    probabilities: list[float],
    inference_id: str | None = None,
    when: datetime = NOW,
    json_request: bool = False,
) -> str:
    """One capture record: a CSV (or JSON) request and serve's JSON answer."""
    if json_request:
        request = {
            "observedContentType": "application/json",
            "mode": "INPUT",
            "encoding": "JSON",
            "data": json.dumps({"instances": rows}),
        }
    else:
        request = {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "encoding": "CSV",
            "data": "\n".join(",".join(str(v) for v in row) for row in rows),
        }
    answer = {"predictions": [{"label": int(p >= 0.5), "probability": p} for p in probabilities]}
    meta: dict[str, Any] = {
        "eventId": "e",
        "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    if inference_id:
        meta["inferenceId"] = inference_id
    record = {
        "captureData": {
            "endpointInput": request,
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "encoding": "JSON",
                "data": json.dumps(answer),
            },
        },
        "eventMetadata": meta,
        "eventVersion": "0",
    }
    return json.dumps(record)


def test_clean_traffic_raises_no_alarm_and_shifted_traffic_drifts() -> None:
    statistics = _statistics()
    clean = drift.check(drift.live_data(_rows(400, seed=3), COLUMNS), statistics, {})
    assert clean.violations == []
    assert set(clean.features) == set(COLUMNS)
    assert clean.features["colour"].kind == "categorical"

    shifted = drift.check(
        drift.live_data(_rows(400, seed=4, shift=3.0, colours=("red", "green")), COLUMNS),
        statistics,
        {},
    )
    drifted = {v["feature_name"] for v in shifted.violations}
    assert drifted == {"size", "colour"}  # weight did not move
    assert shifted.features["size"].distance > 0.4 and shifted.features["size"].psi > 0.2


def test_a_handful_of_rows_cannot_raise_an_alarm_by_noise() -> None:
    few = drift.check(drift.live_data(_rows(5, seed=5, shift=1.0), COLUMNS), _statistics(), {})
    assert few.violations == []


def test_prediction_drift_is_judged_like_a_feature() -> None:
    statistics = _statistics()
    data = drift.live_data(_rows(300, seed=6), COLUMNS)
    assert not drift.check(
        data, statistics, {}, list(np.random.default_rng(7).beta(2, 2, 300))
    ).violations
    skewed = drift.check(data, statistics, {}, [0.99] * 300)
    assert [v["constraint_check_type"] for v in skewed.violations] == [drift.PREDICTION_DRIFT_CHECK]


def test_a_schema_change_names_the_missing_and_extra_columns() -> None:
    rows = [[*row[:2], "red", "9"] for row in _rows(50, seed=8)]  # a fourth, unknown column
    objects = [{"size": "10", "colour": "red"}] * 10  # JSON objects without weight
    checks = {
        (v["feature_name"], v["constraint_check_type"])
        for v in drift.check(drift.live_data(rows + objects, COLUMNS), _statistics(), {}).violations
    }
    assert ("_c3", drift.EXTRA_COLUMN_CHECK) in checks
    assert ("weight", drift.COMPLETENESS_CHECK) in checks
    only_objects = drift.check(drift.live_data(objects, COLUMNS), _statistics(), {})
    assert ("weight", drift.MISSING_COLUMN_CHECK) in {
        (v["feature_name"], v["constraint_check_type"]) for v in only_objects.violations
    }


def test_both_sides_of_mixed_encodings_single_rows_and_batches_are_read() -> None:
    rows = _rows(3, seed=9)
    json_batch = _line(rows, [0.1, 0.6, 0.9], "batch", json_request=True)
    csv_single = _line(rows[:1], [0.2], "single")
    base64_record = json.loads(_line(rows[:1], [0.7], "b64"))
    side = base64_record["captureData"]["endpointInput"]
    side.update(encoding="BASE64", data=base64.b64encode(side["data"].encode()).decode())
    found = capture.read_lines([json_batch, csv_single, json.dumps(base64_record), "not json", ""])
    assert found.skipped == 1
    assert [len(r.rows) for r in found.records] == [3, 1, 1]
    assert [p.label for p in found.records[0].predictions] == [0, 1, 1]
    assert found.records[2].rows == [rows[0]]
    assert found.records[1].inference_id == "single" and found.records[1].time is not None


def test_a_request_and_answer_that_disagree_on_rows_are_skipped() -> None:
    bad = _line(_rows(2, seed=10), [0.5])
    assert capture.read_lines([bad]).skipped == 1


def test_metrics_are_one_function_per_problem_type() -> None:
    joined = live_quality.Joined(
        captured_rows=4,
        truth=["1", "0", "1", "0"],
        labels=[1, 0, 0, 0],
        probabilities=[0.9, 0.2, 0.4, 0.1],
    )
    metrics = live_quality.live_metrics("binary_classification", joined)
    assert metrics["accuracy"] == 0.75 and metrics["recall"] == 0.5 and metrics["auc"] == 1.0
    with pytest.raises(ValueError, match="problem_type 'ranking'"):
        live_quality.live_metrics("ranking", joined)


def _inputs(root: Path) -> dict[str, Path]:
    inputs = {name: root / "input" / name for name in monitor.INPUTS}
    for folder in inputs.values():
        folder.mkdir(parents=True, exist_ok=True)
    (inputs["baseline"] / "statistics.json").write_text(json.dumps(_statistics()))
    return inputs


def _config(**quality: Any) -> monitor.Config:
    return monitor.Config.parse(
        json.dumps(
            {
                "env": "prod",
                "model_version": 1,
                "registered": {
                    "accuracy": 0.95,
                    "auc": 0.97,
                    "f1": 0.95,
                    "precision": 0.95,
                    "recall": 0.95,
                },
                "quality": {"min_labelled_rows": 20, **quality},
            }
        )
    )


def _run(root: Path, inputs: dict[str, Path], config: monitor.Config) -> dict[str, Any]:
    """One run; the state it writes is the next run's input, as the pipeline wires it."""
    report, state = root / "report", root / "state-out"
    summary = monitor.run(config, inputs, report, state)
    for name in ("state.json", "history.jsonl"):
        if (state / name).is_file():
            (inputs["state"] / name).write_text((state / name).read_text())
    return summary


def _labels(path: Path, truth: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps(
                {
                    "groundTruthData": {"data": str(v), "encoding": "CSV"},
                    "eventMetadata": {"eventId": k},
                    "eventVersion": "0",
                }
            )
            + "\n"
            for k, v in truth.items()
        )
    )


def test_quality_late_labels_and_a_run_with_nothing_new(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    rows = _rows(60, seed=11)
    truth = {f"id-{i}": i % 2 for i in range(60)}
    probability = {k: (0.8 if v else 0.2) for k, v in truth.items()}  # a perfect model
    when = NOW - timedelta(hours=1)
    (inputs["capture"] / "c.jsonl").write_text(
        "".join(
            _line([row], [probability[f"id-{i}"]], f"id-{i}", when) + "\n"
            for i, row in enumerate(rows)
        )
    )

    first = _run(tmp_path, inputs, _config())
    assert first["data_quality"]["rows"] == 60
    checks = {v["constraint_check_type"] for v in first["data_quality"]["violations"]}
    assert checks == {drift.PREDICTION_DRIFT_CHECK}  # 0.2/0.8 answers, unlike the baseline's
    assert first["model_quality"]["status"] == "NoData"  # no labels yet: nothing judged
    assert (tmp_path / "report" / "report.html").is_file()

    again = _run(tmp_path, inputs, _config())
    assert again["status"] == "NoData" and "no capture newer" in again["reason"]

    _labels(inputs["groundtruth"] / "2026" / "1-late.jsonl", truth)  # labels arrive after both runs
    late = _run(tmp_path, inputs, _config())
    quality = late["model_quality"]
    assert quality["labelled_rows"] == 60 and quality["coverage"] == 1.0 and quality["judged"]
    assert quality["status"] == "Completed" and quality["violations"] == []
    assert late["data_quality"]["status"] == "NoData"  # no new capture: drift not re-judged

    flipped = {k: (1 - v if i % 3 == 0 else v) for i, (k, v) in enumerate(truth.items())}
    _labels(inputs["groundtruth"] / "2026" / "2-corrected.jsonl", flipped)  # later key wins
    dropped = _run(tmp_path, inputs, _config())["model_quality"]
    assert dropped["status"] == "CompletedWithViolations"
    assert {"accuracy", "auc"} <= {v["metric_name"] for v in dropped["violations"]}
    history = (inputs["state"] / "history.jsonl").read_text().splitlines()
    assert len(history) == 3  # every run that looked at something, for the metrics over time
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Live metrics over time" in page and "accuracy" in page


def test_labels_outside_the_window_are_not_joined(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    old = NOW - timedelta(hours=100)
    (inputs["capture"] / "c.jsonl").write_text(_line(_rows(1, seed=12), [0.9], "old", old) + "\n")
    _labels(inputs["groundtruth"] / "l.jsonl", {"old": 1})
    summary = _run(tmp_path, inputs, _config(label_window_hours=72))
    assert summary["model_quality"]["labelled_rows"] == 0


def test_drifting_features_get_their_distributions_on_the_page(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    shifted = _rows(300, seed=13, shift=4.0)
    (inputs["capture"] / "c.jsonl").write_text("".join(_line([r], [0.5]) + "\n" for r in shifted))
    summary = _run(tmp_path, inputs, _config())
    assert summary["data_quality"]["status"] == "CompletedWithViolations"
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<figure><svg" in page and "size: distance" in page
    datums = json.loads((tmp_path / "report" / "metrics.json").read_text())["MetricData"]
    assert {"MetricName": "DriftedFeatures", "Value": 2.0}.items() <= next(
        d for d in datums if d["MetricName"] == "DriftedFeatures"
    ).items()


def test_a_run_before_any_capture_ends_at_once(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    (inputs["capture"] / "_monitor-seed.jsonl").write_text("")  # what deploy seeds
    summary = _run(tmp_path, inputs, _config())
    assert summary["status"] == "NoData" and summary["reason"] == "nothing captured yet"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["summary.json"]
