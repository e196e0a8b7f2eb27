"""The monitor step on synthetic traffic: drift found and no false alarm, categorical features,
schema changes, both sides of capture records (CSV or JSON, single rows and batches), model
quality with and without labels, late labels joined on a later run, and a run with nothing new.

The answers in the captures are the trained model's real ones (``model.response`` of its
predictions on the shipped dataset), and every expectation reads model.py's facts (its metrics,
their directions, its classes), so the suite holds for every problem type."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ci_scripts.runtime import capture, drift, live_quality, metrics, model, monitor
from ci_scripts.runtime.features import read_labelled_dir, to_arrays

COLUMNS = ["size", "weight", "colour"]
NOW = datetime.now(UTC)
DATA = Path(__file__).resolve().parents[2] / "data"
Answer = dict[str, Any]


@pytest.fixture(scope="module")
def labelled(trained_model: Any) -> tuple[list[Answer], np.ndarray]:
    """The model's answers to every row of the shipped dataset, and the rows' true targets."""
    features, truth = to_arrays(read_labelled_dir(DATA, trained_model.features))
    return model.response(trained_model.predict(features)), truth


@pytest.fixture(scope="module")
def answers(labelled: tuple[list[Answer], np.ndarray]) -> list[Answer]:
    return labelled[0]


def _sample(pool: list[Answer], n: int, seed: int) -> list[Answer]:
    """``n`` answers of ``pool`` at evenly spaced quantiles of their drift value, shuffled:
    traffic distributed like the baseline's (a random draw may, rarely, look shifted)."""
    ordered = sorted(pool, key=model.drift_value)
    picked = [ordered[int(i)] for i in np.linspace(0, len(ordered) - 1, n).round()]
    return [picked[i] for i in np.random.default_rng(seed).permutation(n)]


