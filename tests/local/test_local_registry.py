"""The SQLite registry: numbering, round-trip of every field, approval changes, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.errors import CIError


def arn(group: str, version: int) -> str:
    return f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{group}/{version}"


def test_round_trip_numbering_and_approval(tmp_path: Path) -> None:
    journal: list[tuple] = []
    registry = SqliteRegistry(tmp_path / "r.sqlite", arn, lambda *a, **k: journal.append(a))
    first = registry.register(
        "churn",
        model_data_url="s3://b/m1/model.tar.gz",
        image_uri="img:1",
        metrics={"auc": 0.91},
        hyperparameters={"C": "1.0"},
        baseline_uri="s3://b/baseline.csv",
        description="run 1",
    )
    registry.register("other", model_data_url="s3://b/o/model.tar.gz", image_uri="img:o")
    second = registry.register("churn", model_data_url="s3://b/m2/model.tar.gz", image_uri="img:2")

    assert (first.version, second.version) == (1, 2)
    # A second connection (another CLI call) sees the same world.
    again = SqliteRegistry(tmp_path / "r.sqlite", arn)
    assert [v.version for v in again.list_versions("churn")] == [2, 1]
    got = again.get_version("churn", 1)
    assert got == first
    assert got.metrics == {"auc": 0.91} and got.hyperparameters == {"C": "1.0"}
    assert got.baseline_uri == "s3://b/baseline.csv" and got.arn == arn("churn", 1)
    assert got.approval_status == "PendingManualApproval" and got.created

    approved = again.set_approval("churn", 1, "Approved", "merge of PR #3")
    assert approved.approval_status == "Approved"
    assert registry.get_version("churn", 1).approval_description == "merge of PR #3"
    assert [a[0] for a in journal] == ["CreateModelPackage"] * 3
    assert again.get_version("churn", 9) is None


def test_bad_status_and_unknown_version_are_refused(tmp_path: Path) -> None:
    registry = SqliteRegistry(tmp_path / "r.sqlite", arn)
    registry.register("churn", model_data_url="s3://b/m/model.tar.gz", image_uri="img")
    with pytest.raises(CIError, match="approval status 'Maybe' is not one of"):
        registry.set_approval("churn", 1, "Maybe", "")
    with pytest.raises(CIError, match="churn/4: model package not found"):
        registry.set_approval("churn", 4, "Approved", "")
    assert registry.get_version("churn", 1).approval_status == "PendingManualApproval"
