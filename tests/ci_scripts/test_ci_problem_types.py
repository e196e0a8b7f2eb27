"""ci_scripts reads what the model declares (model_contract) and measures each problem type.

The model files are the template's own ``src/<package>/model.py`` rendered for each problem
type (jinja only, no cookiecutter run), so these tests follow what a generated repo declares.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from gitops_testkit import answers_context, write_model_repo, write_team_package

from ci_scripts import model_contract, problem_types
from ci_scripts.commands import smoke_test
from ci_scripts.errors import CIError
from ci_scripts.manifest import load as load_manifest
from ci_scripts.project import ProjectConfig

PROBLEM_TYPES = list(problem_types.PROBLEM_TYPES)


def repo_for(root: Path, problem_type: str) -> ProjectConfig:
    """A model repo whose model.py is the template's, rendered for ``problem_type``."""
    repo = write_model_repo(root, pipeline="none", problem_type=problem_type)
    ctx = answers_context(problem_type=problem_type)
    write_team_package(repo / "src" / ctx["__package"], ctx)
    return ProjectConfig.load(repo)


@pytest.mark.parametrize("kind", PROBLEM_TYPES)
def test_the_contract_is_what_model_py_declares(tmp_path: Path, kind: str) -> None:
    project = repo_for(tmp_path, kind)
    contract = model_contract.load(project)
    standard = problem_types.get(kind)
    assert contract.source == f"src/{project.package}/model.py"
    assert contract.problem_type == kind
    assert set(contract.metrics) == set(standard.metrics)  # the monitor measures the same names
    assert contract.primary_metric in contract.metrics
    assert contract.higher_is_better == standard.higher_is_better(contract.primary_metric)
    assert set(contract.max_metric_drop) == set(contract.metrics)


@pytest.mark.parametrize("kind", PROBLEM_TYPES)
def test_the_declared_direction_is_the_problem_types(tmp_path: Path, kind: str) -> None:
    """The gate follows model.py's ``HIGHER_IS_BETTER``; the monitor, constraints and tables
    follow problem_types': one direction for the primary metric, or a drop is missed."""
    contract = model_contract.load(repo_for(tmp_path, kind))
    standard = problem_types.get(kind)
    assert contract.higher_is_better == standard.higher_is_better(contract.primary_metric)
    assert set(contract.metrics) <= set(standard.metrics)


def test_a_repo_without_model_py_gets_the_binary_defaults(tmp_path: Path) -> None:
    project = ProjectConfig.load(write_model_repo(tmp_path, pipeline="none"))
    contract = model_contract.load(project)
    assert (contract.problem_type, contract.primary_metric) == ("binary_classification", "auc")


def test_a_bad_declaration_is_named(tmp_path: Path) -> None:
    project = repo_for(tmp_path, "regression")
    path = model_contract.model_file(project)
    path.write_text(path.read_text().replace('PRIMARY_METRIC = "rmse"', 'PRIMARY_METRIC = "mape"'))
    with pytest.raises(CIError, match=r"model\.py: PRIMARY_METRIC 'mape' is not one of METRICS"):
        model_contract.load(project)


def set_drops(project: ProjectConfig, drops: dict[str, float]) -> None:
    path = project.manifest_path("staging")
    data = json.loads(path.read_text())
    data.setdefault("monitoring", {}).setdefault("quality", {})["max_metric_drop"] = drops
    path.write_text(json.dumps(data))


def test_max_metric_drop_takes_the_models_names_and_defaults(tmp_path: Path) -> None:
    project = repo_for(tmp_path, "regression")
    set_drops(project, {"rmse": 4.0})
    effective = load_manifest(project, "staging").effective
    drops = effective["monitoring"]["quality"]["max_metric_drop"]
    assert drops == {**model_contract.load(project).max_metric_drop, "rmse": 4.0}


def test_max_metric_drop_refuses_a_name_the_model_lacks(tmp_path: Path) -> None:
    project = repo_for(tmp_path, "regression")
    set_drops(project, {"auc": 0.05})
    with pytest.raises(CIError) as caught:
        load_manifest(project, "staging")
    assert str(caught.value) == (
        "deploy/staging.json: $.monitoring.quality.max_metric_drop.auc: not a metric of the "
        f"model; src/{project.package}/model.py names mae, mse, rmse, r2"
    )


def answer(*predictions: object) -> bytes:
    return json.dumps({"predictions": list(predictions)}).encode()


