"""Train honours SageMaker-format hyperparameters; evaluate writes the model-quality report."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from {{ cookiecutter.__package }} import (
    evaluate,
    model_artifacts,
    train,
)
from {{ cookiecutter.__package }}.errors import StepError
from {{ cookiecutter.__package }}.features import FEATURES
from {{ cookiecutter.__package }}.metrics import METRICS


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
    assert metadata["hyperparameters"] == {"C": 1.0, "max_iter": 1000, "class_weight": "none"}
    assert metadata["train_rows"] == 455
    assert metadata["validation_rows"] == 57
    assert metadata["validation_metrics"]["auc"] > 0.9
    assert metadata["sklearn_version"]


def test_train_honours_hyperparameters(
    opt_ml_root: Path, trained_root: Path, stage_channels
) -> None:
    stage_channels(trained_root, opt_ml_root)
    # SageMaker's format: every value a string; names it adds itself are ignored.
    write_hyperparameters(
        opt_ml_root,
        {"C": "0.05", "max_iter": "50", "class_weight": "balanced", "sagemaker_job_name": "x"},
    )
    assert train.main([]) == 0
    model = model_artifacts.load(opt_ml_root / "model")
    classifier = model.estimator.named_steps["classify"]
    assert classifier.C == 0.05
    assert classifier.max_iter == 50
    assert classifier.class_weight == "balanced"
    assert model.metadata["hyperparameters"] == {
        "C": 0.05,
        "max_iter": 50,
        "class_weight": "balanced",
    }
    # A different C gives a different model: the value reached the estimator, not just metadata.
    default = model_artifacts.load(trained_root / "model").estimator.named_steps["classify"]
    assert not (classifier.coef_ == default.coef_).all()


def test_training_is_deterministic(opt_ml_root: Path, trained_root: Path, stage_channels) -> None:
    stage_channels(trained_root, opt_ml_root)
    train.main([])
    again = model_artifacts.load(opt_ml_root / "model").estimator.named_steps["classify"]
    first = model_artifacts.load(trained_root / "model").estimator.named_steps["classify"]
    assert (again.coef_ == first.coef_).all()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"C": "abc"}, "C: expected a number > 0"),
        ({"C": "0"}, "C: expected a number > 0"),
        ({"C": "nan"}, "C: expected a number > 0"),
        ({"max_iter": "1.5"}, "max_iter: expected an integer >= 1"),
        ({"max_iter": "0"}, "max_iter: expected an integer >= 1"),
        ({"class_weight": "auto"}, "class_weight: expected 'none' or 'balanced'"),
        ({"learning_rate": "0.1"}, "unknown hyperparameter.*learning_rate"),
    ],
)
def test_bad_hyperparameters_are_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(StepError, match=message):
        train.parse_hyperparameters(values, "hyperparameters.json")


def test_hyperparameters_accept_json_numbers_and_quoted_strings() -> None:
    parsed = train.parse_hyperparameters({"C": 2, "max_iter": '"30"'}, "h.json")
    assert parsed == {"C": 2.0, "max_iter": 30, "class_weight": "none"}


def test_cli_rejects_a_bad_hyperparameter_in_one_line(
    opt_ml_root: Path, trained_root: Path, stage_channels, run_cli
) -> None:
    stage_channels(trained_root, opt_ml_root)
    path = write_hyperparameters(opt_ml_root, {"C": "-1"})
    result = run_cli("train", root=opt_ml_root)
    assert result.returncode == 1
    expected = f"{path}: C: expected a number > 0 (inverse regularisation strength), got '-1'"
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
    metrics = report["binary_classification_metrics"]
    assert sorted(metrics) == sorted(METRICS)
    for entry in metrics.values():
        assert entry["standard_deviation"] == "NaN"
        assert 0.0 <= entry["value"] <= 1.0
    return {name: entry["value"] for name, entry in metrics.items()}


def test_evaluate_reads_model_tar_gz(opt_ml_root: Path, trained_root: Path) -> None:
    stage_evaluation(opt_ml_root, trained_root, packed=True)
    assert evaluate.main([]) == 0
    values = read_report(opt_ml_root)
    assert values["auc"] > 0.9
    assert values["accuracy"] > 0.85
    assert values["recall"] > 0.85


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
