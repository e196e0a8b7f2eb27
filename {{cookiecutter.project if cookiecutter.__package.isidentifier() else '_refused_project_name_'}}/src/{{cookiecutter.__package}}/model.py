"""The model: the estimator, its hyperparameters, its metrics and the gate. The team's file.

- ``build_estimator(hyperparameters)`` returns an unfitted scikit-learn estimator that takes a
  pandas DataFrame of schema.py's features (numbers as floats, categories as text, missing values
  as NaN): a Pipeline that owns its preprocessing (``preprocessing``: imputation, one-hot encoding
  safe for categories it never saw, scaling), so it is fitted on the training split only and
  saved, served, monitored and explained as one object. Swap the estimator and keep the
  preprocessing, or replace both here. ``HYPERPARAMETERS`` say how each value is read and its
  default (the pipeline passes the defaults unless pyproject.toml's
  [tool.sagemaker-gitops.hyperparameters] overrides them); ``search=`` on one declares where the
  pipeline's tuning step looks for a better value (budget: [tool.sagemaker-gitops.tuning]), and
  the best trial is the one evaluated.
- ``METRICS`` are computed on the validation split (train) and the test split (evaluate), and on
  live traffic joined with ground truth (the monitor): the problem type's standard set by default;
  define ``metrics(truth, predicted)`` here to compute your own. ``PRIMARY_METRIC`` is the one
  the gate, status and the proposal PRs show first; the gate registers a version only when it is
  at least as good as ``THRESHOLD`` in its direction (``HIGHER_IS_BETTER``).
- ``MAX_METRIC_DROP``: the live worsening monitoring tolerates by default, per metric, in the
  metric's own units (``monitoring.quality.max_metric_drop`` in deploy/*.json overrides it).

What the answers look like follows from the problem type and schema.py's classes
(ci_scripts/problem_types.py). Module level imports the standard library and ci_scripts'
declarations only: ci_scripts reads this file in the CLI, where nothing heavy may load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

{% if cookiecutter.problem_type == "regression" -%}
from ci_scripts.hyperparameters import (
    Continuous,
    Hyperparameter,
    Integer,
    positive_float,
    positive_int,
    unit_interval,
)
{%- else -%}
from ci_scripts.hyperparameters import (
    Categorical,
    Continuous,
    Hyperparameter,
    Integer,
    one_of,
    positive_float,
    positive_int,
)
{%- endif %}

PROBLEM_TYPE = "{{ cookiecutter.problem_type }}"
{%- if cookiecutter.problem_type == "binary_classification" %}
PROBABILITY_THRESHOLD = 0.5  # POSITIVE_CLASS (schema.py) is predicted at this probability
METRICS = ("accuracy", "auc", "f1", "precision", "recall")
PRIMARY_METRIC = "auc"
HIGHER_IS_BETTER = True
THRESHOLD = 0.9  # the gate: register only when PRIMARY_METRIC >= THRESHOLD on the test split
MAX_METRIC_DROP = dict.fromkeys(METRICS, 0.05)
{%- elif cookiecutter.problem_type == "multiclass_classification" %}
METRICS = ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall")
PRIMARY_METRIC = "weighted_f1"
HIGHER_IS_BETTER = True
THRESHOLD = 0.85  # the gate: register only when PRIMARY_METRIC >= THRESHOLD on the test split
MAX_METRIC_DROP = dict.fromkeys(METRICS, 0.05)
{%- else %}
VALUE_RANGE = (0.0, 1000.0)  # what a sane prediction of the target lies within
METRICS = ("mae", "mse", "rmse", "r2")
PRIMARY_METRIC = "rmse"
HIGHER_IS_BETTER = False
THRESHOLD = 70.0  # the gate: register only when PRIMARY_METRIC <= THRESHOLD on the test split
MAX_METRIC_DROP = {"mae": 10.0, "mse": 1500.0, "rmse": 10.0, "r2": 0.1}
{%- endif %}


def preprocessing() -> Any:
    """Impute, one-hot encode and scale by the kinds schema.py declares: numbers and booleans
    get their median for a missing value, then scaling; categories get "(missing)", then one
    column per category seen in training (a category it never saw is all zeros, not an error)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from ci_scripts.schema import features_of

    from . import schema

    kinds = features_of(schema.FEATURES)
    categories = [name for name, kind in kinds.items() if kind.KIND == "categorical"]
    numbers = [name for name in kinds if name not in categories]
    return ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categories,
            ),
        ]
    )

