"""The project's facts (names, accounts, region), read once from ``[tool.sagemaker-gitops]``.

The cookiecutter render writes this table into the generated repo's pyproject.toml; every command
and both backends read names from here, so no resource name is re-derived anywhere else.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ci_scripts.errors import CIError

ENVIRONMENTS = ("staging", "prod")
# [tool.sagemaker-gitops.tuning].strategy: the SageMaker Automatic Model Tuning strategies the
# local backend reproduces (Optuna's TPE for Bayesian, its random sampler for Random); see
# https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html
TUNING_STRATEGIES = ("Bayesian", "Random")
# A SageMaker managed MLflow tracking server (or app); the pattern of AIMlflowConfig's
# MlflowResourceArn: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AIMlflowConfig.html
MLFLOW_ARN = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-(app|tracking-server)/.+"
)


@dataclass(frozen=True)
class TuningBudget:
    """``[tool.sagemaker-gitops.tuning]``: how many trials, how many at once, how chosen.

    One trial (the default without the table) is a plain training job with the declared values.
    Limits as ResourceLimits documents them (both at least 1):
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceLimits.html
    """

    max_trials: int = 1
    max_parallel: int = 1
    strategy: str = "Bayesian"
    seed: int = 42  # RandomSeed of the tuning job; Optuna's sampler seed locally

    @property
    def tunes(self) -> bool:
        return self.max_trials > 1


# A key ARN (not an alias: cross-account use and S3 replication need the key ARN itself).
KMS_KEY_ARN = re.compile(r"arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:key/[A-Za-z0-9-]+")


@dataclass(frozen=True)
class ProjectConfig:
    """Everything ci_scripts needs to know about the model repo it runs in."""

    root: Path
    project: str
    package: str
    region: str
    model_package_group: str
    pipeline_name: str
    ecr_repository: str
    artifact_bucket: str
    sagemaker_role: str
    accounts: dict[str, str]
    deployment: str = "realtime"
    monitoring: bool = True
    api_gateway: bool = False
    template_version: str = "unknown"
    github_repository: str = ""
    kms_key_arn: str = ""
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    # [tool.sagemaker-gitops.hyperparameters]: override model.py's defaults (as strings: SageMaker
    # passes hyperparameters to the container as strings, whatever TOML typed them).
    hyperparameters: dict[str, str] = field(default_factory=dict)
    # [tool.sagemaker-gitops.bias]: the facet feature, its group (a category compared with the
    # rest; empty: above the median) and the positive outcome; no facet = bias off.
    bias_facet: str = ""
    bias_group: str = ""
    bias_positive_outcome: str = ""
    # [tool.sagemaker-gitops.tuning]: the budget of the pipeline's tuning step.
    tuning: TuningBudget = field(default_factory=TuningBudget)
    # A SageMaker managed MLflow tracking server ARN; empty: no MLflow tracking on AWS.
    mlflow_tracking_arn: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path | str = ".") -> ProjectConfig:
        """Read ``pyproject.toml`` under ``root``; a missing or incomplete table is a CIError."""
        root = Path(root).resolve()
        path = root / "pyproject.toml"
        if not path.is_file():
            raise CIError(f"{path}: not found; run ci_scripts from the model repository root")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CIError(f"{path}: invalid TOML: {exc}") from exc
        table = data.get("tool", {}).get("sagemaker-gitops")
        if not isinstance(table, dict):
            raise CIError(f"{path}: missing [tool.sagemaker-gitops] table")
        required = (
            "project",
            "package",
            "region",
            "model_package_group",
            "pipeline_name",
            "ecr_repository",
            "artifact_bucket",
            "sagemaker_role",
            "accounts",
        )
        for key in required:
            if key not in table:
                raise CIError(f"{path}: [tool.sagemaker-gitops].{key} is missing")
        accounts = table["accounts"]
        for env in ("dev", *ENVIRONMENTS):
            if env not in accounts:
                raise CIError(f"{path}: [tool.sagemaker-gitops.accounts].{env} is missing")
        kms_key_arn = table.get("kms_key_arn", "")
        if kms_key_arn:
            match = KMS_KEY_ARN.fullmatch(str(kms_key_arn))
            if not match:
                raise CIError(
                    f"{path}: [tool.sagemaker-gitops].kms_key_arn {kms_key_arn!r} is not a KMS key"
                    " ARN (arn:aws:kms:<region>:<account>:key/<id>)"
                )
            if match["region"] != table["region"]:
                raise CIError(
                    f"{path}: [tool.sagemaker-gitops].kms_key_arn is in {match['region']}, not"
                    f" in the project's region {table['region']} (KMS keys are regional)"
                )
        arn = table.get("mlflow_tracking_arn", "")
        if arn and not MLFLOW_ARN.fullmatch(str(arn)):
            raise CIError(
                f"{path}: [tool.sagemaker-gitops].mlflow_tracking_arn {arn!r} is not a SageMaker"
                " MLflow ARN (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)"
            )
        tables = {k: table.pop(k) for k in ("hyperparameters", "bias", "tuning") if k in table}
        typed = {
            "root",
            "extra",
            "hyperparameters",
            "bias_facet",
            "bias_group",
            "bias_positive_outcome",
            "tuning",
        }
        known = set(cls.__dataclass_fields__) - typed
        return cls(
            root=root,
            **{k: v for k, v in table.items() if k in known},
            **_tables(path, tables),
            extra={k: v for k, v in table.items() if k not in known},
        )

    @property
    def kms_key_id(self) -> str | None:
        """The project KMS key for SageMaker volumes, outputs and data capture, or None."""
        return self.kms_key_arn or None

    def endpoint_name(self, env: str) -> str:
        """One endpoint per environment, named after the project."""
        return f"{self.project}-{env}"

    def batch_pipeline_name(self, env: str) -> str:
        """The batch transform pipeline of ``env`` (``endpoint.type: batch``; no endpoint)."""
        return f"{self.project}-{env}-batch"

    def manifest_path(self, env: str) -> Path:
        """Desired state for ``env`` lives in ``deploy/<env>.json``."""
        return self.root / "deploy" / f"{env}.json"

    def role_arn(self, env: str) -> str:
        """The SageMaker execution role in the account that hosts ``env`` (dev runs pipelines)."""
        return f"arn:aws:iam::{self.accounts[env]}:role/{self.sagemaker_role}"

    def capture_bucket(self, env: str) -> str:
        """Where ``env``'s endpoint writes its data capture, labels and monitoring reports.

        Each account that hosts an endpoint keeps its own capture bucket (infra/bootstrap.yml),
        which replicates ``datacapture/`` and ``groundtruth/`` into the dev artifact bucket; an
        environment in the dev account (single-account set-up) uses the artifact bucket itself.
        """
        account = self.accounts.get(env, self.accounts["dev"])
        if account == self.accounts["dev"]:
            return self.artifact_bucket
        return f"{self.project}-capture-{account}-{self.region}"

    def model_package_arn(self, version: int, group: str | None = None) -> str:
        """Packages live in the dev account's registry; staging and prod read them cross-account.

        ``group`` defaults to this project's model package group (the registries take any)."""
        return (
            f"arn:aws:sagemaker:{self.region}:{self.accounts['dev']}:"
            f"model-package/{self.model_package_group if group is None else group}/{version}"
        )


