"""Test kit for ci_scripts: a small model repo on disk, a harness per backend, the CLI runner.

``BackendHarness`` is what contract tests talk to; each backend supplies one (``AwsHarness`` here
runs on moto; the local backend adds its own). A harness owns a model repo (``project``), a ready
``backend`` bound to it, and the few test-only powers the contract needs: seed a registered
version, list the mutating operations the backend performed, and make the endpoint answer.
"""

from __future__ import annotations

import csv
import functools
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
from click.testing import Result
from typer.testing import CliRunner

from ci_scripts.backends.base import Backend, ModelVersion
from ci_scripts.cli import State, app
from ci_scripts.project import ProjectConfig
from scripts.template_layout import PROJECT_TEMPLATE

TEMPLATE_DIR = Path(__file__).resolve().parents[2]
TEMPLATE_PROJECT = PROJECT_TEMPLATE
MOTO_ACCOUNT = "123456789012"  # moto's default account: ARNs it makes match the project's
REGION = "eu-west-1"
FEATURES = ("mean_radius", "mean_texture", "mean_smoothness")

# The answers the fake repo is rendered with (cookiecutter.json's, with moto's account).
ANSWERS: dict[str, str] = {
    "project": "churn-model",
    "description": "A test model.",
    "author": "Tests",
    "github_owner": "my-org",
    "github_repo": "churn-model",
    "aws_region": REGION,
    "dev_account_id": MOTO_ACCOUNT,
    "staging_account_id": MOTO_ACCOUNT,
    "prod_account_id": MOTO_ACCOUNT,
    "processing_instance_type": "ml.m5.large",
    "training_instance_type": "ml.m5.large",
    "endpoint_instance_type": "ml.m5.large",
    "problem_type": "binary_classification",
    "deployment": "realtime",
    "monitoring": "yes",
    "api_gateway": "no",
    "__template_version": "0.1.0",
}

# Stands in for the template's pipelines/pipeline.py (same interface, no sagemaker import).
STUB_PIPELINE = '''"""Test stand-in for the template's pipeline: same interface, no SDK."""
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_name: str
    image_uri: str
    input_data_url: str
    role_arn: str = ""

    @classmethod
    def from_pyproject(cls, root=".", *, image_tag="latest", **overrides):
        text = (Path(root) / "pyproject.toml").read_text(encoding="utf-8")
        t = tomllib.loads(text)["tool"]["sagemaker-gitops"]
        image = f"{t['accounts']['dev']}.dkr.ecr.{t['region']}.amazonaws.com/{t['ecr_repository']}"
        data = f"s3://{t['artifact_bucket']}/{t['project']}/data/dataset.csv"
        return cls(t["pipeline_name"], f"{image}:{image_tag}", data, **overrides)


def definition(settings):
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUrl", "Type": "String", "DefaultValue": settings.input_data_url},
            {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 0.9},
        ],
        "Steps": [
            {"Name": "Train", "Type": "Training",
             "Arguments": {"AlgorithmSpecification": {"TrainingImage": settings.image_uri}}},
        ],
    }
'''


def answers_context(**overrides: str) -> dict[str, str]:
    ctx = {**ANSWERS, **overrides}
    project = ctx["project"]
    ctx.setdefault("__package", project.replace("-", "_"))
    ctx.setdefault("__model_package_group", project)
    ctx.setdefault("__pipeline_name", f"{project}-train")
    ctx.setdefault("__ecr_repository", project)
    ctx.setdefault(
        "__artifact_bucket", f"{project}-artifacts-{ctx['dev_account_id']}-{ctx['aws_region']}"
    )
    ctx.setdefault("__sagemaker_role", f"{project}-sagemaker-execution")
    ctx.setdefault("__github_role_prefix", f"{project}-github")
    return ctx


def render_template_file(relpath: str, ctx: dict[str, str]) -> str:
    """One file of the template's model repo, rendered like cookiecutter would."""
    text = (TEMPLATE_PROJECT / relpath).read_text(encoding="utf-8")
    return _compiled(text).render(cookiecutter=ctx)


@functools.cache
def _compiled(text: str) -> jinja2.Template:
    """A template file's source compiled once per process (each test's model repo renders the
    same few files: compiling them was most of writing one)."""
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.from_string(text)


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "tests",
        "GIT_AUTHOR_EMAIL": "tests@localhost",
        "GIT_COMMITTER_NAME": "tests",
        "GIT_COMMITTER_EMAIL": "tests@localhost",
    }
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def write_dataset(path: Path, rows: int = 30) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", *FEATURES])
        for i in range(rows):
            writer.writerow(
                [i % 2, f"{10 + i * 0.5:.2f}", f"{20 - i * 0.25:.2f}", f"{0.1 + i / 1000:.3f}"]
            )


