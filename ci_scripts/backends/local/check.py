"""What the local data quality and model quality checks share.

Both (local_monitoring.py, local_model_quality.py) run now what a Model Monitor execution would
run on its schedule: they find the version ``env`` serves, read the requests the local router
captured for it, and write their reports where an execution of the schedule would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ci_scripts.backends.base import EndpointState
from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.backends.local.state import LocalState
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


class LocalCheck:
    """The served version, its captured requests and the report folder of one environment."""

    def __init__(self, project: ProjectConfig, state: LocalState, registry: SqliteRegistry) -> None:
        self.project = project
        self.state = state
        self.registry = registry

    def served_version_number(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> int:
        """The version ``env``'s endpoint serves, else the one its manifest names."""
        number = (endpoint.model_version if endpoint else None) or manifest.get("model_version")
        if not number:
            raise CIError(
                f"endpoint {self.project.endpoint_name(env)}: nothing deployed; nothing to monitor"
            )
        return int(number)

    def _captured_lines(self, env: str, version: int) -> list[str]:
        folder = self.state.capture_dir(env) / f"version-{version}"
        lines: list[str] = []
        for file in sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []:
            lines.extend(file.read_text(encoding="utf-8", errors="replace").splitlines())
        return lines

    def _report_uri(self, report_prefix: str, env: str, schedule: str, now: datetime) -> str:
        """``<report_prefix>/<endpoint>/<schedule>/YYYY/MM/DD/HH``: an execution's folder."""
        return "/".join(
            [report_prefix, self.project.endpoint_name(env), schedule, now.strftime("%Y/%m/%d/%H")]
        )
