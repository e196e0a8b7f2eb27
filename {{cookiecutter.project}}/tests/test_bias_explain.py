"""Bias and explain write Clarify-layout reports whose numbers can be checked by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.__package }} import bias, explain
from {{ cookiecutter.__package }}.errors import StepError
from {{ cookiecutter.__package }}.features import FEATURES


def stage(root: Path, trained_root: Path) -> None:
    shutil.copytree(trained_root / "model", root / "processing" / "model")
    (root / "processing" / "test").mkdir(parents=True)
    shutil.copy(trained_root / "processing" / "test" / "test.csv", root / "processing" / "test")


def test_dpl_and_dppl_are_positive_shares_outside_minus_inside_the_facet() -> None:
    truth = np.array([1, 1, 0, 0, 1, 0])
    predicted = np.array([1, 1, 1, 0, 0, 0])
    radius = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # median 3.5: the facet is the last three
    document = bias.report(truth, predicted, radius)
    pre = document["pre_training_bias_metrics"]["facets"][bias.FACET][0]
    post = document["post_training_bias_metrics"]["facets"][bias.FACET][0]
    assert pre["value_or_threshold"] == "(3.5, inf)"
    assert pre["metrics"][0]["name"] == "DPL"
    assert pre["metrics"][0]["value"] == pytest.approx(2 / 3 - 1 / 3)
    assert post["metrics"][0]["name"] == "DPPL"
    assert post["metrics"][0]["value"] == pytest.approx(1 - 0)


def test_a_facet_with_one_side_empty_is_refused() -> None:
    with pytest.raises(StepError, match="mean_radius"):
        bias.report(np.array([1, 0]), np.array([1, 0]), np.array([2.0, 2.0]))


def test_roc_auc_counts_ties_half() -> None:
    truth = np.array([1, 1, 0, 0])
    assert explain.roc_auc(truth, np.array([0.9, 0.5, 0.5, 0.1])) == pytest.approx(0.875)


def test_permutation_importance_finds_the_only_feature_that_matters() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    truth = (features[:, 1] > 0).astype(int)
    importances = explain.permutation_importance(
        lambda matrix: explain.roc_auc(truth, matrix[:, 1]), features
    )
    assert importances[1] > 0.3
    assert importances[0] == importances[2] == 0.0


def test_steps_write_analysis_json_for_the_trained_model(
    opt_ml_root: Path, trained_root: Path
) -> None:
    stage(opt_ml_root, trained_root)
    assert bias.main([]) == 0 and explain.main([]) == 0
    report = json.loads((opt_ml_root / "processing/bias/analysis.json").read_text())
    dpl = report["pre_training_bias_metrics"]["facets"]["mean_radius"][0]["metrics"][0]
    assert -1 <= dpl["value"] <= 1
    importance = json.loads((opt_ml_root / "processing/explainability/analysis.json").read_text())
    values = importance["explanations"]["permutation_importance"]["label1"]["global_importance"]
    assert sorted(values) == sorted(FEATURES)
    assert list(values.values()) == sorted(values.values(), reverse=True)
    assert max(values.values()) > 0
