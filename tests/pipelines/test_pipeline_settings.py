"""PipelineSettings: built from ProjectConfig ([tool.sagemaker-gitops]) and the model's
declarations (model_contract), the one reading of each; errors name the key or file. No SDK."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ci_scripts import model_contract
from ci_scripts.errors import CIError
from ci_scripts.pipelines.settings import PipelineConfigError, PipelineSettings
from ci_scripts.project import ProjectConfig

TABLE_HEADER = "[tool.sagemaker-gitops]"


@pytest.fixture(scope="module")
def root(bake_once) -> Path:
    return bake_once()


@pytest.fixture(scope="module")
def table(root: Path) -> dict[str, Any]:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["tool"]["sagemaker-gitops"]


def copy_repo(root: Path, target: Path, pyproject: str | None = None) -> Path:
    """pyproject.toml (or ``pyproject``) and the model's declarations of ``root`` under
    ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    (target / "pyproject.toml").write_text(pyproject or text, encoding="utf-8")
    for declared in [*root.glob("src/*/model.py"), *root.glob("src/*/schema.py")]:
        (target / declared.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        (target / declared.relative_to(root)).write_text(declared.read_text("utf-8"), "utf-8")
    return target


def test_settings_come_from_the_pyproject_table(root, table) -> None:
    settings = PipelineSettings.from_pyproject(root)
    dev, region, repository = table["accounts"]["dev"], table["region"], table["ecr_repository"]
    assert settings.role_arn == f"arn:aws:iam::{dev}:role/{table['sagemaker_role']}"
    assert settings.default_bucket == table["artifact_bucket"]
    assert settings.image_uri == f"{dev}.dkr.ecr.{region}.amazonaws.com/{repository}:latest"
    assert (settings.pipeline_name, settings.model_package_group, settings.package) == (
        table["pipeline_name"],
        table["model_package_group"],
        table["package"],
    )
    assert (settings.processing_instance_type, settings.training_instance_type) == (
        table["processing_instance_type"],
        table["training_instance_type"],
    )
    bias = table.get("bias") or {}
    assert settings.bias_facet == bias.get("facet", "")


def test_the_model_declarations_come_from_the_model_contract(root) -> None:
    project = ProjectConfig.load(root)
    contract = model_contract.load(project)
    settings = PipelineSettings.from_project(project)
    assert settings.hyperparameters == contract.hyperparameters
    assert contract.hyperparameters  # the template's model declares some
    assert (settings.problem_type, settings.metrics, settings.primary_metric) == (
        contract.problem_type,
        contract.metrics,
        contract.primary_metric,
    )
    assert (settings.higher_is_better, settings.metric_threshold) == (
        contract.higher_is_better,
        contract.threshold,
    )


def test_the_hyperparameters_table_overrides_the_models_defaults_as_strings(root, tmp_path) -> None:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    name = next(iter(model_contract.load(ProjectConfig.load(root)).hyperparameters))
    text += f"\n[tool.sagemaker-gitops.hyperparameters]\n{name} = 7\nwarm = true\n"
    settings = PipelineSettings.from_pyproject(copy_repo(root, tmp_path / "repo", text))
    assert settings.hyperparameters[name] == "7"
    assert settings.hyperparameters["warm"] == "true"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: re.sub(r"(?m)^artifact_bucket = .*\n", "", t), r"\.artifact_bucket is missing"),
        (lambda t: "[project]\nname = 'x'\n", r"missing \[tool\.sagemaker-gitops\] table"),
        (
            lambda t: re.sub(r"(?m)^positive_outcome = .*\n", "", t),
            r"\[tool\.sagemaker-gitops\.bias\]\.positive_outcome is missing",
        ),
        (
            lambda t: t.replace(TABLE_HEADER, f"{TABLE_HEADER}\nhyperparameters = 3", 1),
            r"\[tool\.sagemaker-gitops\]\.hyperparameters: expected a table",
        ),
    ],
    ids=["key", "table", "bias", "hyperparameters"],
)
def test_a_missing_or_bad_setting_is_named(root, tmp_path, edit, message) -> None:
    text = edit((root / "pyproject.toml").read_text(encoding="utf-8"))
    repo = copy_repo(root, tmp_path / "repo", text)
    with pytest.raises(CIError, match=message) as raised:
        PipelineSettings.from_pyproject(repo)
    assert "pyproject.toml" in str(raised.value)


def test_a_missing_model_file_is_named(root, tmp_path) -> None:
    repo = copy_repo(root, tmp_path / "repo")
    for model in repo.glob("src/*/model.py"):
        model.unlink()
    with pytest.raises(PipelineConfigError, match=r"^src/\w+/model\.py: not found"):
        PipelineSettings.from_pyproject(repo)


def test_an_unknown_override_is_refused(root) -> None:
    with pytest.raises(TypeError, match="no field 'imag_uri'"):
        PipelineSettings.from_pyproject(root, imag_uri="x")