def _shifted(pool: list[Answer], n: int, seed: int) -> list[Answer]:
    """``n`` answers from the fifth of ``pool`` with the highest drift value (shifted traffic:
    the highest scores, the last class, or the largest values)."""
    top = sorted(pool, key=model.drift_value)[-max(len(pool) // 5, 1) :]
    return _sample(top, n, seed)


def _truth(answer: Answer) -> float:
    """The true target that makes ``answer`` right (a perfect model)."""
    return model.outcome(model.from_answers([answer]))[0].item()


def _wrong(answer: Answer, pool: list[Answer]) -> float:
    """A true target that makes ``answer`` wrong: another class, or a value far off."""
    right = _truth(answer)
    if model.CLASSES is None:
        values = [_truth(a) for a in pool]
        return right + (max(values) - min(values))
    return model.CLASSES[(model.CLASSES.index(right) + 1) % len(model.CLASSES)]


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


def _statistics(pool: list[Answer] | None = None) -> dict[str, Any]:
    """The baseline of synthetic features and of ``pool``'s drift values (as baseline.py)."""
    predictions = [model.drift_value(a) for a in pool or []]
    return drift.baseline(COLUMNS, _rows(1000, seed=1), predictions, model.DRIFT_KIND)


def _line(
    rows: list[list[Any]],
    answers: list[Answer],
    inference_id: str | None = None,
    when: datetime = NOW,
    json_request: bool = False,
) -> str:
    """One capture record: a CSV (or JSON) request and serve's JSON answer (``answers``)."""
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
    answer = {"predictions": answers}
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


def test_prediction_drift_is_judged_like_a_feature(answers: list[Answer]) -> None:
    statistics = _statistics(answers)
    assert statistics["prediction"]["kind"] == model.DRIFT_KIND
    data = drift.live_data(_rows(300, seed=6), COLUMNS)
    alike = [model.drift_value(a) for a in _sample(answers, 300, seed=7)]
    clean = drift.check(data, statistics, {}, alike)
    assert clean.violations == [] and drift.PREDICTION in clean.features
    skewed = [model.drift_value(a) for a in _shifted(answers, 300, seed=7)]
    found = drift.check(data, statistics, {}, skewed)
    assert [v["constraint_check_type"] for v in found.violations] == [drift.PREDICTION_DRIFT_CHECK]


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


def test_both_sides_of_mixed_encodings_single_rows_and_batches_are_read(
    answers: list[Answer],
) -> None:
    rows = _rows(3, seed=9)
    given = _sample(answers, 5, seed=9)
    json_batch = _line(rows, given[:3], "batch", json_request=True)
    csv_single = _line(rows[:1], given[3:4], "single")
    base64_record = json.loads(_line(rows[:1], given[4:], "b64"))
    side = base64_record["captureData"]["endpointInput"]
    side.update(encoding="BASE64", data=base64.b64encode(side["data"].encode()).decode())
    found = capture.read_lines([json_batch, csv_single, json.dumps(base64_record), "not json", ""])
    assert found.skipped == 1
    assert [len(r.rows) for r in found.records] == [3, 1, 1]
    assert [p.answer for p in found.records[0].predictions] == given[:3]  # the model's, whole
    assert [p.value for p in found.records[0].predictions] == [
        model.drift_value(a) for a in given[:3]
    ]
    assert found.records[2].rows == [rows[0]]
    assert found.records[1].inference_id == "single" and found.records[1].time is not None


def test_a_csv_answer_holds_the_drift_value_of_each_row(answers: list[Answer]) -> None:
    given = _sample(answers, 2, seed=14)
    record = json.loads(_line(_rows(2, seed=14), given))
    record["captureData"]["endpointOutput"].update(
        observedContentType="text/csv",
        encoding="CSV",
        data="\n".join(str(model.drift_value(a)) for a in given),
    )
    (found,) = capture.read_lines([json.dumps(record)]).records
    assert [p.value for p in found.predictions] == [model.drift_value(a) for a in given]


def test_answers_that_are_not_the_models_are_skipped(answers: list[Answer]) -> None:
    bad = _line(_rows(2, seed=10), _sample(answers, 1, seed=10))  # 2 rows, 1 answer
    not_an_answer = _line(_rows(1, seed=10), [{"error": "model not loaded"}])
    no_number = _line(_rows(1, seed=10), [dict.fromkeys(model.ANSWER_FIELDS, "x")])
    assert capture.read_lines([bad, not_an_answer, no_number]).skipped == 3


def test_live_metrics_are_the_models_own_as_evaluate_computes_them(
    labelled: tuple[list[Answer], np.ndarray],
) -> None:
    answers, truth = labelled
    joined = live_quality.Joined(
        captured_rows=len(truth), truth=[str(v) for v in truth.tolist()], answers=answers
    )
    live = live_quality.live_metrics(joined)
    evaluated = metrics.scores_of(truth, model.from_answers(answers), "dataset")
    assert set(evaluated) == set(model.METRICS)
    assert {name: live[name] for name in model.METRICS} == pytest.approx(evaluated)
    joined.truth[0] = "not a label"
    with pytest.raises(ValueError, match="not a label"):
        live_quality.live_metrics(joined)


def test_live_metrics_survive_a_single_class_of_labels(answers: list[Answer]) -> None:
    if model.CLASSES is None:
        pytest.skip("a regression has no classes")
    some = _sample(answers, 10, seed=15)
    joined = live_quality.Joined(captured_rows=10, truth=[str(model.CLASSES[0])] * 10, answers=some)
    live = live_quality.live_metrics(joined)  # AUC and the like are NaN, not an error
    assert set(model.METRICS) <= set(live)


@pytest.mark.parametrize("name", model.METRICS)
def test_a_drop_follows_the_metrics_direction(name: str) -> None:
    allowed = model.MAX_METRIC_DROP[name]
    worse = -1 if model.higher_is_better(name) else 1
    registered = {name: 0.5}
    found = live_quality.drops(registered, {name: 0.5 + worse * 2 * allowed}, {name: allowed})
    assert [v["metric_name"] for v in found] == [name]
    assert found[0]["constraint_check_type"] == (
        live_quality.DROP_CHECK if worse < 0 else live_quality.RISE_CHECK
    )
    assert live_quality.drops(registered, {name: 0.5 - worse * 2 * allowed}, {name: allowed}) == []
    assert live_quality.drops(registered, {name: 0.5 + worse * allowed / 2}, {name: allowed}) == []


def test_the_primary_metrics_direction_is_its_own() -> None:
    assert model.higher_is_better(model.PRIMARY_METRIC) == model.HIGHER_IS_BETTER


def _inputs(root: Path, pool: list[Answer]) -> dict[str, Path]:
    inputs = {name: root / "input" / name for name in monitor.INPUTS}
    for folder in inputs.values():
        folder.mkdir(parents=True, exist_ok=True)
    (inputs["baseline"] / "statistics.json").write_text(json.dumps(_statistics(pool)))
    return inputs


def _config(registered: dict[str, float] | None = None, **quality: Any) -> monitor.Config:
    return monitor.Config.parse(
        json.dumps(
            {
                "env": "prod",
                "model_version": 1,
                "registered": registered or {},
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


def _labels(path: Path, truth: dict[str, float]) -> None:
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


def test_quality_late_labels_and_a_run_with_nothing_new(
    tmp_path: Path, answers: list[Answer]
) -> None:
    inputs = _inputs(tmp_path, answers)
    rows = _rows(60, seed=11)
    given = {f"id-{i}": a for i, a in enumerate(_sample(answers, 60, seed=11))}
    truth = {k: _truth(a) for k, a in given.items()}  # a perfect model
    registered = model.metrics(
        np.asarray(list(truth.values())), model.from_answers(list(given.values()))
    )
    when = NOW - timedelta(hours=1)
    (inputs["capture"] / "c.jsonl").write_text(
        "".join(
            _line([row], [given[f"id-{i}"]], f"id-{i}", when) + "\n" for i, row in enumerate(rows)
        )
    )

    first = _run(tmp_path, inputs, _config(registered))
    assert first["data_quality"]["rows"] == 60
    assert first["data_quality"]["violations"] == []  # answers like the baseline's
    assert drift.PREDICTION in first["data_quality"]["features"]  # the answers were read
    assert first["model_quality"]["status"] == "NoData"  # no labels yet: nothing judged
    assert (tmp_path / "report" / "report.html").is_file()

    again = _run(tmp_path, inputs, _config(registered))
    assert again["status"] == "NoData" and "no capture newer" in again["reason"]

    _labels(inputs["groundtruth"] / "2026" / "1-late.jsonl", truth)  # labels arrive after both runs
    late = _run(tmp_path, inputs, _config(registered))
    quality = late["model_quality"]
    assert quality["labelled_rows"] == 60 and quality["coverage"] == 1.0 and quality["judged"]
    assert quality["status"] == "Completed" and quality["violations"] == []
    assert quality["problem_type"] == model.PROBLEM_TYPE
    assert late["data_quality"]["status"] == "NoData"  # no new capture: drift not re-judged

    wrong = {
        k: (_wrong(given[k], answers) if i % 3 == 0 else v)
        for i, (k, v) in enumerate(truth.items())
    }
    _labels(inputs["groundtruth"] / "2026" / "2-corrected.jsonl", wrong)  # later key wins
    dropped = _run(tmp_path, inputs, _config(registered))["model_quality"]
    assert dropped["status"] == "CompletedWithViolations"
    violated = {v["metric_name"]: v for v in dropped["violations"]}
    assert model.PRIMARY_METRIC in violated
    for name, found in violated.items():  # worse in each metric's own direction
        assert live_quality.worsening(name, registered[name], dropped["live"][name]) > 0
        assert found["constraint_check_type"] == (
            live_quality.DROP_CHECK if model.higher_is_better(name) else live_quality.RISE_CHECK
        )
    history = (inputs["state"] / "history.jsonl").read_text().splitlines()
    assert len(history) == 3  # every run that looked at something, for the metrics over time
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Live metrics over time" in page and model.PRIMARY_METRIC in page


def test_labels_outside_the_window_are_not_joined(tmp_path: Path, answers: list[Answer]) -> None:
    inputs = _inputs(tmp_path, answers)
    old = NOW - timedelta(hours=100)
    (inputs["capture"] / "c.jsonl").write_text(
        _line(_rows(1, seed=12), answers[:1], "old", old) + "\n"
    )
    _labels(inputs["groundtruth"] / "l.jsonl", {"old": _truth(answers[0])})
    summary = _run(tmp_path, inputs, _config(label_window_hours=72))
    assert summary["model_quality"]["labelled_rows"] == 0


def test_drifting_features_get_their_distributions_on_the_page(
    tmp_path: Path, answers: list[Answer]
) -> None:
    inputs = _inputs(tmp_path, answers)
    shifted = _rows(300, seed=13, shift=4.0)
    skewed = _shifted(answers, 300, seed=13)
    (inputs["capture"] / "c.jsonl").write_text(
        "".join(_line([r], [a]) + "\n" for r, a in zip(shifted, skewed, strict=True))
    )
    summary = _run(tmp_path, inputs, _config())
    assert summary["data_quality"]["status"] == "CompletedWithViolations"
    drifted = {v["feature_name"] for v in summary["data_quality"]["violations"]}
    assert drifted == {"size", drift.PREDICTION}  # the feature and the model's answers
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<figure><svg" in page and "size: distance" in page and "prediction: distance" in page
    datums = json.loads((tmp_path / "report" / "metrics.json").read_text())["MetricData"]
    assert {"MetricName": "DriftedFeatures", "Value": 2.0}.items() <= next(
        d for d in datums if d["MetricName"] == "DriftedFeatures"
    ).items()


def test_a_run_before_any_capture_ends_at_once(tmp_path: Path, answers: list[Answer]) -> None:
    inputs = _inputs(tmp_path, answers)
    (inputs["capture"] / "_monitor-seed.jsonl").write_text("")  # what deploy seeds
    summary = _run(tmp_path, inputs, _config())
    assert summary["status"] == "NoData" and summary["reason"] == "nothing captured yet"
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["summary.json"]


def test_bias_and_attribution_drift_run_on_the_real_model_and_its_reports(
    tmp_path: Path, trained_root: Path, trained_model: Any
) -> None:
    """The trained model's own baseline, bias and explainability reports, and its answers to the
    test split captured with their true targets: both checks complete for every problem type,
    and bias that is off says it does not apply."""
    import shutil
    import tomllib

    from ci_scripts.runtime import baseline, bias, explain

    inputs = {name: tmp_path / "input" / name for name in monitor.INPUTS}
    for folder in inputs.values():
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained_root / "model", inputs["model"], dirs_exist_ok=True)
    test_dir = trained_root / "processing" / "test"
    baseline.run(trained_root / "processing" / "baseline", inputs["model"], inputs["baseline"])
    explain.run(inputs["model"], test_dir, inputs["explainability"] / "analysis.json")
    table = tomllib.loads((DATA.parent / "pyproject.toml").read_text())["tool"]["sagemaker-gitops"]
    settings = table.get("bias") or {}
    facet = (
        bias.Facet(settings["facet"], float(settings["positive_outcome"]))
        if settings.get("facet")
        else None
    )
    bias.run(inputs["model"], test_dir, inputs["bias"] / "analysis.json", facet)

    rows = read_labelled_dir(test_dir, trained_model.features)
    features, truth = to_arrays(rows)
    answers = model.response(trained_model.predict(features))
    when = NOW - timedelta(hours=1)
    (inputs["capture"] / "c.jsonl").write_text(
        "".join(
            _line([row[1:]], [answer], f"t-{i}", when) + "\n"
            for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
        )
    )
    _labels(inputs["groundtruth"] / "l.jsonl", {f"t-{i}": v for i, v in enumerate(truth.tolist())})
    registered = metrics.scores_of(truth, trained_model.predict(features), "test")
    summary = _run(tmp_path, inputs, _config(registered, min_labelled_rows=10))

    assert summary["data_quality"]["rows"] == len(rows)
    assert drift.PREDICTION in summary["data_quality"]["features"]
    quality = summary["model_quality"]
    assert quality["judged"] and quality["violations"] == []  # the test split, as registered
    assert quality["live"] == pytest.approx({k: v for k, v in registered.items()})
    attribution = summary["feature_attribution"]
    assert attribution["status"] in ("Completed", "CompletedWithViolations"), attribution
    assert 0 <= attribution["live"]["ndcg"] <= 1
    assert attribution["live"]["ndcg"] == pytest.approx(1.0)  # the same rows as explain's
    checked = summary["bias"]
    if facet is None:
        assert checked["status"] == "NoData" and "does not apply" in checked["reason"]
    else:
        assert checked["status"] == "Completed", checked  # the same rows: the registered DPPL
        assert checked["live"]["DPPL"] == pytest.approx(checked["registered"]["DPPL"])
