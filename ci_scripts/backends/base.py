"""The narrow interface every backend implements, and the records that cross it.

Commands (validate, deploy, promote...) hold all the GitOps rules and talk only to this interface,
so the same contract tests run against the aws backend (on moto) and the local backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


@dataclass
class ModelVersion:
    """One model package in the registry, with what a reviewer needs to judge it."""

    group: str
    version: int
    arn: str
    approval_status: str
    model_data_url: str
    image_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    baseline_uri: str | None = None
    description: str = ""
    created: str = ""
    approval_description: str = ""
    # Reports attached to the package (ci_scripts.model_reports): kind -> S3 URI, and the short
    # summary of each (bias metrics, top features, baseline shape) that proposals show.
    reports: dict[str, str] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # How it was trained (CustomerMetadataProperties, :func:`training_metadata`): the tuning job,
    # its best trial and objective, the trials (JSON, best first) and the MLflow run.
    training: dict[str, str] = field(default_factory=dict)


@dataclass
class EndpointState:
    """What runs in one environment right now."""

    name: str
    status: str  # InService, Creating, Updating, Failed, RollingBack, ...
    model_version: int | None
    url: str = ""
    failure_reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineRun:
    """One pipeline execution."""

    id: str
    status: str  # Executing, Succeeded, Failed, Stopped
    failure_reason: str = ""
    registered_version: int | None = None
    # One dict per step, in run order: {"name", "status", "failure_reason"} (+ backend extras).
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MonitoringResult:
    """The latest data drift check of one environment's captured traffic (the monitor's
    summary.json, ci_scripts.monitoring).

    ``violations`` are the monitor's data quality violations (``feature_name``,
    ``constraint_check_type``, ``description``), the same on both backends; ``schedule`` names
    the monitoring pipeline; ``report_uri`` is the run's report folder, ``html_report`` its page.
    """

    env: str
    schedule: str
    status: str  # Completed, CompletedWithViolations, NoData
    report_uri: str = ""
    html_report: str = ""
    checked_at: str = ""
    failure_reason: str = ""
    model_version: int | None = None
    rows: int | None = None
    violations: list[dict[str, str]] = field(default_factory=list)


@dataclass
class BatchRun:
    """One batch scoring run of one environment (``endpoint.type: batch``).

    ``input_uri``/``output_uri`` are the S3 prefixes it read and wrote (``.mlops/s3`` locally);
    ``rows`` counts the rows scored (None while it runs, or when the backend cannot tell).
    """

    env: str
    id: str
    status: str  # Executing, Succeeded, Failed, Stopped
    model_version: int | None
    input_uri: str
    output_uri: str
    failure_reason: str = ""
    started: str = ""
    ended: str = ""
    rows: int | None = None


class Registry(Protocol):
    """Model registry: SageMaker Model Registry on aws, SQLite on local."""

    def list_versions(self, group: str) -> list[ModelVersion]:
        """All versions of ``group``, newest first.

        May return summaries (version, arn, approval status, created) without metrics or
        hyperparameters; commands call ``get_version`` for the full record.
        """

    def get_version(self, group: str, version: int) -> ModelVersion | None:
        """One version, or None when it does not exist."""

    def set_approval(self, group: str, version: int, status: str, description: str) -> ModelVersion:
        """Change the approval status (the merge of a manifest PR is the approval)."""

    def with_trials(self, version: ModelVersion) -> ModelVersion:
        """``version`` with ``training["trials"]``: every trial of the tuning job that trained
        it, best first (``[{job, status, objective, hyperparameters}]`` as JSON). Unchanged when
        it was not tuned or the record already holds them (the local registry always does)."""

    def with_checks(self, version: ModelVersion) -> ModelVersion:
        """``version`` with ``checks``: the summaries of the reports attached to it (bias,
        explainability, data statistics), which proposals show. ``get_version`` may leave them
        out (each is a read a deploy does not need); the local registry always holds them."""


class PipelineRunner(Protocol):
    """Upserts and runs the training pipeline built by pipelines/pipeline.py."""

    def run_pipeline(
        self, parameters: dict[str, Any] | None = None, wait: bool = False
    ) -> PipelineRun:
        """Upsert the pipeline definition and start it; with ``wait`` block until it ends."""


class EndpointHost(Protocol):
    """Hosts one endpoint per environment."""

    def describe_endpoint(self, env: str) -> EndpointState | None:
        """The running state of ``env``'s endpoint, None when there is none."""

    def deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        """Make ``env`` serve ``version`` as ``manifest`` says; a no-op when it already does.

        ``manifest`` is the effective manifest (schema defaults filled in) plus one key outside
        the schema, ``"_source": {"commit": sha, "pull_request": n | None}``, naming the change
        that asked for this deploy (for tags); it must not count as a difference.
        """

    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        """Send one request to ``env``'s endpoint; return (status, body).

        ``inference_id`` goes with the request as SageMaker's ``InferenceId`` and is recorded in
        the data capture (``eventMetadata.inferenceId``): the key ground-truth labels are
        joined on (ci_scripts.model_quality).
        """

    def preflight(self, env: str) -> None:
        """Raise CIError when this backend cannot deploy ``env`` at all (for example credentials
        of another AWS account); deploy calls it before its first change."""


