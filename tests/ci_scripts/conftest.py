"""Unit tests of ci_scripts; they share the contract tests' kit (model repo, moto harness)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTRACT_DIR = Path(__file__).resolve().parents[1] / "contract"
sys.path.insert(0, str(CONTRACT_DIR))

from aws_harness import AwsHarness, aws_harness  # noqa: E402


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsHarness]:
    """The aws backend on moto with a fresh model repo (realtime endpoints)."""
    with aws_harness(tmp_path, monkeypatch) as harness:
        yield harness