{% if cookiecutter.problem_type != "regression" %}
# search=: the space the pipeline's tuning step searches ([tool.sagemaker-gitops.tuning] sets the
# budget); "estimator" chooses among the candidates build_estimator knows.
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "estimator": Hyperparameter(
        one_of("logistic_regression", "random_forest"),
        "logistic_regression",
        "'logistic_regression' or 'random_forest' (the candidate estimator)",
        "random_forest",
        search=Categorical("logistic_regression", "random_forest"),
    ),
    "C": Hyperparameter(
        positive_float,
        "1.0",
        "a number > 0 (inverse regularisation)",
        "0.05",
        search=Continuous(0.01, 100.0, scale="log"),
        estimator="logistic_regression",
    ),
    "max_iter": Hyperparameter(
        positive_int,
        "1000",
        "an integer >= 1 (solver iterations)",
        "50",
        estimator="logistic_regression",
    ),
    "class_weight": Hyperparameter(
        one_of("none", "balanced"),
        "none",
        "'none' or 'balanced'",
        "balanced",
        search=Categorical("none", "balanced"),
    ),
    "n_estimators": Hyperparameter(
        positive_int,
        "100",
        "an integer >= 1 (trees in the forest)",
        "20",
        search=Integer(20, 200, scale="log"),
        estimator="random_forest",
    ),
    "max_depth": Hyperparameter(
        positive_int,
        "6",
        "an integer >= 1 (depth of each tree)",
        "3",
        search=Integer(2, 12),
        estimator="random_forest",
    ),
}


def build_estimator(hyperparameters: Mapping[str, Any]) -> Any:
    """The sklearn Pipeline this model is: its preprocessing, then the chosen classifier."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    class_weight = hyperparameters["class_weight"]
    class_weight = None if class_weight == "none" else class_weight
    if hyperparameters["estimator"] == "random_forest":
        classifier: Any = RandomForestClassifier(
            n_estimators=hyperparameters["n_estimators"],
            max_depth=hyperparameters["max_depth"],
            class_weight=class_weight,
            random_state=0,
        )
    else:
        classifier = LogisticRegression(
            C=hyperparameters["C"],
            max_iter=hyperparameters["max_iter"],
            class_weight=class_weight,
        )
    return Pipeline([("prepare", preprocessing()), ("classify", classifier)])
{%- else %}
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "n_estimators": Hyperparameter(
        positive_int, "200", "an integer >= 1 (boosting stages)", "20", search=Integer(50, 400)
    ),
    "learning_rate": Hyperparameter(
        positive_float,
        "0.05",
        "a number > 0 (shrinkage)",
        "0.2",
        search=Continuous(0.01, 0.3, scale="log"),
    ),
    "max_depth": Hyperparameter(
        positive_int, "2", "an integer >= 1 (depth of each tree)", "3", search=Integer(1, 4)
    ),
    "subsample": Hyperparameter(unit_interval, "0.8", "a number in (0, 1] (rows per stage)", "0.5"),
}


def build_estimator(hyperparameters: Mapping[str, Any]) -> Any:
    """Its preprocessing, then gradient-boosted trees (sklearn's GradientBoostingRegressor),
    seeded for repeatability."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    trees = GradientBoostingRegressor(
        n_estimators=hyperparameters["n_estimators"],
        learning_rate=hyperparameters["learning_rate"],
        max_depth=hyperparameters["max_depth"],
        subsample=hyperparameters["subsample"],
        random_state=0,
    )
    return Pipeline([("prepare", preprocessing()), ("regress", trees)])
{%- endif %}
