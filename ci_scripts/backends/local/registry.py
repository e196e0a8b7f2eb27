"""The local model registry: one SQLite file with the fields SageMaker's Model Registry keeps.

SQLite because separate CLI calls (and two deploys at once) must agree on version numbers and
approval status without a server: a ``BEGIN IMMEDIATE`` transaction numbers versions safely.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.backends.base import APPROVAL_STATUSES, ModelVersion, training_metadata
from ci_scripts.errors import CIError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_packages (
    group_name           TEXT    NOT NULL,
    version              INTEGER NOT NULL,
    arn                  TEXT    NOT NULL,
    approval_status      TEXT    NOT NULL,
    approval_description TEXT    NOT NULL DEFAULT '',
    description          TEXT    NOT NULL DEFAULT '',
    model_data_url       TEXT    NOT NULL,
    image_uri            TEXT    NOT NULL,
    metrics              TEXT    NOT NULL DEFAULT '{}',
    hyperparameters      TEXT    NOT NULL DEFAULT '{}',
    baseline_uri         TEXT,
    metadata             TEXT    NOT NULL DEFAULT '{}',
    reports              TEXT    NOT NULL DEFAULT '{}',
    checks               TEXT    NOT NULL DEFAULT '{}',
    created              TEXT    NOT NULL,
    PRIMARY KEY (group_name, version)
)
"""

_COLUMNS = (
    "group_name, version, arn, approval_status, approval_description, description,"
    " model_data_url, image_uri, metrics, hyperparameters, baseline_uri, created, reports, checks,"
    " metadata"
)
# Columns added after the first release; a registry made before them gains them on open.
_ADDED_COLUMNS = {"reports": "TEXT NOT NULL DEFAULT '{}'", "checks": "TEXT NOT NULL DEFAULT '{}'"}


