"""Bias and explain write Clarify-layout reports whose numbers can be checked by hand."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ci_scripts.runtime import bias, explain
from ci_scripts.runtime.errors import StepError
from ci_scripts.runtime.features import FEATURES
from ci_scripts.runtime.model import CLASSES

ROOT = Path(__file__).resolve().parents[2]
BIAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["sagemaker-gitops"].get(
    "bias", {}
)


def stage(root: Path, trained_root: Path) -> None:
    shutil.copytree(trained_root / "model", root / "processing" / "model")
    (root / "processing" / "test").mkdir(parents=True)
    shutil.copy(trained_root / "processing" / "test" / "test.csv", root / "processing" / "test")


def test_dpl_and_dppl_are_positive_shares_outside_minus_inside_the_facet() -> None:
    facet = bias.Facet("x", 1.0)
    truth = np.array([1, 1, 0, 0, 1, 0])
    predicted = np.array([1, 1, 1, 0, 0, 0])
    radius = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # median 3.5: the facet is the last three
    document = bias.report(truth, predicted, radius, facet)
    pre = document["pre_training_bias_metrics"]["facets"]["x"][0]
    post = document["post_training_bias_metrics"]["facets"]["x"][0]
    assert pre["value_or_threshold"] == "(3.5, inf)"
    assert pre["metrics"][0]["name"] == "DPL"
    assert pre["metrics"][0]["value"] == pytest.approx(2 / 3 - 1 / 3)
    assert post["metrics"][0]["name"] == "DPPL"
    assert post["metrics"][0]["value"] == pytest.approx(1 - 0)


def test_a_facet_with_one_side_empty_is_refused() -> None:
    with pytest.raises(StepError, match="facet x"):
        bias.report(np.array([1, 0]), np.array([1, 0]), np.array([2.0, 2.0]), bias.Facet("x", 1))


def test_bias_is_off_without_a_facet(opt_ml_root: Path) -> None:
    assert bias.main([]) == 0
    report = json.loads((opt_ml_root / "processing/bias/analysis.json").read_text())
    assert "facet" in report["disabled"] and "pre_training_bias_metrics" not in report


def test_permutation_importance_finds_the_only_feature_that_matters() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    truth = (features[:, 1] > 0).astype(int)
    importances = explain.permutation_importance(
        lambda table: {"x": table.iloc[:, 1].to_numpy()},
        lambda predicted: float(np.mean((predicted["x"] > 0) == truth)),
        features,
    )
    assert importances[1] > 0.3  # shuffled, the feature decides half the rows by chance
    assert importances[0] == importances[2] == 0.0


def test_steps_write_analysis_json_for_the_trained_model(
    opt_ml_root: Path, trained_root: Path
) -> None:
    stage(opt_ml_root, trained_root)
    facet = ["--facet", BIAS["facet"], "--positive-outcome", str(BIAS["positive_outcome"])]
    assert bias.main(facet if BIAS.get("facet") else []) == 0 and explain.main([]) == 0
    report = json.loads((opt_ml_root / "processing/bias/analysis.json").read_text())
    if BIAS.get("facet"):
        groups = report["pre_training_bias_metrics"]["facets"][BIAS["facet"]]
        assert -1 <= groups[0]["metrics"][0]["value"] <= 1
    importance = json.loads((opt_ml_root / "processing/explainability/analysis.json").read_text())
    values = importance["explanations"]["permutation_importance"][explain.LABEL][
        "global_importance"
    ]
    assert sorted(values) == sorted(FEATURES)
    assert list(values.values()) == sorted(values.values(), reverse=True)
    assert max(values.values()) > 0


def test_a_positive_outcome_outside_the_classes_is_refused(opt_ml_root: Path) -> None:
    if CLASSES is None:
        pytest.skip("a regression's positive outcome is any threshold")
    with pytest.raises(StepError, match="--positive-outcome"):
        bias.main(["--facet", FEATURES[0], "--positive-outcome", "99"])
