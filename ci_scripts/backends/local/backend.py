"""The local backend: the whole GitOps loop on one machine, no AWS account, no Docker engine.

The parts live in small modules; this class binds them to one project and its ``.mlops`` state:

- registry: SQLite (``local_registry``), the fields the aws backend reads from SageMaker;
- pipelines: the real definition from ``pipelines/pipeline.py`` (``local_definition``),
  interpreted step by step (``local_pipeline``, ``local_steps``) with step caching
  (``local_cache``), the step code running as subprocesses under /opt/ml conventions;
- endpoints: the real serve code on loopback behind a per-environment router
  (``local_endpoints``, ``local_router``, ``local_processes``);
- images: there is no image store: steps and servers run the source tree itself, so every image
  tag "exists" (``image_exists`` is always True; the code that runs is the working tree's).

The calls that only hand over to the registry or the endpoints (``invoke``) come from
``composed.ComposedBackend``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ci_scripts.backends.base import (
    BatchRun,
    EndpointState,
    ModelVersion,
    MonitoringResult,
    PipelineRun,
)
from ci_scripts.backends.composed import ComposedBackend
from ci_scripts.backends.local.batch import LocalBatch
from ci_scripts.backends.local.endpoints import LocalEndpoints
from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.backends.local.state import LocalState
from ci_scripts.batch import is_batch
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

if TYPE_CHECKING:
    # Imported where a pipeline runs: status, deploy and the other commands that only read the
    # registry and the endpoints never pay for the step runner (steps, tuning, caching, warm).
    from ci_scripts.backends.local.pipeline import LocalPipelineRunner
    from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy

NO_CACHE_ENV = "CI_SCRIPTS_LOCAL_NO_CACHE"


class LocalBackend(ComposedBackend):
    """Backend on this machine; state in ``<repo>/.mlops``."""

    name = "local"

    def __init__(self, project: ProjectConfig, *, use_cache: bool | None = None) -> None:
        self.project = project
        self.state = LocalState(project.root)
        self.registry = SqliteRegistry(
            self.state.registry_db,
            lambda group, version: project.model_package_arn(version, group),
            self.state.journal,
        )
        self.endpoints = LocalEndpoints(project, self.state)
        self.batch = LocalBatch(project, self.state, self.endpoints, self.registry)
        if use_cache is None:
            use_cache = os.environ.get(NO_CACHE_ENV, "") in ("", "0", "false")
        self.use_cache = use_cache
        self.last_run_definition_cached: bool | None = None

    # -- Registry: list_versions, get_version, set_approval (ComposedBackend) ---------------

    # -- PipelineRunner ---------------------------------------------------------------------
    def run_pipeline(
        self, parameters: dict[str, Any] | None = None, wait: bool = False
    ) -> PipelineRun:
        """Build (or reuse) the real definition and run it to the end.

        Local runs are always synchronous, so ``wait`` changes nothing: the returned run is
        Succeeded or Failed (the command turns Failed into a one-line error naming the step).
        """
        from ci_scripts.backends.local.definition import (
            cache_monitoring_definition,
            load_definition,
        )

        definition, cached = load_definition(self.project, self.state)
        self.last_run_definition_cached = cached
        if not cached:  # the SDK is loaded now: the monitoring definition costs little more
            cache_monitoring_definition(self.project, self.state)
        return self.run_definition(definition, parameters)

    def run_definition(
        self, definition: dict[str, Any], parameters: dict[str, Any] | None = None
    ) -> PipelineRun:
        """Run any definition (tests use small synthetic ones) against this project's state."""
        from ci_scripts.backends.local.definition import SHIPPED_DATASET, upload_shipped_dataset

        overrides = dict(parameters or {})
        shipped = upload_shipped_dataset(self.project, self.state, definition, overrides)
        origins = {shipped: SHIPPED_DATASET.as_posix()} if shipped else {}
        return self.runner().run(definition, overrides, origins=origins)

    def runner(self) -> LocalPipelineRunner:
        from ci_scripts.backends.local.pipeline import LocalPipelineRunner

        p = self.project
        return LocalPipelineRunner(
            self.state,
            self.registry,
            package=p.package,
            pipeline_name=p.pipeline_name,
            region=p.region,
            account=p.accounts["dev"],
            use_cache=self.use_cache,
        )

    # -- EndpointHost -----------------------------------------------------------------------
    def describe_endpoint(self, env: str) -> EndpointState | None:
        """The endpoint of ``env``, or its batch job when ``env`` is deployed as batch."""
        return self.batch.describe(env) or self.endpoints.describe(env)

    def deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        if version.group != self.project.model_package_group:
            raise CIError(
                f"{version.arn}: belongs to group {version.group!r}, not "
                f"{self.project.model_package_group!r}"
            )
        if is_batch(manifest):
            return self.batch.deploy(env, manifest, version)
        return self.endpoints.deploy(env, manifest, version)

    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        if self.batch.record(env) is not None:
            raise CIError(
                f"batch {self.project.batch_pipeline_name(env)}: {env} is a batch deployment, "
                f"there is no endpoint to invoke; run `ci_scripts batch-run --env {env}`"
            )
        return super().invoke(env, body, content_type, inference_id)

    # -- BatchHost (local.batch) ------------------------------------------------------------
    def run_batch(
        self,
        env: str,
        manifest: dict[str, Any],
        *,
        input_uri: str | None = None,
        output_uri: str | None = None,
        wait: bool = True,
    ) -> BatchRun:
        """Score the batch now; local runs are always synchronous (``wait`` changes nothing)."""
        return self.batch.run(env, manifest, input_uri=input_uri, output_uri=output_uri)

    def last_batch_run(self, env: str) -> BatchRun | None:
        return self.batch.last_run(env)

    def preflight(self, env: str) -> None:
        """Nothing to check: the local world has no accounts or credentials."""

    def shadow_test(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, policy: ShadowPolicy
    ) -> ShadowMeasurement:
        """The router mirrors ``env``'s requests to ``version``'s server (local_shadow)."""
        return self.endpoints.shadow_test(env, manifest, version, policy)

    def record_shadow(self, env: str, record: str) -> None:
        self.endpoints.record_shadow(env, record)

    def release_shadow(self, env: str) -> None:
        """Stop the candidate's server the shadow test kept for the deploy, if it is unused."""
        self.endpoints.release_shadow(env)

    # -- ImageStore -------------------------------------------------------------------------
    def image_exists(self, tag: str) -> bool:
        """Always True: local steps and servers run the source tree, there is nothing to build."""
        return True

    # -- monitoring -------------------------------------------------------------------------
    def monitoring_result(self, env: str, manifest: dict[str, Any]) -> MonitoringResult:
        """Run ``env``'s monitoring pipeline now (no scheduler here) and read its drift check;
        ``html_report`` is the page's path on disk."""
        from ci_scripts.backends.local.monitoring import LocalMonitor

        monitor = LocalMonitor(self.project, self.state, self.registry)
        result = monitor.data_result(env, manifest, self.endpoints.describe(env))
        result.html_report = monitor.local_path(result.html_report)
        return result

    def model_quality_result(self, env: str, manifest: dict[str, Any]) -> Any:
        """Run ``env``'s monitoring pipeline now and read its model quality check."""
        from ci_scripts.backends.local.monitoring import LocalMonitor

        monitor = LocalMonitor(self.project, self.state, self.registry)
        result = monitor.quality_result(env, manifest, self.endpoints.describe(env))
        result.html_report = monitor.local_path(result.html_report)
        return result

    def write_object(self, uri: str, body: bytes) -> None:
        """Write ``body`` at ``s3://bucket/key`` (the ``.mlops/s3`` tree): ground-truth uploads."""
        path = self.state.s3_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        self.state.journal("PutObject", uri)

    # -- Teardown (local.teardown) ----------------------------------------------------------
    def teardown_plan(self, env: str, manifest: dict[str, Any]) -> list[str]:
        from ci_scripts.backends.local.teardown import LocalTeardown

        return LocalTeardown(self.endpoints).plan(env) + self.batch.plan(env)

    def teardown(self, env: str, manifest: dict[str, Any]) -> list[str]:
        """Stop ``env``'s router and servers and forget its endpoint (no schedules locally:
        monitoring runs on demand)."""
        from ci_scripts.backends.local.teardown import LocalTeardown

        return LocalTeardown(self.endpoints).destroy(env) + self.batch.destroy(env)

    def prune(self, env: str, keep_versions: set[int]) -> list[str]:
        from ci_scripts.backends.local.teardown import LocalTeardown

        return LocalTeardown(self.endpoints).prune(keep_versions | self.batch.versions_in_use())

    # -- local only -------------------------------------------------------------------------
    def down(self) -> list[dict[str, Any]]:
        """Stop every local process (routers, model servers); return those that ran."""
        return self.endpoints.down()