@pytest.mark.parametrize(
    ("kind", "prediction", "message"),
    [
        ("binary_classification", {"label": 2, "probability": 0.5}, "prediction 0.label: 2 is not"),
        ("binary_classification", {"label": 1}, "'probability' is a required property"),
        (
            "multiclass_classification",
            {"label": 1, "probabilities": [0.5, 0.5]},
            "prediction 0.probabilities: [0.5, 0.5] is too short",
        ),
        ("regression", {"value": -5000.0}, "prediction 0.value: -5000.0 is less than the minimum"),
        ("regression", {"value": "12"}, "prediction 0.value: '12' is not of type 'number'"),
    ],
)
def test_the_smoke_test_checks_answers_against_the_models_schema(
    tmp_path: Path, kind: str, prediction: dict, message: str
) -> None:
    contract = model_contract.load(repo_for(tmp_path, kind))
    with pytest.raises(CIError, match="smoke-test staging: row 1: ") as caught:
        smoke_test.check_answer("staging", "row 1", 200, answer(prediction), 1, contract)
    assert message in str(caught.value)
    assert "answer schema of src/" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "prediction"),
    [
        ("binary_classification", {"label": 1, "probability": 0.7}),
        ("multiclass_classification", {"label": 2, "probabilities": [0.1, 0.2, 0.7]}),
        ("regression", {"value": 151.5}),
    ],
)
def test_the_smoke_test_accepts_answers_the_model_declares(
    tmp_path: Path, kind: str, prediction: dict
) -> None:
    contract = model_contract.load(repo_for(tmp_path, kind))
    smoke_test.check_answer("staging", "batch", 200, answer(prediction, prediction), 2, contract)


def test_the_smoke_test_samples_rows_with_a_seed_not_the_first_ones(tmp_path: Path) -> None:
    project = ProjectConfig.load(write_model_repo(tmp_path, pipeline="none"))
    dataset = project.root / smoke_test.DATASET
    first = smoke_test.feature_rows(dataset, 5, project)
    assert first == smoke_test.feature_rows(dataset, 5, project)  # the same rows every run
    in_file = [row[1:] for row in csv.reader(dataset.open())][1:]  # the target is column 0
    assert len(set(map(tuple, first))) == 5 and all(row in in_file for row in first)
    assert first != in_file[:5]  # a dataset sorted by class would give one-sided rows
    assert len(smoke_test.feature_rows(dataset, 1000, project)) == len(in_file)


def test_standard_metrics_are_sklearns() -> None:
    import numpy as np
    from sklearn import metrics

    labels = problem_types.Labels(classes=None)
    truth, values = np.array([150.0, 80.0, 200.0, 120.0]), np.array([140.0, 95.0, 180.0, 130.0])
    got = problem_types.get("regression").standard_metrics(truth, {"value": values}, labels)
    assert got["rmse"] == pytest.approx(math.sqrt(metrics.mean_squared_error(truth, values)))
    assert got["r2"] == pytest.approx(metrics.r2_score(truth, values))
    found, truth3 = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])
    multiclass = problem_types.get("multiclass_classification")
    got = multiclass.standard_metrics(truth3, {"label": found}, problem_types.Labels((0, 1, 2)))
    assert got["weighted_f1"] == pytest.approx(metrics.f1_score(truth3, found, average="weighted"))
    binary = problem_types.get("binary_classification").standard_metrics(
        np.array([1, 1]),
        {"label": np.array([1, 0]), "probability": np.array([0.9, 0.2])},
        problem_types.Labels(),
    )
    assert math.isnan(binary["auc"])  # undefined on a single class


def test_worsening_follows_the_metrics_direction() -> None:
    assert problem_types.worsening("regression", "rmse", 50.0, 60.0) == 10.0
    assert problem_types.worsening("regression", "r2", 0.5, 0.4) == pytest.approx(0.1)
    assert problem_types.worsening("binary_classification", "auc", 0.9, 0.95) < 0


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("binary_classification", "1", True),
        ("binary_classification", 0.5, False),
        ("regression", "151.5", True),
        ("regression", "nan", False),
        ("multiclass_classification", True, False),
    ],
)
def test_ground_truth_values_by_problem_type(kind: str, value: object, ok: bool) -> None:
    parse = problem_types.get(kind).parse_truth
    if ok:
        assert parse(value) == float(value)
    else:
        with pytest.raises(ValueError):
            parse(value)


def test_ground_truth_records_carry_a_regressions_targets(tmp_path: Path) -> None:
    """ground-truth reads a regression's targets as numbers and writes them as the monitor's
    label records (live_quality.parse_label_record reads ``data`` back, CSV)."""
    from ci_scripts import model_quality as mq
    from ci_scripts.commands.ground_truth import parse_labels

    path = tmp_path / "labels.csv"
    path.write_text("inference_id,label\nreq-1,151.5,75\n")
    assert parse_labels(path, "regression", None) == [("req-1", [151.5, 75.0])]
    line = json.loads(mq.ground_truth_line("req-1", [151.5, 75.0]))
    assert line["groundTruthData"] == {"data": "151.5,75", "encoding": "CSV"}
    assert line["eventMetadata"] == {"eventId": "req-1"}
    with pytest.raises(CIError, match=r"labels must be one of 0, 1, got \['151.5', '75'\]"):
        parse_labels(path, "binary_classification", (0, 1))
    path.write_text("req-2,gentoo,adelie\n")  # class names, as schema.py may declare them
    assert parse_labels(path, "multiclass_classification", ("adelie", "gentoo")) == [
        ("req-2", ["gentoo", "adelie"])
    ]