class ShadowHost(Protocol):
    """Shadow tests before prod switches (ci_scripts.shadow judges what these measure)."""

    def shadow_test(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, policy: ShadowPolicy
    ) -> ShadowMeasurement:
        """Run ``version`` as a shadow of what ``env`` serves (a copy of every request, the
        live answer is the one callers get) for the policy's window, measure both variants,
        and put the endpoint back as it was, also on failure or interruption."""

    def release_shadow(self, env: str) -> None:
        """Free what a finished shadow test kept for the deploy that follows it (local: the
        candidate's running server); a no-op when the deploy took it or nothing was kept."""

    def record_shadow(self, env: str, record: str) -> None:
        """Keep ``record`` (ShadowReport.record) as ``env``'s last shadow result; the
        endpoint reports it back as ``EndpointState.config["shadow"]`` (``status`` shows it)."""


class BatchHost(Protocol):
    """Runs one environment's batch scoring (``endpoint.type: batch``).

    For a batch manifest the EndpointHost methods keep the GitOps commands unchanged:
    ``deploy`` makes ``env``'s batch job score with the version (a no-op when nothing changed),
    ``describe_endpoint`` reports the batch job (``name`` the batch pipeline, ``status``
    InService, or Failed with the last run's reason; ``config["type"] == "batch"`` and
    ``config["last_run"]``), and ``invoke`` raises CIError (there is no endpoint).
    """

    def run_batch(
        self,
        env: str,
        manifest: dict[str, Any],
        *,
        input_uri: str | None = None,
        output_uri: str | None = None,
        wait: bool = True,
    ) -> BatchRun:
        """Score ``input_uri`` (default the manifest's ``batch.input_prefix``) into
        ``output_uri`` (default ``batch.output_prefix``) with the version ``env`` runs now.

        Every input file is checked (``<package>.batch_check``) before anything is scored, so a
        bad file writes nothing to the output prefix; the run is recorded either way, so
        ``last_batch_run`` and ``status`` see it.
        """

    def last_batch_run(self, env: str) -> BatchRun | None:
        """The newest run (scheduled or not); status shows it, a Failed one with its reason."""


class ImageStore(Protocol):
    """Where the one container image lives (ECR on aws)."""

    def image_exists(self, tag: str) -> bool:
        """True when the image with ``tag`` is already pushed."""


class Monitoring(Protocol):
    """What the monitor found for one environment (``monitor`` and ``monitor --quality``).

    aws reads the newest run the schedule made; local runs the monitoring pipeline through its
    interpreter first (there is no scheduler), then reads that run. Both read the same files.
    """

    def monitoring_result(self, env: str, manifest: dict[str, Any]) -> MonitoringResult:
        """The latest data drift check of ``env``'s captured traffic."""

    def model_quality_result(self, env: str, manifest: dict[str, Any]) -> Any:
        """The latest model quality check of ``env`` (a ``ci_scripts.model_quality``
        QualityResult): captured predictions joined with ground truth."""


class ObjectStore(Protocol):
    """Writes objects where the environment's data lives (S3 on aws, ``.mlops/s3`` locally)."""

    def write_object(self, uri: str, body: bytes) -> None:
        """Put ``body`` at ``uri`` (ground-truth uploads)."""


class Teardown(Protocol):
    """The end of what an environment runs: ``destroy --env E`` and pruning after deploys."""

    def teardown_plan(self, env: str, manifest: dict[str, Any]) -> list[str]:
        """What ``teardown`` would remove, one line per resource (reads only; [] when nothing)."""

    def teardown(self, env: str, manifest: dict[str, Any]) -> list[str]:
        """Remove everything ``env`` runs (endpoint, configs, models, alarms, autoscaling,
        monitoring); idempotent. Returns what was removed. ``manifest`` is the effective one
        (its endpoint type says which kinds of resource can exist)."""

    def prune(self, env: str, keep_versions: set[int]) -> list[str]:
        """Delete what earlier deploys of ``env`` left behind for versions outside
        ``keep_versions`` (never what serves now); what was deleted."""


class Backend(
    Registry,
    PipelineRunner,
    EndpointHost,
    ShadowHost,
    BatchHost,
    ImageStore,
    Monitoring,
    ObjectStore,
    Teardown,
    Protocol,
):
    """Everything a command may ask of the outside world."""

    name: str


# CustomerMetadataProperties keys the training pipeline writes about tuning and tracking.
TRAINING_KEYS = (
    "tuning_job",
    "best_training_job",
    "tuning_objective",
    "best_objective",
    "tuning_trials",
    "trials",
    "mlflow_run",
)


def training_metadata(properties: dict[str, Any]) -> dict[str, str]:
    """The tuning and tracking facts of a package's metadata (both registries read them)."""
    return {k: str(properties[k]) for k in TRAINING_KEYS if properties.get(k)}
