"""Fixtures for the local backend's tests (helpers live in local_testkit.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_testkit import synthetic_definition, write_fake_repo

from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.project import ProjectConfig


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_fake_repo(tmp_path / "repo")


@pytest.fixture
def backend(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    """A LocalBackend on ``repo``; every process it started is stopped afterwards (asserted)."""
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_HEALTH_TIMEOUT", "5")
    # Short canary windows: a window always runs one whole round of probes (local canary.watch),
    # which is what the rollbacks are decided on; every longer round was traffic and CPU.
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_CANARY_SECONDS", "0.1")
    # The image's ENTRYPOINT module: the stand-in step code (fake_step_code.py as __main__).
    monkeypatch.setenv("CI_SCRIPTS_LOCAL_RUNTIME", "churn_model")
    local = LocalBackend(ProjectConfig.load(repo))
    try:
        yield local
    finally:
        local.down()
        assert not [r for r in procs.records(local.state) if procs.alive(r)]


@pytest.fixture
def definition() -> Callable[[], dict[str, Any]]:
    return synthetic_definition


@pytest.fixture
def registered(backend: LocalBackend) -> Callable[..., Any]:
    """``registered(**parameters) -> ModelVersion``: run the synthetic pipeline."""

    def run(**parameters: Any) -> Any:
        result = backend.run_definition(synthetic_definition(), parameters)
        assert result.status == "Succeeded", result.failure_reason
        version = backend.get_version("churn-model", result.registered_version)
        assert version is not None
        return version

    return run
