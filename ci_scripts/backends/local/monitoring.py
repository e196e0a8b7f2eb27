"""Model Monitor on this machine: check the requests an endpoint captured against the baseline.

The local router writes data capture JSON lines under ``.mlops/datacapture/<env>/<variant>/``
(variant ``version-<n>``). A check reads the lines captured for the version ``env`` serves, loads
that version's data quality baseline from the registry (statistics.json + constraints.json, or
the baseline.csv of older versions, baselined on the fly), compares them with
:mod:`ci_scripts.data_quality` and writes Model Monitor's three report files where a monitoring
execution would (in the local s3 tree):
``s3://<bucket>/monitoring/<env>/reports/<endpoint>/<schedule>/YYYY/MM/DD/HH/``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts import data_quality as dq
from ci_scripts.backends.base import EndpointState, ModelVersion, MonitoringResult
from ci_scripts.backends.local.check import LocalCheck
from ci_scripts.errors import CIError

LABEL_COLUMN = "target"  # a baseline.csv with labels keeps them out of the feature statistics


class LocalMonitor(LocalCheck):
    """Runs a data quality check now (Model Monitor runs it on a schedule)."""

    def check(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> MonitoringResult:
        schedule = dq.schedule_name(self.project.project, env)
        version_number = self.served_version_number(env, manifest, endpoint)
        group = self.project.model_package_group
        version = self.registry.get_version(group, version_number)
        if version is None:
            raise CIError(
                f"{self.project.model_package_arn(version_number)}: not in the local "
                "registry; cannot read its baseline"
            )
        stats, constraints = self.baseline(version)
        settings = manifest.get("monitoring") or {}
        lines = list(self._captured_lines(env, version.version))
        now = datetime.now(UTC)
        result = MonitoringResult(
            env=env,
            schedule=schedule,
            status="NoData",
            checked_at=now.isoformat(timespec="seconds"),
            model_version=version.version,
            rows=0,
        )
        if not lines:
            result.failure_reason = (
                f"no requests captured for version {version.version} under "
                f"{self.state.capture_dir(env)}"
            )
            return result
        columns = [f["name"] for f in stats.get("features", [])]
        data = dq.captured_dataset(dq.captured_records(lines), columns)
        if not data.values.shape[0]:
            result.failure_reason = "captured lines hold no request rows"
            return result
        checked = dq.check(
            data,
            stats,
            constraints,
            drift_threshold=settings.get("drift_threshold"),
            significance=float(settings.get("significance", dq.DEFAULT_SIGNIFICANCE)),
        )
        report_uri = self._report_uri(
            dq.report_prefix(self.project.artifact_bucket, env), env, schedule, now
        )
        dq.write_reports(self.state.s3_path(report_uri), checked)
        self.state.journal("MonitoringExecution", schedule, report=report_uri)
        result.status = "CompletedWithViolations" if checked.violations else "Completed"
        result.report_uri = report_uri
        result.rows = checked.rows
        result.violations = checked.violations
        return result

    def baseline(self, version: ModelVersion) -> tuple[dict[str, Any], dict[str, Any]]:
        """statistics.json and constraints.json of ``version``'s data quality baseline."""
        uri = version.baseline_uri
        if not uri:
            raise CIError(f"{version.arn}: no data quality baseline recorded in the registry")
        path = self.state.s3_path(uri)
        folder = path if path.is_dir() else path.parent
        try:
            if path.suffix == ".csv" or (path.is_dir() and (folder / "baseline.csv").is_file()):
                csv_path = path if path.suffix == ".csv" else folder / "baseline.csv"
                stats = dq.statistics(dq.read_csv(csv_path, drop=(LABEL_COLUMN,)))
                return stats, dq.constraints(stats)
            stats = _read_json(folder / dq.STATISTICS_FILE)
            constraints_path = folder / dq.CONSTRAINTS_FILE
            constraints = (
                _read_json(constraints_path)
                if constraints_path.is_file()
                else dq.constraints(stats)
            )
        except (OSError, ValueError) as exc:
            raise CIError(f"{version.arn}: baseline {uri}: cannot read: {exc}") from None
        return stats, constraints


def _read_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return document