def _tables(path: Path, tables: dict[str, object]) -> dict[str, object]:
    """The ``hyperparameters`` and ``bias`` sub-tables, checked and typed."""
    values: dict[str, object] = {}
    extra = tables.get("hyperparameters", {})
    if not isinstance(extra, dict):
        raise CIError(f"{path}: [tool.sagemaker-gitops].hyperparameters: expected a table")
    values["hyperparameters"] = {str(k): as_string(v) for k, v in extra.items()}
    bias = tables.get("bias", {})
    if not isinstance(bias, dict):
        raise CIError(f"{path}: [tool.sagemaker-gitops].bias: expected a table")
    if bias.get("facet"):
        if "positive_outcome" not in bias:
            raise CIError(f"{path}: [tool.sagemaker-gitops.bias].positive_outcome is missing")
        values["bias_facet"] = str(bias["facet"])
        values["bias_group"] = as_string(bias.get("group", ""))
        values["bias_positive_outcome"] = as_string(bias["positive_outcome"])
    values["tuning"] = _tuning(path, tables.get("tuning", {}))
    return values


def _tuning(path: Path, table: object) -> TuningBudget:
    """``[tool.sagemaker-gitops.tuning]``, each key checked (a bad one names itself)."""
    where = f"{path}: [tool.sagemaker-gitops.tuning]"
    if not isinstance(table, dict):
        raise CIError(f"{where}: expected a table")
    unknown = sorted(set(table) - set(TuningBudget.__dataclass_fields__))
    if unknown:
        raise CIError(
            f"{where}.{unknown[0]}: unknown key (known: max_trials, max_parallel, strategy, seed)"
        )
    for key in ("max_trials", "max_parallel", "seed"):
        value = table.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CIError(f"{where}.{key}: expected an integer >= 1, got {value!r}")
    strategy = table.get("strategy", "Bayesian")
    if strategy not in TUNING_STRATEGIES:
        raise CIError(
            f"{where}.strategy: {strategy!r} is not one of {', '.join(TUNING_STRATEGIES)}"
        )
    budget = TuningBudget(**table)
    if budget.max_parallel > budget.max_trials:
        raise CIError(f"{where}.max_parallel: {budget.max_parallel} is more than max_trials")
    return budget


def as_string(value: object) -> str:
    """A TOML value as SageMaker passes it to a container: a string (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
