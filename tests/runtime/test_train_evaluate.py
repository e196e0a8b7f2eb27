"""Train honours SageMaker-format hyperparameters; evaluate writes the model-quality report.

What is expected comes from model.py (hyperparameters and their defaults, metrics, the primary
metric and its threshold, each hyperparameter's ``other`` valid value) and from the splits
preprocess wrote, so changing the model or the data needs no edit here.
"""

from __future__ import annotations

import json
import math
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import meets_gate

from ci_scripts.hyperparameters import ESTIMATOR
from ci_scripts.runtime import (
    evaluate,
    model,
    model_artifacts,
    train,
)
from ci_scripts.runtime.errors import StepError
from ci_scripts.runtime.features import FEATURES, read_labelled_dir, to_arrays
from ci_scripts.runtime.model import HYPERPARAMETERS, METRICS, PRIMARY_METRIC

# Valid values other than the defaults (model.py declares one each), in SageMaker's string form.
CHANGED = {name: spec.other for name, spec in HYPERPARAMETERS.items()}
FIRST = next(iter(HYPERPARAMETERS))


def rows_of(root: Path, split: str) -> int:
    return len(read_labelled_dir(root / "processing" / split))


def predictions(trained: model_artifacts.TrainedModel, root: Path) -> dict:
    features, _ = to_arrays(read_labelled_dir(root / "processing" / "validation"))
    return trained.predict(features)


def write_hyperparameters(root: Path, values: dict[str, object]) -> Path:
    path = root / "input" / "config" / "hyperparameters.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    return path


def test_train_writes_model_and_metadata(trained_root: Path) -> None:
    model_dir = trained_root / "model"
    assert (model_dir / "model.joblib").is_file()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["features"] == list(FEATURES)
    assert metadata["problem_type"] == model.PROBLEM_TYPE
    assert metadata["hyperparameters"] == train.parse_hyperparameters({}, "defaults")
    assert metadata["train_rows"] == rows_of(trained_root, "train")
    assert metadata["validation_rows"] == rows_of(trained_root, "validation")
    assert sorted(metadata["validation_metrics"]) == sorted(METRICS)
    assert meets_gate(metadata["validation_metrics"][PRIMARY_METRIC])
    assert metadata["sklearn_version"]


def test_train_honours_hyperparameters(
    opt_ml_root: Path, trained_root: Path, stage_channels
) -> None:
    stage_channels(trained_root, opt_ml_root)
    # SageMaker's format: every value a string; names it adds itself are ignored.
    write_hyperparameters(opt_ml_root, {**CHANGED, "sagemaker_job_name": "x"})
    assert train.main([]) == 0
    trained = model_artifacts.load(opt_ml_root / "model")
    expected = train.parse_hyperparameters(CHANGED, "changed")
    assert trained.metadata["hyperparameters"] == expected
    assert expected != train.parse_hyperparameters({}, "defaults")
    params = trained.estimator.get_params()
    chosen = expected.get(ESTIMATOR)  # with several candidates: the one these values chose
    for name, value in expected.items():  # each value reached the estimator, not just metadata
        spec = HYPERPARAMETERS[name]
        if name == ESTIMATOR or (spec.estimator and spec.estimator != chosen):
            continue  # the choice itself, or a candidate's own value the other one never reads
        found = [params[k] for k in params if k == name or k.endswith(f"__{name}")]
        assert value in found, name
    default = model_artifacts.load(trained_root / "model")
    ours, theirs = predictions(trained, trained_root), predictions(default, trained_root)
    assert any((ours[key] != theirs[key]).any() for key in ours)


def test_training_is_deterministic(opt_ml_root: Path, trained_root: Path, stage_channels) -> None:
    stage_channels(trained_root, opt_ml_root)
    train.main([])
    again = predictions(model_artifacts.load(opt_ml_root / "model"), trained_root)
    first = predictions(model_artifacts.load(trained_root / "model"), trained_root)
    assert all((again[key] == first[key]).all() for key in first)


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_bad_hyperparameters_are_named(name: str) -> None:
    with pytest.raises(StepError, match=rf"{name}: expected .*got 'abc'"):
        train.parse_hyperparameters({name: "abc"}, "hyperparameters.json")


