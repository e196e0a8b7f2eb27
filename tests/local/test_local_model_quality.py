"""``monitor --quality`` on the local backend: captured predictions joined with ground truth.

Captures are written as the local router writes them (SageMaker's data capture format, the
request's inference id in ``eventMetadata.inferenceId``); labels in Model Monitor's ground-truth
merge format under the local s3 tree's ``groundtruth/<env>/``. The model is simulated by its
answers: a scorer whose probabilities separate the classes as well as the registered metrics
say (healthy), and the same scorer on rows whose labels were flipped (a quality drop on inputs
whose distribution did not move).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_testkit import BUCKET, MANIFEST

from ci_scripts import model_quality as mq
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.cli import State, app

SCHEDULE = "churn-model-prod-model-quality"


def _answers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True classes and the probabilities a good model gives them (AUC about 0.95)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    probabilities = 1 / (1 + np.exp(-(truth * 2 - 1) * 2.4 - rng.normal(0, 1, n)))
    return truth, probabilities


REGISTERED = {
    name: value
    for name, value in mq.binary_metrics(
        _answers(4000, 1)[0],
        (_answers(4000, 1)[1] >= 0.5).astype(int),
        _answers(4000, 1)[1],
    ).items()
}


@pytest.fixture
def served(repo: Path, backend: LocalBackend) -> LocalBackend:
    """Version 1 (with the registered metrics) is what deploy/prod.json names."""
    backend.registry.register(
        "churn-model",
        model_data_url=f"s3://{BUCKET}/m/model.tar.gz",
        image_uri="img",
        metrics=REGISTERED,
    )
    (repo / "deploy").mkdir(exist_ok=True)
    manifest = {**MANIFEST, "environment": "prod"}
    (repo / "deploy" / "prod.json").write_text(json.dumps(manifest))
    return backend


def _capture_line(inference_id: str | None, probability: float) -> str:
    answer = {"predictions": [{"label": int(probability >= 0.5), "probability": probability}]}
    meta: dict[str, Any] = {"eventId": "e", "inferenceTime": "2024-01-01T00:00:00.000Z"}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": "1,2",
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps(answer),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def _traffic(
    backend: LocalBackend, n: int, *, seed: int, flip: float = 0.0, labelled: float = 1.0
) -> None:
    """``n`` single-row requests captured; labels for the first ``labelled`` share, with the
    first ``flip`` share of those labels flipped."""
    truth, probabilities = _answers(n, seed)
    capture = backend.state.capture_dir("prod") / "version-1" / "2024/01/01/00"
    capture.mkdir(parents=True, exist_ok=True)
    (capture / "capture-1.jsonl").write_text(
        "".join(_capture_line(f"req-{i}", p) + "\n" for i, p in enumerate(probabilities))
    )
    labels = backend.state.s3_path(f"{mq.ground_truth_prefix(BUCKET, 'prod')}/2024/01/01/01")
    labels.mkdir(parents=True, exist_ok=True)
    count = int(n * labelled)
    flipped = int(count * flip)
    (labels / "labels.jsonl").write_text(
        "".join(
            mq.ground_truth_line(f"req-{i}", int(1 - truth[i]) if i < flipped else int(truth[i]))
            + "\n"
            for i in range(count)
        )
    )


def _monitor(backend: LocalBackend, *extra: str) -> Any:
    from typer.testing import CliRunner

    state = State(project_dir=backend.project.root, backend_instance=backend)
    return CliRunner().invoke(
        app, ["monitor", "--env", "prod", "--quality", *extra], obj=state, catch_exceptions=False
    )


def test_healthy_model_is_no_false_alarm(served: LocalBackend) -> None:
    _traffic(served, 300, seed=11)
    result = _monitor(served)
    assert result.exit_code == 0, result.output
    assert "300 labelled rows of 300 captured (coverage 100%)" in result.output
    assert "no violations" in result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert lines["auc"][-1] == "ok" and lines["accuracy"][-1] == "ok"
    reports = served.state.s3_path(mq.report_prefix(BUCKET, "prod"))
    (folder,) = {p.parent for p in reports.rglob(mq.VIOLATIONS_FILE)}
    assert json.loads((folder / mq.VIOLATIONS_FILE).read_text()) == {"violations": []}
    stats = json.loads((folder / mq.STATISTICS_FILE).read_text())
    assert stats["dataset"]["item_count"] == 300
    assert set(stats["binary_classification_metrics"]) == set(mq.METRICS)
    constraints = json.loads((folder / mq.CONSTRAINTS_FILE).read_text())
    auc = constraints["binary_classification_constraints"]["auc"]
    assert auc == {
        "threshold": round(REGISTERED["auc"] - 0.05, 6),
        "comparison_operator": "LessThanThreshold",
    }


def test_quality_drop_is_caught_exit_3_naming_the_metrics(served: LocalBackend) -> None:
    _traffic(served, 300, seed=12, flip=0.25)
    result = _monitor(served)
    assert result.exit_code == 3, result.output
    assert f"error: {SCHEDULE}: " in result.stderr
    assert "of model version 1 dropped past max_metric_drop on 300 labelled rows" in result.stderr
    assert "auc " in result.stderr and "accuracy " in result.stderr
    assert any(
        line.startswith("auc") and line.endswith("FAIL") for line in result.output.split("\n")
    )


def test_manifest_max_metric_drop_decides(served: LocalBackend, repo: Path) -> None:
    _traffic(served, 300, seed=12, flip=0.25)
    manifest = json.loads((repo / "deploy" / "prod.json").read_text())
    manifest["monitoring"] = {"quality": {"max_metric_drop": dict.fromkeys(mq.METRICS, 0.6)}}
    (repo / "deploy" / "prod.json").write_text(json.dumps(manifest))
    result = _monitor(served)
    assert result.exit_code == 0, result.output


def test_missing_labels_are_coverage_not_a_crash(served: LocalBackend, repo: Path) -> None:
    _traffic(served, 500, seed=13, labelled=0.4)
    # plus requests sent with no inference id at all: captured, never labelled
    folder = served.state.capture_dir("prod") / "version-1" / "2024/01/01/00"
    with (folder / "capture-1.jsonl").open("a") as handle:
        handle.write("".join(_capture_line(None, 0.9) + "\n" for _ in range(40)))
    result = _monitor(served)
    assert result.exit_code == 0, result.output
    assert "200 labelled rows of 540 captured (coverage 37%)" in result.output

    manifest = json.loads((repo / "deploy" / "prod.json").read_text())
    manifest["monitoring"] = {"quality": {"min_coverage": 0.5}}
    (repo / "deploy" / "prod.json").write_text(json.dumps(manifest))
    result = _monitor(served)
    assert result.exit_code == 1
    assert "labels cover 37% of the 540 captured rows, below" in result.stderr
    assert "monitoring.quality.min_coverage" in result.stderr


def test_no_labels_yet_and_too_few_labels_are_not_judged(served: LocalBackend) -> None:
    _traffic(served, 100, seed=14, labelled=0.0)
    result = _monitor(served)
    assert result.exit_code == 0, result.output
    assert "nothing to check: no captured request of version 1 has a label" in result.output

    _traffic(served, 100, seed=14, labelled=0.1, flip=1.0)  # 10 rows, all wrong
    result = _monitor(served)
    assert result.exit_code == 0, result.output
    assert "not judged: 10 labelled rows, fewer than" in result.output


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not a JSON object"),
        ('{"groundTruthData": {"data": "1", "encoding": "CSV"}}', "eventMetadata.eventId"),
        (mq.ground_truth_line("req-0", 1).replace('"1"', '"yes"'), "'yes' is not a number"),
    ],
)
def test_malformed_label_file_refused_naming_file_and_line(
    served: LocalBackend, line: str, reason: str
) -> None:
    _traffic(served, 50, seed=15)
    labels = served.state.s3_path(f"{mq.ground_truth_prefix(BUCKET, 'prod')}/2024/01/01/02")
    labels.mkdir(parents=True)
    (labels / "late.jsonl").write_text(mq.ground_truth_line("req-1", 0) + "\n\n" + line + "\n")
    result = _monitor(served)
    assert result.exit_code == 1
    uri = f"{mq.ground_truth_prefix(BUCKET, 'prod')}/2024/01/01/02/late.jsonl"
    (message,) = result.stderr.strip().splitlines()
    assert message.startswith(f"error: ground truth {uri}:3: ")
    assert reason in message


def test_metrics_match_sklearn_definitions() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500), 2)  # rounded: ties, as real probabilities have
    labels = (scores >= 0.5).astype(int)
    ours = mq.binary_metrics(truth.tolist(), labels.tolist(), scores.tolist())
    assert ours["auc"] == pytest.approx(metrics.roc_auc_score(truth, scores))
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(truth, labels))
    assert ours["f1"] == pytest.approx(metrics.f1_score(truth, labels))
    assert ours["precision"] == pytest.approx(metrics.precision_score(truth, labels))
    assert ours["recall"] == pytest.approx(metrics.recall_score(truth, labels))
    assert np.isnan(mq.binary_metrics([1, 1], [1, 0], [0.9, 0.2])["auc"])
