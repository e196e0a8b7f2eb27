"""Contract tests: the same GitOps rules checked against every backend.

``backend`` is parametrised over HARNESS_FACTORIES. A factory is a context manager
``factory(tmp_path, monkeypatch) -> BackendHarness`` (see gitops_testkit.BackendHarness): it builds
its own model repo, a backend bound to it, and cleans up on exit. To add a backend, write its
factory and add it here, e.g. ``HARNESS_FACTORIES["local"] = local_harness``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gitops_testkit, *_harness

from aws_harness import aws_harness
from gitops_testkit import BackendHarness
from local_harness import local_harness

HARNESS_FACTORIES: dict[str, Callable[[Path, Any], AbstractContextManager[BackendHarness]]] = {
    "aws": aws_harness,
    "local": local_harness,
}


@pytest.fixture(params=sorted(HARNESS_FACTORIES))
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BackendHarness]:
    """A BackendHarness for each backend (test ids: [aws], [local], ...)."""
    with HARNESS_FACTORIES[request.param](tmp_path, monkeypatch) as harness:
        yield harness


# deployment=batch (#16): the harnesses that render a batch repo (``factory(tmp_path, monkeypatch,
# deployment="batch")``) and run its batch jobs (aws: moto, with the harness doing what the
# batch pipeline's transform does, see aws_harness).
BATCH_HARNESS_FACTORIES: dict[str, Callable[..., AbstractContextManager[BackendHarness]]] = {
    "aws": aws_harness,
    "local": local_harness,
}


@pytest.fixture(params=sorted(BATCH_HARNESS_FACTORIES))
def batch_backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BackendHarness]:
    """A BackendHarness on a deployment=batch repo, for each backend that runs batch jobs."""
    factory = BATCH_HARNESS_FACTORIES[request.param]
    with factory(tmp_path, monkeypatch, deployment="batch") as harness:
        yield harness
