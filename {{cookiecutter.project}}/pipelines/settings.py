"""The names and knobs one pipeline definition is built from.

They come from ``[tool.sagemaker-gitops]`` in pyproject.toml, the table ci_scripts reads too, so
the pipeline and the CLI can never disagree on a bucket or a model package group. This module reads
the table with tomllib itself (no ci_scripts import): the pipeline must build in any checkout.
What is the model's (hyperparameter defaults, metrics, the gate's metric, direction and
threshold) comes from ``src/<package>/model.py``, which imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REQUIRED_KEYS = (
    "project",
    "package",
    "region",
    "model_package_group",
    "pipeline_name",
    "ecr_repository",
    "artifact_bucket",
    "sagemaker_role",
)


class PipelineConfigError(ValueError):
    """pyproject.toml lacks something the pipeline needs; the message names the key."""


@dataclass(frozen=True)
class PipelineSettings:
    """Everything ``get_pipeline`` needs; no field is looked up from AWS."""

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
    # The model's declarations (model.py): the gate's metric, direction and default threshold.
    problem_type: str = "binary_classification"
    metrics: tuple[str, ...] = ("accuracy", "auc", "f1", "precision", "recall")
    primary_metric: str = "auc"
    higher_is_better: bool = True
    metric_threshold: float = 0.9
    # [tool.sagemaker-gitops.bias]: the facet feature and positive outcome; no facet = bias off.
    bias_facet: str = ""
    bias_positive_outcome: str = ""
    approval_status: str = "PendingManualApproval"
    cache_expire_after: str = "P30D"  # ISO 8601: how long a cached step result may be reused
    max_runtime_seconds: int = 3600
    # The project KMS key ([tool.sagemaker-gitops].kms_key_arn): job volumes and outputs.
    kms_key_arn: str = ""

    @property
    def kms_key(self) -> str | None:
        """The key for job volumes and outputs, or None for SageMaker's default keys."""
        return self.kms_key_arn or None

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
    def from_table(
        cls,
        table: Mapping[str, Any],
        *,
        image_tag: str = "latest",
        source: str = "[tool.sagemaker-gitops]",
        root: Path | str = ".",
        **overrides: Any,
    ) -> PipelineSettings:
        """Settings from the ``[tool.sagemaker-gitops]`` table that ci_scripts reads too.

        The role, bucket and image are the dev account's: pipelines train in dev, and staging and
        prod only ever receive the registered package. ``overrides`` replace any field (e.g.
        ``image_uri`` for an image CI just pushed). ``root`` is the repo, whose ``src/`` holds
        the model module when the package is not installed.
        """
        missing = [key for key in REQUIRED_KEYS if not table.get(key)]
        if missing:
            raise PipelineConfigError(f"{source}.{missing[0]} is missing")
        dev = (table.get("accounts") or {}).get("dev")
        if not dev:
            raise PipelineConfigError(f"{source}.accounts.dev is missing")
        region = table["region"]
        model = model_module(table["package"], root)
        hyperparameters = {name: spec.default for name, spec in model.HYPERPARAMETERS.items()}
        extra = table.get("hyperparameters") or {}
        if not isinstance(extra, Mapping):
            raise PipelineConfigError(f"{source}.hyperparameters: expected a table")
        # SageMaker passes hyperparameters to the container as strings, whatever TOML typed them.
        hyperparameters.update({str(k): _as_string(v) for k, v in extra.items()})
        values: dict[str, Any] = {
            "project": table["project"],
            "package": table["package"],
            "region": region,
            "role_arn": f"arn:aws:iam::{dev}:role/{table['sagemaker_role']}",
            "default_bucket": table["artifact_bucket"],
            "image_uri": (
                f"{dev}.dkr.ecr.{region}.amazonaws.com/{table['ecr_repository']}:{image_tag}"
            ),
            "pipeline_name": table["pipeline_name"],
            "model_package_group": table["model_package_group"],
            "hyperparameters": hyperparameters,
            "problem_type": model.PROBLEM_TYPE,
            "metrics": tuple(model.METRICS),
            "primary_metric": model.PRIMARY_METRIC,
            "higher_is_better": bool(model.HIGHER_IS_BETTER),
            "metric_threshold": float(model.THRESHOLD),
        }
        bias = table.get("bias") or {}
        if not isinstance(bias, Mapping):
            raise PipelineConfigError(f"{source}.bias: expected a table")
        if bias.get("facet"):
            if "positive_outcome" not in bias:
                raise PipelineConfigError(f"{source}.bias.positive_outcome is missing")
            values["bias_facet"] = str(bias["facet"])
            values["bias_positive_outcome"] = _as_string(bias["positive_outcome"])
        for key in ("processing_instance_type", "training_instance_type", "kms_key_arn"):
            if table.get(key):
                values[key] = table[key]
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"PipelineSettings has no field {unknown[0]!r}")
        return cls(**{**values, **overrides})

    @classmethod
    def from_pyproject(cls, root: Path | str = ".", **kwargs: Any) -> PipelineSettings:
        """Settings from ``<root>/pyproject.toml``; ``kwargs`` as for :meth:`from_table`."""
        path = Path(root) / "pyproject.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PipelineConfigError(f"{path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise PipelineConfigError(f"{path}: invalid TOML: {exc}") from None
        table = data.get("tool", {}).get("sagemaker-gitops")
        if not isinstance(table, dict):
            raise PipelineConfigError(f"{path}: missing [tool.sagemaker-gitops] table")
        return cls.from_table(table, source=f"{path}: [tool.sagemaker-gitops]", root=root, **kwargs)


def model_module(package: str, root: Path | str = ".") -> ModuleType:
    """``<package>.model``, from ``<root>/src`` when the package is not installed."""
    src = str(Path(root).resolve() / "src")
    added = src not in sys.path
    if added:
        sys.path.insert(0, src)
    try:
        return importlib.import_module(f"{package}.model")
    except ImportError as exc:
        raise PipelineConfigError(f"src/{package}/model.py: cannot import: {exc}") from None
    finally:
        if added:
            sys.path.remove(src)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
