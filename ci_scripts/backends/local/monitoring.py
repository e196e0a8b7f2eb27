"""The monitor on this machine: the monitoring pipeline run through the local interpreter.

There is no scheduler locally, so ``monitor`` (and ``monitor --quality``) runs the environment's
monitoring pipeline now: the definition the aws backend upserts (ci_scripts.pipelines.monitoring),
with the same parameters EventBridge Scheduler sends there (ci_scripts.monitoring.parameters),
through :class:`LocalPipelineRunner`, so the monitor step code runs as a subprocess under
/opt/ml conventions like every other step. What the local router captured for the served
version (``.mlops/datacapture/<env>/version-<n>/``) is first put where an endpoint's capture
lands in S3 (the local s3 tree, under the capture prefix), as SageMaker's capture would have.
Then the newest run's summary.json is read exactly as on aws.
"""

from __future__ import annotations

import shutil
from typing import Any

from ci_scripts import model_quality as mq
from ci_scripts import monitoring
from ci_scripts.backends.base import EndpointState, ModelVersion, MonitoringResult
from ci_scripts.backends.local.definition import load_definition
from ci_scripts.backends.local.pipeline import LocalPipelineRunner
from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.backends.local.state import LocalState, read_json
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig


class LocalMonitor:
    """Runs one environment's monitoring pipeline now and reads what it wrote."""

    def __init__(self, project: ProjectConfig, state: LocalState, registry: SqliteRegistry) -> None:
        self.project = project
        self.state = state
        self.registry = registry

    def served_version(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> ModelVersion:
        """The version ``env``'s endpoint serves, else the one its manifest names."""
        number = (endpoint.model_version if endpoint else None) or manifest.get("model_version")
        if not number:
            raise CIError(
                f"endpoint {self.project.endpoint_name(env)}: nothing deployed; nothing to monitor"
            )
        version = self.registry.get_version(self.project.model_package_group, int(number))
        if version is None:
            raise CIError(
                f"{self.project.model_package_arn(int(number))}: not in the local registry; "
                "cannot read its baseline"
            )
        return version

    def run(self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None) -> None:
        """One run of ``<project>-<env>-monitor`` (Failed: a CIError naming the step)."""
        version = self.served_version(env, manifest, endpoint)
        capture_url = self._publish_captures(env, version.version)
        for uri in monitoring.seed_uris(self.project, env):
            path = self.state.s3_path(uri)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
        overrides = monitoring.parameters(
            self.project,
            env,
            manifest,
            version,
            since=None,  # local captures are kept per version already
            publish_metrics=False,  # no CloudWatch here: metrics.json holds the datums
            capture_url=capture_url,
        )
        definition, _ = load_definition(self.project, self.state, monitoring.MONITORING_MODULE)
        runner = LocalPipelineRunner(
            self.state,
            self.registry,
            package=self.project.package,
            pipeline_name=monitoring.pipeline_name(self.project, env),
            region=self.project.region,
            account=self.project.accounts[env],
            use_cache=False,
        )
        execution = runner.run(definition, overrides)
        if execution.status != "Succeeded":
            raise CIError(
                f"monitoring pipeline {monitoring.pipeline_name(self.project, env)} execution "
                f"{execution.id} {execution.status}: {execution.failure_reason}"
            )

    def _publish_captures(self, env: str, version: int) -> str:
        """Copy the router's captures of ``version`` to the capture prefix; return that URI."""
        uri = f"{monitoring.capture_prefix(self.project, env)}/version-{version}/"
        source = self.state.capture_dir(env) / f"version-{version}"
        target = self.state.s3_path(uri)
        target.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        return uri

    def newest_summary(self, env: str, section: str) -> tuple[dict[str, Any] | None, str]:
        """(summary, folder) of the newest run whose ``section`` checked something, else of the
        newest run at all (its NoData says why)."""
        prefix = monitoring.runs_prefix(self.project, env)
        folder = self.state.s3_path(prefix)
        runs = sorted(
            (path.stat().st_mtime, path.parent.name)
            for path in (folder.glob(f"*/{monitoring.SUMMARY_FILE}") if folder.is_dir() else [])
        )
        newest: tuple[dict[str, Any] | None, str] = (None, prefix)
        for _, run in reversed(runs):
            uri = f"{prefix}/{run}"
            summary = read_json(self.state.s3_path(f"{uri}/{monitoring.SUMMARY_FILE}"))
            if newest[0] is None:
                newest = (summary, uri)
            if (summary.get(section) or {}).get("status", "NoData") != "NoData":
                return summary, uri
        return newest

    def data_result(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> MonitoringResult:
        self.run(env, manifest, endpoint)
        summary, folder = self.newest_summary(env, "data_quality")
        return monitoring.data_result(self.project, env, summary, folder)

    def quality_result(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> mq.QualityResult:
        self.run(env, manifest, endpoint)
        summary, folder = self.newest_summary(env, "model_quality")
        return monitoring.quality_result(self.project, env, summary, folder)

    def local_path(self, uri: str) -> str:
        """Where an s3:// report of the local tree is on disk (printed for a person to open)."""
        return str(self.state.s3_path(uri)) if uri else ""