# The platform's monitoring and batch pipelines (ci_scripts.pipelines.monitoring / .batch) need the
# SDK and run the real runtime: the harnesses build these stand-ins instead, written into the
# repo as pipelines/monitoring.py and pipelines/batch.py (see use_stub_platform_pipelines).
STUB_MONITORING = '''"""Test stand-in for the platform's monitoring pipeline (no SDK)."""
from pipelines.pipeline import PipelineSettings  # the same settings, as the template's


def definition(settings):
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "MonitorConfig", "Type": "String", "DefaultValue": "{}"}],
        "Steps": [
            {"Name": "Monitor", "Type": "Processing",
             "Arguments": {"AppSpecification": {"ImageUri": settings.image_uri},
                           "RoleArn": settings.role_arn}},
        ],
    }
'''


# Stands in for ci_scripts/pipelines/batch.py (same parameters and steps, no SDK).
STUB_BATCH = '''"""Test stand-in for the platform's batch pipeline (no SDK)."""
import tomllib
from dataclasses import dataclass
from pathlib import Path

PARAMETERS = ("ModelName", "InputUri", "OutputUri", "InstanceType", "InstanceCount",
              "MaxPayloadInMB", "MaxConcurrentTransforms", "CheckUri", "CaptureUri")


@dataclass(frozen=True)
class PipelineSettings:
    image_uri: str
    role_arn: str

    @classmethod
    def from_pyproject(cls, root=".", *, image_tag="latest", role_arn="", **_):
        text = (Path(root) / "pyproject.toml").read_text(encoding="utf-8")
        t = tomllib.loads(text)["tool"]["sagemaker-gitops"]
        image = f"{t['accounts']['dev']}.dkr.ecr.{t['region']}.amazonaws.com/{t['ecr_repository']}"
        return cls(f"{image}:{image_tag}", role_arn)


def definition(settings):
    get = {name: {"Get": f"Parameters.{name}"} for name in PARAMETERS}
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": name, "Type": "String", "DefaultValue": ""} for name in PARAMETERS],
        "Steps": [
            {"Name": "CheckInput", "Type": "Processing",
             "Arguments": {"AppSpecification": {"ImageUri": settings.image_uri},
                           "RoleArn": settings.role_arn}},
            {"Name": "Transform", "Type": "Transform", "DependsOn": ["CheckInput"],
             "Arguments": {"ModelName": get["ModelName"]}},
        ],
    }
'''


STUB_MONITORING_MODULE = "pipelines.monitoring"
STUB_BATCH_MODULE = "pipelines.batch"


def use_stub_platform_pipelines(monkeypatch: Any) -> None:
    """Build the stand-ins of a stub repo (:func:`write_model_repo`) where ci_scripts builds its
    monitoring and batch pipelines (the only seam: the module each is built from)."""
    import ci_scripts.batch
    import ci_scripts.monitoring

    monkeypatch.setattr(ci_scripts.monitoring, "MONITORING_MODULE", STUB_MONITORING_MODULE)
    monkeypatch.setattr(ci_scripts.batch, "BATCH_MODULE", STUB_BATCH_MODULE)