class SqliteRegistry:
    """Model packages of every group, numbered 1, 2, ... per group like SageMaker does."""

    def __init__(
        self,
        path: Path,
        arn_for: Callable[[str, int], str],
        journal: Callable[..., None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._arn_for = arn_for
        self._journal = journal or (lambda *args, **kwargs: None)
        with self._connect() as db:
            db.execute(_SCHEMA)
            present = {row[1] for row in db.execute("PRAGMA table_info(model_packages)")}
            for column, spec in _ADDED_COLUMNS.items():
                if column not in present:
                    db.execute(f"ALTER TABLE model_packages ADD COLUMN {column} {spec}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; a damaged file ("database disk image is malformed", "file is not a
        database", a column that is not JSON) is one CIError naming the file, on every call."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise CIError(f"{self.path}: the local registry cannot be opened ({exc})") from exc
        try:
            yield db
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise CIError(f"{self.path}: the local registry is busy ({exc}); retry") from exc
            raise self._damaged(str(exc)) from exc
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise self._damaged(str(exc)) from exc
        finally:
            db.close()

    def _damaged(self, reason: str) -> CIError:
        return CIError(
            f"{self.path}: the local registry is damaged ({reason}); move it aside to keep it, "
            "or run `ci_scripts local reset` to start a new local world (registry, runs, caches)"
        )

    # -- reads ------------------------------------------------------------------------------
    def list_versions(self, group: str) -> list[ModelVersion]:
        """All versions of ``group``, newest first."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM model_packages WHERE group_name = ? ORDER BY version DESC",
                (group,),
            ).fetchall()
            return [_row_to_version(row) for row in rows]

    def get_version(self, group: str, version: int) -> ModelVersion | None:
        """One version, or None when it does not exist (also for numbers SQLite cannot hold:
        versions are 64-bit integers, so 2**63 names no version rather than an OverflowError)."""
        if not -(2**63) <= int(version) < 2**63:
            return None
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM model_packages WHERE group_name = ? AND version = ?",
                (group, int(version)),
            ).fetchone()
            return _row_to_version(row) if row else None

    def with_trials(self, version: ModelVersion) -> ModelVersion:
        """The Tune step wrote the trials into the version's metadata when it registered it."""
        return version

    def with_checks(self, version: ModelVersion) -> ModelVersion:
        """The record holds the reports' summaries already (read from local files)."""
        return version

    # -- writes -----------------------------------------------------------------------------
    def register(
        self,
        group: str,
        *,
        model_data_url: str,
        image_uri: str,
        approval_status: str = "PendingManualApproval",
        metrics: dict[str, float] | None = None,
        hyperparameters: dict[str, str] | None = None,
        baseline_uri: str | None = None,
        description: str = "",
        metadata: dict[str, str] | None = None,
        reports: dict[str, str] | None = None,
        checks: dict[str, dict[str, Any]] | None = None,
    ) -> ModelVersion:
        """Create the next version of ``group`` (what CreateModelPackage does)."""
        _check_status(approval_status, f"model package group {group}")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                (latest,) = db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM model_packages WHERE group_name = ?",
                    (group,),
                ).fetchone()
                version = latest + 1
                db.execute(
                    "INSERT INTO model_packages (group_name, version, arn, approval_status,"
                    " description, model_data_url, image_uri, metrics, hyperparameters,"
                    " baseline_uri, metadata, created, reports, checks)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        group,
                        version,
                        self._arn_for(group, version),
                        approval_status,
                        description,
                        model_data_url,
                        image_uri,
                        json.dumps(metrics or {}, sort_keys=True),
                        json.dumps(hyperparameters or {}, sort_keys=True),
                        baseline_uri,
                        json.dumps(metadata or {}, sort_keys=True),
                        created,
                        json.dumps(reports or {}, sort_keys=True),
                        json.dumps(checks or {}, sort_keys=True),
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        found = self.get_version(group, version)
        assert found is not None
        self._journal("CreateModelPackage", found.arn, approval_status=approval_status)
        return found

    def annotate(self, group: str, version: int, **metadata: str) -> None:
        """Add ``metadata`` to a version's CustomerMetadataProperties (e.g. its MLflow run)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT metadata FROM model_packages WHERE group_name = ? AND version = ?",
                (group, int(version)),
            ).fetchone()
            if row is None:
                raise CIError(f"{self._arn_for(group, version)}: not in the local registry")
            merged = {**json.loads(row[0] or "{}"), **metadata}
            db.execute(
                "UPDATE model_packages SET metadata = ? WHERE group_name = ? AND version = ?",
                (json.dumps(merged, sort_keys=True), group, int(version)),
            )

    def set_approval(self, group: str, version: int, status: str, description: str) -> ModelVersion:
        """Change the approval status; an unknown version or status is a CIError."""
        arn = self._arn_for(group, version)
        _check_status(status, arn)
        if self.get_version(group, version) is None:
            raise CIError(f"{arn}: model package not found in the local registry")
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE model_packages SET approval_status = ?, approval_description = ?"
                " WHERE group_name = ? AND version = ?",
                (status, description, group, int(version)),
            )
        if cursor.rowcount == 0:
            raise CIError(f"{arn}: model package not found in the local registry")
        self._journal("UpdateModelPackage", arn, approval_status=status, description=description)
        found = self.get_version(group, version)
        assert found is not None
        return found


def _check_status(status: str, resource: str) -> None:
    if status not in APPROVAL_STATUSES:
        raise CIError(
            f"{resource}: approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}"
        )


def _row_to_version(row: tuple) -> ModelVersion:
    (
        group,
        version,
        arn,
        status,
        approval_desc,
        desc,
        url,
        image,
        metrics,
        hps,
        baseline,
        created,
        reports,
        checks,
        metadata,
    ) = row
    return ModelVersion(
        group=group,
        version=version,
        arn=arn,
        approval_status=status,
        model_data_url=url,
        image_uri=image,
        metrics=json.loads(metrics),
        hyperparameters=json.loads(hps),
        baseline_uri=baseline,
        description=desc,
        created=created,
        approval_description=approval_desc,
        reports=json.loads(reports or "{}"),
        checks=json.loads(checks or "{}"),
        training=training_metadata(json.loads(metadata or "{}")),
    )