def test_unknown_hyperparameters_are_named() -> None:
    with pytest.raises(StepError, match=r"unknown hyperparameter.*no_such_knob"):
        train.parse_hyperparameters({"no_such_knob": "0.1"}, "hyperparameters.json")


def test_hyperparameters_accept_json_numbers_and_quoted_strings() -> None:
    numbers = {}
    for name, spec in HYPERPARAMETERS.items():
        try:
            numbers[name] = json.loads(spec.default)  # 1.0 -> 1.0, 1000 -> 1000
        except ValueError:
            numbers[name] = f'"{spec.default}"'  # a JSON-encoded string
    defaults = train.parse_hyperparameters({}, "defaults")
    assert train.parse_hyperparameters(numbers, "h.json") == defaults


def test_cli_rejects_a_bad_hyperparameter_in_one_line(
    opt_ml_root: Path, trained_root: Path, stage_channels, run_cli
) -> None:
    stage_channels(trained_root, opt_ml_root)
    path = write_hyperparameters(opt_ml_root, {FIRST: "-1"})
    result = run_cli("train", root=opt_ml_root)
    assert result.returncode == 1
    expected = f"{path}: {FIRST}: expected {HYPERPARAMETERS[FIRST].expected}, got '-1'"
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]
    assert (opt_ml_root / "output" / "failure").read_text().strip() == expected
    assert not (opt_ml_root / "model").exists()


def stage_evaluation(root: Path, trained_root: Path, packed: bool) -> None:
    model_input = root / "processing" / "model"
    model_input.mkdir(parents=True)
    if packed:  # as SageMaker packs /opt/ml/model: the directory's files at the archive root
        with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
            for item in (trained_root / "model").iterdir():
                tar.add(item, arcname=item.name)
    else:
        shutil.copytree(trained_root / "model", model_input, dirs_exist_ok=True)
    test_dir = root / "processing" / "test"
    test_dir.mkdir(parents=True)
    shutil.copy(trained_root / "processing" / "test" / "test.csv", test_dir)


def read_report(root: Path) -> dict[str, float]:
    report = json.loads((root / "processing" / "evaluation" / "evaluation.json").read_text())
    metrics = report[model.REPORT_KEY]
    assert sorted(metrics) == sorted(METRICS)
    for entry in metrics.values():
        assert entry["standard_deviation"] == "NaN"
        assert math.isfinite(entry["value"])
    return {name: entry["value"] for name, entry in metrics.items()}


def test_evaluate_reads_model_tar_gz(opt_ml_root: Path, trained_root: Path) -> None:
    stage_evaluation(opt_ml_root, trained_root, packed=True)
    assert evaluate.main([]) == 0
    values = read_report(opt_ml_root)
    assert meets_gate(values[PRIMARY_METRIC])  # the gate would register it


def test_evaluate_accepts_an_extracted_model(
    opt_ml_root: Path, trained_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_evaluation(opt_ml_root, trained_root, packed=False)
    evaluate.main([])
    extracted = read_report(opt_ml_root)
    packed_root = tmp_path / "packed"
    monkeypatch.setenv("OPT_ML_ROOT", str(packed_root))
    stage_evaluation(packed_root, trained_root, packed=True)
    evaluate.main([])
    assert read_report(packed_root) == extracted


def test_evaluate_without_a_model_names_the_path(opt_ml_root: Path) -> None:
    with pytest.raises(StepError, match="processing/model: not found"):
        evaluate.main([])


def test_evaluate_rejects_a_model_without_metadata(opt_ml_root: Path, trained_root: Path) -> None:
    stage_evaluation(opt_ml_root, trained_root, packed=False)
    (opt_ml_root / "processing" / "model" / "metadata.json").unlink()
    with pytest.raises(StepError, match=r"metadata\.json not found"):
        evaluate.main([])