def write_model_repo(root: Path, *, pipeline: str = "stub", **answers: str) -> Path:
    """A model repo as the template renders it, trimmed to what ci_scripts reads; committed.

    ``pipeline="stub"`` writes :data:`STUB_PIPELINE` (and the stand-ins of the platform's
    monitoring and batch pipelines: :func:`use_stub_platform_pipelines`); ``"template"`` copies
    the template's real pipelines/ package (needs the sagemaker SDK); ``"none"`` writes no
    pipeline.
    """
    ctx = answers_context(**answers)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(render_template_file("pyproject.toml", ctx), "utf-8")
    (root / "deploy").mkdir(exist_ok=True)
    for env in ("staging", "prod"):
        text = render_template_file(f"deploy/{env}.json", ctx)
        json.loads(text)  # the template renders valid JSON
        (root / "deploy" / f"{env}.json").write_text(text, "utf-8")
    write_dataset(root / "data" / "dataset.csv")
    (root / "Dockerfile").write_text(
        f'FROM python:3.11-slim\nCOPY . /app\nENTRYPOINT ["python", "-m", "{ctx["__package"]}"]\n',
        "utf-8",
    )
    package = root / "src" / ctx["__package"]
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""The model package."""\n', "utf-8")
    if pipeline != "none":
        (root / "pipelines").mkdir(exist_ok=True)
        if pipeline == "template":
            for source in (TEMPLATE_PROJECT / "pipelines").glob("*.py"):
                (root / "pipelines" / source.name).write_text(source.read_text("utf-8"), "utf-8")
            # the pipeline reads the model's declarations (hyperparameters, metrics, gate)
            write_team_package(package, ctx)
        else:
            (root / "pipelines" / "__init__.py").write_text("", "utf-8")
            (root / "pipelines" / "pipeline.py").write_text(STUB_PIPELINE, "utf-8")
            (root / "pipelines" / "monitoring.py").write_text(STUB_MONITORING, "utf-8")
            if ctx["deployment"] == "batch":  # what deploy upserts as <project>-<env>-batch
                (root / "pipelines" / "batch.py").write_text(STUB_BATCH, "utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial commit from sagemaker-gitops")
    return root


def run_cli(
    project_dir: Path, backend: Backend | None, *args: str, env: dict[str, str] | None = None
) -> Result:
    """Run ``python -m ci_scripts ARGS`` in-process against ``backend`` (None: the CLI picks)."""
    state = State(
        project_dir=project_dir,
        backend_name=getattr(backend, "name", "local"),
        backend_instance=backend,
    )
    return CliRunner().invoke(app, list(args), obj=state, env=env, catch_exceptions=False)


class BackendHarness(ABC):
    """What a backend gives the contract tests. Subclass per backend; see AwsHarness."""

    name: str
    project: ProjectConfig
    backend: Backend
    #: Whether ``prepare_invocations`` can script the endpoint's answers (moto can; a real
    #: model server answers what it answers).
    scripted_invocations: bool = False

    @abstractmethod
    def seed_version(
        self,
        *,
        metrics: dict[str, float] | None = None,
        hyperparameters: dict[str, str] | None = None,
        approval: str = "PendingManualApproval",
        group: str | None = None,
        same_model_as: ModelVersion | None = None,
    ) -> ModelVersion:
        """Register a new, deployable version (in the project's group unless ``group``);
        ``same_model_as``: with that version's artifact (what a fully cached re-run registers)."""

    @abstractmethod
    def mutations(self) -> list[str]:
        """Names of the state-changing operations the backend performed since the last reset."""

    @abstractmethod
    def reset_mutations(self) -> None:
        """Forget the mutations seen so far."""

    def prepare_invocations(self, env: str, rows: int) -> None:
        """Make ``env``'s endpoint answer a smoke test of ``rows`` rows (no-op for real servers)."""
        return None

    def expect_healthy_smoke_test(self, env: str) -> None:
        """Make ``env`` answer one passing smoke test of its manifest's rows: a restore
        (rollback, smoke-test --rollback-on-failure) smoke-tests the restored version again."""
        manifest = json.loads(self.project.manifest_path(env).read_text())
        self.prepare_invocations(env, manifest.get("smoke_test", {}).get("rows", 20))

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return run_cli(self.project.root, self.backend, *args, env=env)

    def commit(self, message: str) -> str:
        """Commit every change in the model repo (what merging a PR does); the new SHA."""
        git(self.project.root, "add", "-A")
        git(self.project.root, "commit", "-q", "-m", message)
        return git(self.project.root, "rev-parse", "HEAD")


HarnessFactory = Callable[..., Any]


TEAM_PACKAGE = "src/{{cookiecutter.__package}}"
TEAM_FILES = ("__init__.py", "model.py", "schema.py")


def write_team_package(package_dir: Path, ctx: dict[str, str]) -> None:
    """The template's team package (model.py, schema.py: they hold jinja) rendered for ``ctx``."""
    package_dir.mkdir(parents=True, exist_ok=True)
    for name in TEAM_FILES:
        text = render_template_file(f"{TEAM_PACKAGE}/{name}", ctx)
        (package_dir / name).write_text(text, "utf-8")


def template_step_module(name: str) -> ModuleType:
    """A module of the platform's step code (ci_scripts.runtime) bound to the template's model
    and schema, rendered for the default answers into a temporary package. Every runtime module
    is imported while ``$MODEL_PACKAGE`` names that package (the step code imports more of itself
    lazily), then the variable is put back: subprocesses of later tests must not inherit it."""
    import os
    import pkgutil
    import tempfile

    package = "template_step_code"
    if package not in sys.modules:
        parent = Path(tempfile.mkdtemp(prefix="step-code-"))
        write_team_package(parent / package, answers_context())
        sys.path.insert(0, str(parent))
        saved = os.environ.get("MODEL_PACKAGE")
        os.environ["MODEL_PACKAGE"] = package
        try:
            import ci_scripts.runtime as runtime
            from ci_scripts.runtime import team

            team.package.cache_clear()
            for info in pkgutil.iter_modules(runtime.__path__):
                if info.name != "__main__":
                    importlib.import_module(f"ci_scripts.runtime.{info.name}")
        finally:
            if saved is None:
                os.environ.pop("MODEL_PACKAGE", None)
            else:
                os.environ["MODEL_PACKAGE"] = saved
    return importlib.import_module(f"ci_scripts.runtime.{name}")
