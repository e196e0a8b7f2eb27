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


def _registry_with_two(path: Path) -> SqliteRegistry:
    registry = SqliteRegistry(path, arn)
    for n in (1, 2):
        registry.register("churn", model_data_url=f"s3://b/m{n}/model.tar.gz", image_uri="img")
    return registry


@pytest.mark.parametrize("damage", ["not a database", "truncated", "metrics not JSON"])
def test_a_damaged_registry_is_one_line_naming_the_file(tmp_path: Path, damage: str) -> None:
    import sqlite3

    path = tmp_path / "registry.sqlite"
    _registry_with_two(path)
    if damage == "not a database":
        path.write_bytes(b"this is not sqlite" * 100)
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE model_packages SET metrics = '{auc: 0.9' WHERE version = 2")

    with pytest.raises(CIError) as caught:
        registry = SqliteRegistry(path, arn)  # every command opens the registry first
        registry.list_versions("churn")
        registry.get_version("churn", 2)

    message = str(caught.value)
    assert message.startswith(f"{path}: the local registry is damaged (")
    assert "`ci_scripts local reset`" in message and "\n" not in message


def test_a_version_beyond_64_bits_names_no_version(tmp_path: Path) -> None:
    registry = _registry_with_two(tmp_path / "r.sqlite")

    assert registry.get_version("churn", 9223372036854775808) is None
    with pytest.raises(CIError, match="not found in the local registry"):
        registry.set_approval("churn", 2**63, "Approved", "too big")


def test_a_copied_repo_serves_its_own_copy_of_a_versions_code(tmp_path: Path) -> None:
    """code.json names the kept code relative to .mlops/: a repo copied with its state (as
    ``scripts.demo --from-loop`` copies one) serves the copy's code, not the original's."""
    import shutil

    from ci_scripts.backends.local.state import LocalState, keep_code, served_code

    original = tmp_path / "original"
    (original / "src" / "pkg").mkdir(parents=True)
    (original / "src" / "pkg" / "model.py").write_text("WHERE = 'v1'\n")
    keep_code(LocalState(original), original / "src", "a" * 64, "churn", 1)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)  # the original's code is gone: only the copy's can be served

    served = served_code(LocalState(copy), "churn", 1, default=copy / "src")
    assert served.is_relative_to(copy / ".mlops"), served
    assert (served / "pkg" / "model.py").read_text() == "WHERE = 'v1'\n"
