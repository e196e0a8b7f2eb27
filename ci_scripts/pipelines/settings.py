"""The names and knobs one pipeline definition is built from.

Nothing here reads a file: the project's facts come from ``ci_scripts.project.ProjectConfig``
(``[tool.sagemaker-gitops]`` in pyproject.toml, the table every command reads) and the model's
from ``ci_scripts.model_contract`` (``src/<package>/model.py``: hyperparameter defaults, metrics,
the gate's metric, direction and threshold). So the pipelines and the CLI can never disagree on a
bucket, a model package group or a metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_scripts import model_contract
from ci_scripts.errors import CIError
from ci_scripts.hyperparameters import Search
from ci_scripts.project import ProjectConfig, TuningBudget


class PipelineConfigError(CIError):
    """The project lacks something the pipeline needs; the message names the key or file."""


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a pipeline builder needs; no field is looked up from AWS."""

    project: str
    package: str
    region: str
    role_arn: str
    default_bucket: str
    image_uri: str
    pipeline_name: str
    model_package_group: str
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    base_prefix: str = ""  # S3 key prefix in default_bucket; empty means the project name
    # What the definition passes to `train`: model.py's defaults, written out rather than left
    # to the step so every registered model records what it was trained with; a
    # [tool.sagemaker-gitops.hyperparameters] table overrides them.
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    # model.py's search space (``search=``) and pyproject's budget for it: the tuning step.
    search_space: Mapping[str, Search] = field(default_factory=dict)
    tuning: TuningBudget = field(default_factory=TuningBudget)
    # A SageMaker managed MLflow tracking server: the pipeline's MlflowConfig ("" = none).
    mlflow_tracking_arn: str = ""
    # The model's declarations (model.py): the gate's metric, direction and default threshold.
    problem_type: str = "binary_classification"
    metrics: tuple[str, ...] = ("accuracy", "auc", "f1", "precision", "recall")
    primary_metric: str = "auc"
    higher_is_better: bool = True
    metric_threshold: float = 0.9
    # [tool.sagemaker-gitops.bias]: the facet feature and positive outcome; no facet = bias off.
    bias_facet: str = ""
    bias_group: str = ""
    bias_positive_outcome: str = ""
    approval_status: str = "PendingManualApproval"
    cache_expire_after: str = "P30D"  # ISO 8601: how long a cached step result may be reused
    max_runtime_seconds: int = 3600
    # The project KMS key ([tool.sagemaker-gitops].kms_key_arn): job volumes and outputs.
    kms_key_arn: str = ""

    # The batch pipeline's transform instance type (the manifest's endpoint.instance_type, which
    # deploy passes): decides its VolumeKmsKeyId. Empty: not known (validate's build).
    transform_instance_type: str = ""

    @property
    def kms_key(self) -> str | None:
        """The key for job outputs, or None for SageMaker's default keys."""
        return self.kms_key_arn or None

    def volume_kms_key(self, instance_type: str) -> str | None:
        """The key for the volumes of a job on ``instance_type``: none on instance types with
        local instance storage (SageMaker refuses a VolumeKmsKeyId there: ci_scripts.
        manifest_rules.volume_kms_key)."""
        from ci_scripts import manifest_rules

        return manifest_rules.volume_kms_key(self.kms_key, instance_type)

    @property
    def tunes(self) -> bool:
        """A tuning step (more than one trial over a non-empty search space), or one Train."""
        return self.tuning.tunes and bool(self.search_space)

    @property
    def prefix(self) -> str:
        """The S3 key prefix everything of this project lives under."""
        return (self.base_prefix or self.project).strip("/")

    @property
    def input_data_url(self) -> str:
        """Where CI uploads data/dataset.csv; the default of parameter InputDataUrl."""
        return f"s3://{self.default_bucket}/{self.prefix}/data/dataset.csv"

    @property
    def runs_url(self) -> str:
        """Step outputs go under <runs_url>/<execution id>/<step>/..."""
        return f"s3://{self.default_bucket}/{self.prefix}/pipeline-runs"

    @classmethod
    def from_project(
        cls, project: ProjectConfig, *, image_tag: str = "latest", **overrides: Any
    ) -> PipelineSettings:
        """Settings from the project's facts and its model's declarations.

        The role, bucket and image are the dev account's: pipelines train in dev, and staging and
        prod only ever receive the registered package. ``overrides`` replace any field (e.g.
        ``image_uri`` for an image CI just pushed, ``role_arn`` for another account's pipeline).
        """
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"PipelineSettings has no field {unknown[0]!r}")
        model_file = model_contract.model_file(project)
        if not model_file.is_file():
            rel = model_file.relative_to(project.root).as_posix()
            raise PipelineConfigError(
                f"{rel}: not found; the pipeline reads the model's hyperparameters, metrics "
                "and gate from it"
            )
        contract = model_contract.load(project)
        dev = project.accounts["dev"]
        values: dict[str, Any] = {
            "project": project.project,
            "package": project.package,
            "region": project.region,
            "role_arn": project.role_arn("dev"),
            "default_bucket": project.artifact_bucket,
            "image_uri": (
                f"{dev}.dkr.ecr.{project.region}.amazonaws.com/{project.ecr_repository}:{image_tag}"
            ),
            "pipeline_name": project.pipeline_name,
            "model_package_group": project.model_package_group,
            "processing_instance_type": project.processing_instance_type,
            "training_instance_type": project.training_instance_type,
            "hyperparameters": {**contract.hyperparameters, **project.hyperparameters},
            "search_space": dict(contract.search_space),
            "tuning": project.tuning,
            "mlflow_tracking_arn": project.mlflow_tracking_arn,
            "problem_type": contract.problem_type,
            "metrics": tuple(contract.metrics),
            "primary_metric": contract.primary_metric,
            "higher_is_better": contract.higher_is_better,
            "metric_threshold": contract.threshold,
            "bias_facet": project.bias_facet,
            "bias_group": project.bias_group,
            "bias_positive_outcome": project.bias_positive_outcome,
            "kms_key_arn": project.kms_key_arn,
        }
        return cls(**{**values, **overrides})

    @classmethod
    def from_pyproject(cls, root: Path | str = ".", **kwargs: Any) -> PipelineSettings:
        """Settings of the model repo at ``root``; ``kwargs`` as for :meth:`from_project`."""
        return cls.from_project(ProjectConfig.load(root), **kwargs)
