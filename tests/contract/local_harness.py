"""The local backend as a BackendHarness: a real registry, router and model servers on loopback.

The model repo's step code is the local tests' stand-in (tests/local/fake_step_code.py, standard
library only), so a deploy starts a real server process in milliseconds. Mutations are read from
the backend's own journal (.mlops/journal.jsonl), where every registry write, endpoint change and
process start/stop is recorded as it happens.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitops_testkit import (
    BackendHarness,
    answers_context,
    git,
    render_template_file,
    use_stub_platform_pipelines,
    write_model_repo,
)

from ci_scripts.backends.base import ModelVersion
from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.project import ProjectConfig

FAKE_STEP_CODE = Path(__file__).resolve().parents[1] / "local" / "fake_step_code.py"
FAKE_BATCH_SERVE = Path(__file__).resolve().parents[1] / "local" / "fake_batch_serve.py"
# deployment=batch: the platform's real batch steps (ci_scripts.runtime, reading the rendered model
# and schema) check and capture the files the fake serve code answers for; the shipped dataset has
# the real features, for the smoke test.
BATCH_MODULES = ("model", "schema")
DEFAULT_METRICS = {"auc": 0.95, "accuracy": 0.91, "f1": 0.9, "precision": 0.89, "recall": 0.92}


class LocalHarness(BackendHarness):
    name = "local"
    scripted_invocations = False

    def __init__(self, root: Path, **answers: str) -> None:
        write_model_repo(root, **answers)
        package = ProjectConfig.load(root).package
        shutil.copyfile(FAKE_STEP_CODE, root / "src" / package / "__main__.py")
        if answers.get("deployment") == "batch":
            write_batch_code(root, package, answers)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "Step code")
        self.project = ProjectConfig.load(root)
        self.backend = LocalBackend(self.project)
        self._seen = 0

    def seed_version(
        self,
        *,
        metrics: dict[str, float] | None = None,
        hyperparameters: dict[str, str] | None = None,
        approval: str = "PendingManualApproval",
        group: str | None = None,
        serve: str = "ok",
        same_model_as: ModelVersion | None = None,
    ) -> ModelVersion:
        """Register a package as the RegisterModel step does, with a servable model.tar.gz
        (``serve``: how its server behaves, see tests/local/fake_step_code.py)."""
        group = group or self.project.model_package_group
        number = len(self.backend.list_versions(group)) + 1
        prefix = f"s3://{self.project.artifact_bucket}/seed/{group}/{number}"
        model = json.dumps({"name": f"{group}-{number}", "serve": serve}).encode()
        archive = self.backend.state.s3_path(f"{prefix}/model.tar.gz")
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo("model.json")
            info.size = len(model)
            tar.addfile(info, io.BytesIO(model))
        image = f"{self.project.accounts['dev']}.dkr.ecr.{self.project.region}.amazonaws.com"
        return self.backend.registry.register(
            group,
            model_data_url=same_model_as.model_data_url
            if same_model_as
            else f"{prefix}/model.tar.gz",
            image_uri=f"{image}/{self.project.ecr_repository}:abc",
            approval_status=approval,
            metrics=DEFAULT_METRICS if metrics is None else metrics,
            hyperparameters=hyperparameters or {},
        )

    def seed_shadow_candidate(self, behaviour: str = "agrees") -> ModelVersion:
        """A version whose server, as a shadow of prod, ``agrees`` with the live answers,
        ``disagrees`` (another label) or ``errors`` (5xx): the router measures what it does."""
        serve = {"agrees": "ok", "disagrees": "disagree", "errors": "errors"}[behaviour]
        return self.seed_version(serve=serve)

    def mutations(self) -> list[str]:
        return [e["operation"] for e in self.backend.state.journal_entries()[self._seen :]]

    def reset_mutations(self) -> None:
        self._seen = len(self.backend.state.journal_entries())

    def close(self) -> None:
        """Stop every process the tests started; fail loudly if one survives."""
        self.backend.down()
        left = [r for r in procs.records(self.backend.state) if procs.alive(r)]
        assert not left, f"local processes left running: {left}"


def write_batch_code(root: Path, package: str, answers: dict[str, str]) -> None:
    """The rendered model and schema (the real batch steps read them), the fake serve, the real
    dataset."""
    ctx = answers_context(**answers)
    for name in BATCH_MODULES:
        text = render_template_file(f"src/{{{{cookiecutter.__package}}}}/{name}.py", ctx)
        (root / "src" / package / f"{name}.py").write_text(text, "utf-8")
    for name in ("serve", "model_artifacts"):
        shutil.copyfile(FAKE_BATCH_SERVE, root / "src" / package / f"{name}.py")
    dataset = render_template_file("data/dataset.csv", ctx)
    (root / "data" / "dataset.csv").write_text(dataset, "utf-8")


@contextmanager
def local_harness(tmp_path: Path, monkeypatch: Any, **answers: str) -> Iterator[LocalHarness]:
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_HEALTH_TIMEOUT", "10")
    # Short canary windows: a window always runs one whole round of probes (local canary.watch),
    # which is what the rollbacks are decided on; every longer round was traffic and CPU.
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_CANARY_SECONDS", "0.1")
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_SHADOW_SECONDS", "0.3")  # and shadow windows
    # The image's ENTRYPOINT module: the stand-in step code written as the package's __main__.
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_RUNTIME", answers_context(**answers)["__package"])
    use_stub_platform_pipelines(monkeypatch)
    harness = LocalHarness(tmp_path / "repo", **answers)
    try:
        yield harness
    finally:
        harness.close()
