"""The aws backend: SageMaker Model Registry, Pipelines and endpoints, and ECR, through boto3.

Each part lives in its own module (registry, pipeline, endpoints, guardrails, monitoring);
this class only binds them to one project and one boto3 session. The calls that only hand over
to the registry or the endpoints (``invoke``) come from ``composed.ComposedBackend``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from ci_scripts.backends.aws.batch import AwsBatchHost
from ci_scripts.backends.aws.endpoints import AwsEndpointHost
from ci_scripts.backends.aws.errors import describe_aws_error, error_code
from ci_scripts.backends.aws.pipeline import AwsPipelineRunner
from ci_scripts.backends.aws.registry import AwsRegistry
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.base import (
    BatchRun,
    EndpointState,
    ModelVersion,
    MonitoringResult,
    PipelineRun,
)
from ci_scripts.backends.composed import ComposedBackend
from ci_scripts.batch import is_batch
from ci_scripts.errors import CIError
from ci_scripts.manifest import spec
from ci_scripts.project import ProjectConfig

if TYPE_CHECKING:
    from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy


def _realtime(manifest: dict[str, Any]) -> bool:
    kind = spec(manifest).endpoint.type
    return kind is None or kind == "realtime"  # not said: look for autoscaling too (teardown)


class AwsBackend(ComposedBackend):
    """Backend on AWS. ``waiter_delay`` (seconds between polls) and ``shadow_wait`` (how the
    shadow window is waited out) exist for tests on moto."""

    name = "aws"

    def __init__(
        self,
        project: ProjectConfig,
        session: boto3.session.Session | None = None,
        waiter_delay: float | None = None,
        shadow_wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.project = project
        self.clients = AwsClients(project.region, session)
        self.registry = AwsRegistry(project, self.clients)
        self.pipelines = AwsPipelineRunner(project, self.clients, waiter_delay)
        self.endpoints = AwsEndpointHost(project, self.clients, waiter_delay)
        self.shadow_wait = shadow_wait  # the shadow window (tests pass one that does not sleep)
        self.batch = AwsBatchHost(project, self.clients, self.endpoints, waiter_delay)
        self._prepared: dict[tuple[str, int, str], tuple[Any, Any]] = {}

    @property
    def _batch_project(self) -> bool:
        """deployment=batch: each environment runs a batch pipeline, never an endpoint."""
        return self.project.deployment == "batch"

    # Registry: list_versions, get_version, set_approval (ComposedBackend)

    # PipelineRunner
    def run_pipeline(
        self, parameters: dict[str, Any] | None = None, wait: bool = False
    ) -> PipelineRun:
        return self.pipelines.run_pipeline(parameters, wait)

    # EndpointHost
    def describe_endpoint(self, env: str) -> EndpointState | None:
        if self._batch_project:
            return self.batch.describe_endpoint(env)
        return self.endpoints.describe_endpoint(env)

    def _monitor_prepared(
        self, env: str, manifest: dict[str, Any], version: ModelVersion
    ) -> tuple[Any, Any]:
        """The monitor and its checked plan (aws.upserts.PipelinePlan: the definition built only
        when its inputs changed) for ``version`` in ``env``, made once per deploy: the check
        must come before the deploy's first change, and a shadow test is one."""
        from ci_scripts.backends.aws.monitoring import AwsMonitor

        settings = {k: v for k, v in manifest.items() if k != "_source"}  # not a setting
        key = (env, version.version, json.dumps(settings, sort_keys=True, default=str))
        if key not in self._prepared:
            monitor = AwsMonitor(self.project, self.clients)
            self._prepared[key] = (monitor, monitor.prepare(env, manifest, version))
        return self._prepared[key]

    def deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        from ci_scripts.backends.aws.progress import DeployProgress
        from ci_scripts.interrupts import termination_interrupts

        monitor, definition = self._monitor_prepared(env, manifest, version)
        if definition is not None:  # read with the endpoint's rollback alarms: one call
            from ci_scripts.monitoring import alarm_names

            self.clients.expect_alarms(alarm_names(self.project, env).values())
        progress = DeployProgress(env)
        try:
            # A cancelled job (SIGINT, then SIGTERM) stops here as Ctrl-C does: the except/finally
            # blocks run, and the rerun finds the change and repairs its record (aws.endpoints).
            with termination_interrupts("deploy"):
                if is_batch(manifest):  # the monitor reads the batch pipeline's capture records
                    state = self.batch.deploy(env, manifest, version, progress)
                else:
                    state = self.endpoints.deploy(env, manifest, version, progress)
                if self.project.monitoring:  # the monitor follows the served version
                    noun = "batch pipeline" if is_batch(manifest) else "endpoint"
                    progress.reached(
                        f"{noun} {state.name} serves version {version.version}; its monitor is "
                        f"being brought in line with version {version.version}",
                        "rerun deploy to finish",
                    )
                    monitor.sync(env, manifest, version, definition)
        except KeyboardInterrupt as exc:
            # One line says what the deploy left (aws.progress); the CLI prints it, exits 130.
            raise progress.interrupted(exc) from None
        finally:
            # The plan holds the monitoring pipeline as it was before this deploy wrote it.
            self._prepared.clear()
            self.clients.expect_alarms(())
        return state

    def shadow_test(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, policy: ShadowPolicy
    ) -> ShadowMeasurement:
        """The candidate as a SageMaker shadow variant of ``env``'s endpoint (aws.shadow)."""
        from ci_scripts.backends.aws.shadow import AwsShadowTest

        self._monitor_prepared(env, manifest, version)  # a CIError here changes nothing
        return AwsShadowTest(self.endpoints, self.shadow_wait).run(env, manifest, version, policy)

    def record_shadow(self, env: str, record: str) -> None:
        from ci_scripts.backends.aws.shadow import AwsShadowTest

        AwsShadowTest(self.endpoints).record(env, record)

    def release_shadow(self, env: str) -> None:
        """Nothing to release: the shadow variant is gone once the test ends (aws.shadow)."""

    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        if self._batch_project:
            raise CIError(
                f"{env}: deployment=batch has no endpoint to invoke; "
                f"score files with batch-run --env {env}"
            )
        return self.endpoints.invoke(env, body, content_type, inference_id)

    # BatchHost (aws.batch)
    def run_batch(
        self,
        env: str,
        manifest: dict[str, Any],
        *,
        input_uri: str | None = None,
        output_uri: str | None = None,
        wait: bool = True,
    ) -> BatchRun:
        return self.batch.run_batch(
            env, manifest, input_uri=input_uri, output_uri=output_uri, wait=wait
        )

    def last_batch_run(self, env: str) -> BatchRun | None:
        return self.batch.last_batch_run(env)

    def preflight(self, env: str) -> None:
        """Refuse before any change when the credentials are not ``env``'s account's."""
        self.endpoints.require_account(env)

    # Teardown (aws.teardown)
    def teardown_plan(self, env: str, manifest: dict[str, Any]) -> list[str]:
        if is_batch(manifest):
            found = [f"monitoring {name}" for name in self.monitoring_resources(env)]
            return found + self.batch.inventory(env)
        return self._teardown().inventory(env, _realtime(manifest)).lines()

    def teardown(self, env: str, manifest: dict[str, Any]) -> list[str]:
        if is_batch(manifest):  # refuses a running batch before removing anything
            removed = self.batch.destroy(env)
            return self.remove_monitoring(env) + removed
        return self._teardown().destroy(env, _realtime(manifest))

    def prune(self, env: str, keep_versions: set[int]) -> list[str]:
        if self._batch_project:
            return self.batch.prune(env, keep_versions)
        return self._teardown().prune(env, keep_versions)

    def _teardown(self) -> Any:
        from ci_scripts.backends.aws.teardown import AwsTeardown

        return AwsTeardown(self.endpoints, monitoring=self)

    def monitoring_resources(self, env: str) -> list[str]:
        """The monitor's schedule, pipeline and alarms for ``env`` (destroy removes them)."""
        if not self.project.monitoring:
            return []
        from ci_scripts.backends.aws.monitoring import AwsMonitor

        return AwsMonitor(self.project, self.clients).resources(env)

    def remove_monitoring(self, env: str) -> list[str]:
        """Delete the monitor of ``env`` (destroy); what was removed."""
        if not self.project.monitoring:
            return []
        from ci_scripts.backends.aws.monitoring import AwsMonitor

        return AwsMonitor(self.project, self.clients).remove(env)

    # Monitoring
    def monitoring_result(self, env: str, manifest: dict[str, Any]) -> MonitoringResult:
        """What the newest run of ``env``'s monitoring pipeline found about data drift."""
        from ci_scripts.backends.aws.monitoring import AwsMonitor

        return AwsMonitor(self.project, self.clients).data_result(env)

    def model_quality_result(self, env: str, manifest: dict[str, Any]) -> Any:
        """What the newest run of ``env``'s monitoring pipeline found about model quality."""
        from ci_scripts.backends.aws.monitoring import AwsMonitor

        return AwsMonitor(self.project, self.clients).quality_result(env)

    def write_object(self, uri: str, body: bytes) -> None:
        """Put ``body`` at ``uri`` (ground-truth uploads into an environment's capture bucket)."""
        from ci_scripts.backends.aws.registry import split_s3_uri

        bucket, key = split_s3_uri(uri)
        try:
            self.clients("s3").put_object(Bucket=bucket, Key=key, Body=body)
        except ClientError as exc:
            raise CIError(describe_aws_error(exc, f"S3 object {uri}")) from exc

    # ImageStore
    def image_exists(self, tag: str) -> bool:
        """The image lives in the dev account's ECR repository, tagged by its inputs' hash."""
        repository = self.project.ecr_repository
        try:
            self.clients("ecr").describe_images(
                registryId=self.project.accounts["dev"],
                repositoryName=repository,
                imageIds=[{"imageTag": tag}],
            )
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return False
            raise CIError(describe_aws_error(exc, f"ECR repository {repository}")) from exc
        return True

    def image_uri(self, tag: str) -> str:
        p = self.project
        return f"{p.accounts['dev']}.dkr.ecr.{p.region}.amazonaws.com/{p.ecr_repository}:{tag}"
