"""SageMaker endpoints as the EndpointHost interface: one endpoint per environment.

A deploy builds the desired endpoint config from the manifest and the model package, names it
after the version and a hash of its content, and compares that hash with the tag on the config
the endpoint runs: equal means nothing to do, and nothing is called but reads. Otherwise it
creates the model and config (reusing them when they exist from an earlier attempt), creates or
updates the endpoint (blue/green, see aws_guardrails), and waits with the EndpointInService
waiter; a failure surfaces the endpoint's FailureReason. Each step is recorded as it happens
(aws.progress), so an interrupted deploy says what it left.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from ci_scripts import canary, manifest_rules
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, is_not_found
from ci_scripts.backends.aws.guardrails import (
    VARIANT,
    EndpointAlarms,
    EndpointScaling,
    deployment_config,
    desired_scaling,
)
from ci_scripts.backends.aws.progress import DONE, DeployProgress
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.base import EndpointState, ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.manifest import spec
from ci_scripts.project import ProjectConfig

TAG = "sagemaker-gitops:"
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
MAX_NAME = 63
# botocore's EndpointInService waiter polls every 30 s: 80 polls are 40 minutes per wait. A deploy
# job may wait twice (its deploy, then a rollback's), and 2 x 40 minutes fit its 90-minute
# timeout and the 5400 s credentials it assumes (deploy.yml, infra/bootstrap.yml).
ENDPOINT_WAIT_ATTEMPTS = 80


@dataclass
class DesiredEndpoint:
    """Everything a deploy creates, derived from (env, manifest, version) alone."""

    env: str
    endpoint_name: str
    resource_name: str  # the model and the endpoint config share it
    config_hash: str
    version: ModelVersion
    variant: dict[str, Any]
    data_capture: dict[str, Any] | None
    tags: list[dict[str, str]] = field(default_factory=list)
    kms_key_id: str | None = None  # the ML storage volume's key (instance-backed variants only)

    def config_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {
            "EndpointConfigName": self.resource_name,
            "ProductionVariants": [{**self.variant, "ModelName": self.resource_name}],
            "Tags": self.tags,
        }
        if self.data_capture:
            request["DataCaptureConfig"] = self.data_capture
        if self.kms_key_id:
            request["KmsKeyId"] = self.kms_key_id
        return request


def production_variant(manifest: dict[str, Any]) -> dict[str, Any]:
    endpoint = spec(manifest).endpoint
    if endpoint.type == "serverless":
        return {
            "VariantName": VARIANT,
            "ServerlessConfig": {
                "MemorySizeInMB": endpoint.serverless.memory_size_mb,
                "MaxConcurrency": endpoint.serverless.max_concurrency,
            },
        }
    return {
        "VariantName": VARIANT,
        "InstanceType": endpoint.instance_type,
        "InitialInstanceCount": endpoint.initial_instance_count,
        "InitialVariantWeight": 1.0,
    }


def data_capture_config(
    project: ProjectConfig, env: str, manifest: dict[str, Any]
) -> dict[str, Any] | None:
    """Capture requests and responses to s3://<capture bucket>/datacapture/<env> (realtime):
    the serving account's own bucket, replicated into dev (ProjectConfig.capture_bucket)."""
    view = spec(manifest)
    if not view.data_capture.enabled or view.endpoint.type == "serverless":
        return None  # SageMaker serverless endpoints do not support data capture
    config: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": view.data_capture.sampling_percentage,
        "DestinationS3Uri": f"s3://{project.capture_bucket(env)}/datacapture/{env}",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    }
    if project.kms_key_id:
        config["KmsKeyId"] = project.kms_key_id  # captures written under the project key
    return config


def volume_kms_key(project: ProjectConfig, variant: dict[str, Any]) -> str | None:
    """The endpoint config's KmsKeyId: the project key, for instance-backed variants.

    Serverless variants have no ML storage volume to encrypt, and instance types with local
    instance storage (NVMe: ml.g4dn, ml.g5, ml.p3dn, the ``d`` families, ...: aws_facts.json
    ``instance_store``) are refused with a KmsKeyId: their instance store is encrypted in
    hardware (CreateEndpointConfig, KmsKeyId:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html).
    """
    if "ServerlessConfig" in variant:
        return None
    return manifest_rules.volume_kms_key(project.kms_key_id, variant.get("InstanceType", ""))


def desired_endpoint(
    project: ProjectConfig, env: str, manifest: dict[str, Any], version: ModelVersion
) -> DesiredEndpoint:
    variant = production_variant(manifest)
    capture = data_capture_config(project, env, manifest)
    kms_key_id = volume_kms_key(project, variant)
    content: dict[str, Any] = {
        "model_package": version.arn,
        "variant": variant,
        "data_capture": capture,
    }
    if kms_key_id:  # only when set, so configs deployed before KMS keep their hash
        content["kms_key_id"] = kms_key_id
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    endpoint_name = project.endpoint_name(env)
    source = manifest.get("_source") or {}
    tags = {
        "project": project.project,
        "environment": env,
        "model-version": str(version.version),
        "model-package": version.arn,
        "config-hash": digest,
        "git-commit": str(source.get("commit") or "unknown"),
    }
    # Always set, so a deploy without a PR overwrites the endpoint's tag of an earlier one.
    tags["pull-request"] = str(source.get("pull_request") or "none")
    return DesiredEndpoint(
        env=env,
        endpoint_name=endpoint_name,
        resource_name=resource_name(endpoint_name, version.version, digest),
        config_hash=digest,
        version=version,
        variant=variant,
        data_capture=capture,
        tags=[{"Key": TAG + k, "Value": v} for k, v in tags.items()],
        kms_key_id=kms_key_id,
    )


def _serving(name: str, current: EndpointState | None) -> str:
    """What ``name`` serves before a deploy changes it (the start of an interrupt's line)."""
    if current is None:
        return f"endpoint {name} does not exist yet"
    if current.status == "Failed":
        return f"endpoint {name} is Failed and serves nothing"
    return f"endpoint {name} serves version {current.model_version or 'unknown'}"


def _tagged(current: EndpointState | None) -> str:
    """The version the endpoint's own tags name (stale after an interrupted deploy)."""
    recorded = (current.config.get("recorded") or {}) if current else {}
    return recorded.get("model-version") or "unknown"


def resource_name(endpoint_name: str, version: int | str, digest: str) -> str:
    """The model and endpoint config of ``version`` with content hash ``digest``: named by
    what they hold, so a name says which version and settings a config serves."""
    suffix = f"-v{version}-{digest}"
    return endpoint_name[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def _current_instances(described: dict[str, Any]) -> int | None:
    """DescribeEndpoint's CurrentInstanceCount of the one variant (None: serverless/unknown)."""
    variants = described.get("ProductionVariants") or [{}]
    count = variants[0].get("CurrentInstanceCount")
    return int(count) if count else None


def config_settings(described: dict[str, Any]) -> dict[str, Any]:
    """What a DescribeEndpointConfig answer sets, keyed by the manifest's JSON paths.

    The inverse of ``production_variant`` and ``data_capture_config``: only what the manifest
    can set (serverless endpoints have no data capture, so none is reported for them).
    """
    variant = (described.get("ProductionVariants") or [{}])[0]
    serverless = variant.get("ServerlessConfig")
    if serverless:
        return {
            "endpoint.type": "serverless",
            "endpoint.serverless.memory_size_mb": serverless.get("MemorySizeInMB"),
            "endpoint.serverless.max_concurrency": serverless.get("MaxConcurrency"),
        }
    capture = described.get("DataCaptureConfig") or {}
    enabled = bool(capture.get("EnableCapture"))
    settings: dict[str, Any] = {
        "endpoint.type": "realtime",
        "endpoint.instance_type": variant.get("InstanceType"),
        "endpoint.initial_instance_count": variant.get("InitialInstanceCount"),
        "data_capture.enabled": enabled,
    }
    if enabled:
        settings["data_capture.sampling_percentage"] = capture.get("InitialSamplingPercentage")
    return settings


@cache
def _stock_waiters() -> dict[str, Any]:
    """botocore's SageMaker waiter model, read once per process: reading it makes a botocore
    session and a loader each time (~0.1 s of CPU per wait), and it never changes while we run.
    Callers copy it before changing it."""
    loader = botocore.session.get_session().get_component("data_loader")
    return loader.load_service_model("sagemaker", "waiters-2")


def in_service_waiter(sagemaker: Any) -> Any:
    """botocore's own EndpointInService waiter, failing fast on UpdateRollbackFailed too.

    The stock waiter fails only on Failed; an update whose automatic rollback failed would
    otherwise be polled until MaxAttempts (40 minutes) before the deploy could say why.
    """
    model = copy.deepcopy(_stock_waiters())
    config = model["waiters"]["EndpointInService"]
    config["acceptors"].append(
        {
            "matcher": "path",
            "argument": "EndpointStatus",
            "expected": "UpdateRollbackFailed",
            "state": "failure",
        }
    )
    return create_waiter_with_client("EndpointInService", WaiterModel(model), sagemaker)


log = logging.getLogger(__name__)


class AwsEndpointHost:
    def __init__(
        self,
        project: ProjectConfig,
        clients: AwsClients,
        waiter_delay: float | None = None,
        waiter_max_attempts: int = ENDPOINT_WAIT_ATTEMPTS,
    ) -> None:
        self.project = project
        self.clients = clients
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        # env -> (writes made when read, state): deploy reuses the command's own describe
        # when nothing was written since (SageMaker's Describe* limits are low).
        self._read: dict[str, tuple[int, EndpointState | None]] = {}
        self._arns: dict[str, str] = {}  # endpoint name -> ARN, as DescribeEndpoint said

    # -- accounts ---------------------------------------------------------------------------
    def _single_account(self) -> bool:
        return len(set(self.project.accounts.values())) == 1

    def _reader(self, env: str) -> AwsClients:
        """Clients that can read ``env``'s endpoint.

        Ours, unless ``env`` lives in another account (prod's deploy checks staging): then
        that environment's read-only role, which infra/bootstrap.yml lets prod's deploy role
        assume. One account for everything needs no STS call at all.
        """
        account = self.project.accounts[env]
        if self._single_account() or self.clients.account() == account:
            return self.clients
        prefix = self.project.extra.get("github_role_prefix") or f"{self.project.project}-github"
        role = f"arn:aws:iam::{account}:role/{prefix}-readonly-{env}"
        return self.clients.as_role(role, f"ci-scripts-read-{env}")

    def require_account(self, env: str) -> None:
        """Deploy only with credentials of ``env``'s own account (never prod into dev)."""
        if self._single_account():
            return
        expected, actual = self.project.accounts[env], self.clients.account()
        if actual != expected:
            raise CIError(
                f"deploy --env {env}: the AWS credentials are for account {actual}, but {env} "
                f"lives in account {expected} ([tool.sagemaker-gitops.accounts].{env})"
            )

    # -- reads ------------------------------------------------------------------------------
    def _describe(self, name: str, clients: AwsClients | None = None) -> dict[str, Any] | None:
        try:
            described = (clients or self.clients)("sagemaker").describe_endpoint(EndpointName=name)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, f"endpoint {name}")) from exc
        if clients is None or clients is self.clients:
            self._arns[name] = described["EndpointArn"]
        return described

    def _config(
        self,
        config_name: str,
        clients: AwsClients,
        endpoint_name: str,
        endpoint_tags: dict[str, str],
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The endpoint config's ``sagemaker-gitops:`` tags and the settings it sets.

        The config's tags are written once, when it is created, from what its name says
        (:func:`resource_name`: version and content hash). When the endpoint's own tags name
        exactly this config, they are what the config's would say and its ListTags is not
        made (#27: one read less on every describe); else (an interrupted deploy's stale
        endpoint tags, a shadow test's config) the config's tags are read."""
        sagemaker = clients("sagemaker")
        try:
            described = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        except ClientError as exc:
            if is_not_found(exc):
                return {}, {}  # deleted by hand: the running version is unknown
            raise CIError(describe_aws_error(exc, f"endpoint config {config_name}")) from exc
        version, digest = endpoint_tags.get("model-version"), endpoint_tags.get("config-hash")
        if version and digest and resource_name(endpoint_name, version, digest) == config_name:
            return endpoint_tags, config_settings(described)
        with aws_errors(f"endpoint config {config_name}"):
            tags = sagemaker.list_tags(ResourceArn=described["EndpointConfigArn"]).get("Tags", [])
        ours = {t["Key"][len(TAG) :]: t["Value"] for t in tags if t["Key"].startswith(TAG)}
        return ours, config_settings(described)

    def _scaling_settings(self, name: str, clients: AwsClients) -> dict[str, Any]:
        """Autoscaling bounds under the manifest's paths; none when they cannot be read (a role
        without application-autoscaling:Describe*: status then leaves them uncompared)."""
        try:
            bounds = EndpointScaling(clients, name).current() or {}
        except CIError:
            return {}
        return {
            f"endpoint.autoscaling.{key}": bounds.get(key)
            for key in ("min_capacity", "max_capacity", "target_invocations_per_instance")
        }

    def _state(self, described: dict[str, Any], clients: AwsClients) -> EndpointState:
        name = described["EndpointName"]
        config_name = described.get("EndpointConfigName", "")
        endpoint_tags = self._endpoint_tags(described, clients)
        tags, settings = (
            self._config(config_name, clients, name, endpoint_tags) if config_name else ({}, {})
        )
        # Autoscaling is read with our own credentials only: the read-only role another
        # account's deploy assumes (infra/bootstrap.yml) may read the endpoint, not its scaling.
        if settings.get("endpoint.type") == "realtime" and clients is self.clients:
            settings.update(self._scaling_settings(name, clients))
        version = tags.get("model-version")
        previous = endpoint_tags.get("previous-model-version", "")
        return EndpointState(
            name=name,
            status=described.get("EndpointStatus", "Unknown"),
            model_version=int(version) if version and version.isdigit() else None,
            url=(
                f"https://runtime.sagemaker.{self.project.region}.amazonaws.com"
                f"/endpoints/{name}/invocations"
            ),
            failure_reason=described.get("FailureReason", "") or "",
            config={
                "endpoint_config": config_name,
                "config_hash": tags.get("config-hash"),
                "model_package": tags.get("model-package"),
                "git_commit": tags.get("git-commit"),
                # What served before the last deploy (smoke-test --rollback-on-failure).
                "previous_version": int(previous) if previous.isdigit() else None,
                # The fleet the endpoint really has (autoscaling may have moved it).
                "instance_count": _current_instances(described),
                # What the endpoint runs, keyed by manifest JSON path (status compares them).
                "settings": settings,
                # The last shadow test's result (aws.shadow tags it on the endpoint).
                "shadow": endpoint_tags.get("shadow-result"),
                # What the endpoint's own tags say it serves (stale after an interrupted deploy).
                "recorded": {k: endpoint_tags.get(k, "") for k in ("model-version", "config-hash")},
            },
        )

    def _endpoint_tags(self, described: dict[str, Any], clients: AwsClients) -> dict[str, str]:
        arn = described.get("EndpointArn")
        if not arn:
            return {}
        with aws_errors(f"endpoint {described['EndpointName']}"):
            tags = clients("sagemaker").list_tags(ResourceArn=arn).get("Tags", [])
        return {t["Key"][len(TAG) :]: t["Value"] for t in tags if t["Key"].startswith(TAG)}

    def describe_endpoint(self, env: str) -> EndpointState | None:
        clients = self._reader(env)
        described = self._describe(self.project.endpoint_name(env), clients)
        state = self._state(described, clients) if described else None
        if clients is self.clients:
            self._read[env] = (self.clients.writes, copy.deepcopy(state))
        return state

    def _described_now(self, env: str) -> EndpointState | None:
        """``env``'s endpoint: as read last, when no write came since (one describe a command:
        deploy follows the command's own read), else read again."""
        writes, state = self._read.pop(env, (-1, None))
        if writes == self.clients.writes:
            return state
        return self.describe_endpoint(env)

    @staticmethod
    def _known_scaling(state: EndpointState) -> Any:
        """The autoscaling bounds ``state`` read (None: no scalable target), or ``...`` when
        it could not read them."""
        settings = state.config.get("settings") or {}
        keys = ("min_capacity", "max_capacity", "target_invocations_per_instance")
        values = [settings.get(f"endpoint.autoscaling.{k}", ...) for k in keys]
        if any(v is ... for v in values):
            return ...
        if all(v is None for v in values):
            return None
        return dict(zip(keys, values, strict=True))

    # -- deploy -----------------------------------------------------------------------------
    def deploy(
        self,
        env: str,
        manifest: dict[str, Any],
        version: ModelVersion,
        progress: DeployProgress | None = None,
    ) -> EndpointState:
        """Make ``env``'s endpoint serve ``version`` as ``manifest`` says; every step is
        recorded in ``progress`` (what an interrupt at that point leaves)."""
        progress = progress or DeployProgress(env)
        self.require_account(env)
        desired = desired_endpoint(self.project, env, manifest, version)
        name = desired.endpoint_name
        scaling = EndpointScaling(self.clients, name, tags=desired.tags)
        alarms = EndpointAlarms(self.clients)
        current = self._described_now(env)
        self._read.pop(env, None)  # what follows may change it
        progress.start(_serving(name, current))
        wanted = f"version {version.version}"
        if (
            current is not None
            and current.status == "InService"
            and current.config.get("config_hash") == desired.config_hash
        ):
            progress.reached(
                f"endpoint {name} serves {wanted} as the manifest asks; its autoscaling, alarms "
                "and tags were being checked (only what differs is written)",
                "rerun deploy to finish",
            )
            # Reads only when they already match: the same manifest makes no mutating call.
            scaling.apply(desired_scaling(manifest), known=self._known_scaling(current))
            alarms.ensure(name, manifest)
            return self._repair_record(desired, current)
        if current is not None and current.status in IN_PROGRESS:
            raise CIError(
                f"endpoint {name}: status is {current.status}; another deployment is in progress"
            )
        self._ensure_model(desired, env, progress)
        self._ensure_config(desired, progress)
        rollout = canary.manifest_plan(manifest)
        sagemaker = self.clients("sagemaker")
        set_alarms = progress.preparing("PutMetricAlarm", "its rollback alarms are set")
        stale = f"its tags still name version {_tagged(current)}"
        known: Any = ...  # autoscaling as this command read it (``...``: to be read)
        scaling_kept: bool | None = False
        with aws_errors(f"endpoint {name}"):
            if current is not None and current.status == "Failed":
                # A Failed endpoint cannot be updated; it serves nothing, so replace it.
                with progress.sending(
                    "DeleteEndpoint",
                    f"endpoint {name} (Failed) is being deleted (DeleteEndpoint sent)",
                    f"once it is gone, rerun deploy to create it with {wanted}",
                ):
                    sagemaker.delete_endpoint(EndpointName=name)
                self._wait("endpoint_deleted", name)
                progress.reached(
                    f"endpoint {name} (Failed) was deleted; nothing serves {env}",
                    f"rerun deploy to create it with {wanted}",
                )
                current = None
            if current is None:
                with set_alarms:
                    alarms.ensure(name, manifest, desired.tags)  # ready for the first update
                with progress.sending(
                    "CreateEndpoint",
                    f"endpoint {name} is being created with {wanted} (CreateEndpoint sent)",
                    "once it is InService, rerun deploy to finish (it applies autoscaling)",
                ):
                    sagemaker.create_endpoint(
                        EndpointName=name,
                        EndpointConfigName=desired.resource_name,
                        Tags=desired.tags,
                    )
            else:
                known = self._known_scaling(current)  # not read again
                scaling_kept = self._prepare_update(scaling, current, desired, progress, known)
                if scaling_kept is False:
                    stale += "; its autoscaling is lifted until the deploy is done"
                with set_alarms:
                    alarm_names = alarms.ensure(name, manifest, desired.tags)
                # With RetainAllVariantProperties the new fleet is as big as the running one.
                fleet = current.config.get("instance_count") if scaling_kept else None
                rollout = canary.manifest_plan(manifest, fleet)
                request: dict[str, Any] = {
                    "EndpointName": name,
                    "EndpointConfigName": desired.resource_name,
                    "DeploymentConfig": deployment_config(manifest, alarm_names, fleet),
                }
                if scaling_kept:
                    # Autoscaling owns the instance count: the new fleet starts at the size the
                    # old one scaled to, not InitialInstanceCount. Capture follows the manifest.
                    request["RetainAllVariantProperties"] = True
                    request["ExcludeRetainedVariantProperties"] = [
                        {"VariantPropertyType": "DataCaptureConfig"}
                    ]
                with progress.sending(
                    "UpdateEndpoint",
                    f"endpoint {name} is updating to {wanted} (UpdateEndpoint sent); {stale}",
                    "once it is InService, rerun deploy to repair the record (or to retry the "
                    "update, if it rolled back)",
                ):
                    sagemaker.update_endpoint(**request)
        self._wait_in_service(desired, previous=current)
        unscaled = "its autoscaling is not applied yet"
        if current is not None:
            progress.reached(
                f"endpoint {name} serves {wanted}; {stale}", "rerun deploy to repair the record"
            )
            with progress.sending(
                "AddTags",
                f"endpoint {name} serves {wanted} and its tags name it; {unscaled}",
                "rerun deploy to apply it",
            ):
                self._tag_endpoint(desired, current)
        else:
            progress.reached(
                f"endpoint {name} serves {wanted}; {unscaled}", "rerun deploy to apply it"
            )
        # A target kept through the update (RetainAllVariantProperties) is as it was read; one
        # lifted or never there is none: either way nothing to read again.
        after = known if scaling_kept else (... if current is None else None)
        scaling.apply(desired_scaling(manifest), known=after)
        progress.reached(f"endpoint {name} serves {wanted} as the manifest asks", DONE)
        state = self.describe_endpoint(env)
        if state is None:
            raise CIError(f"endpoint {name}: disappeared after deploying version {version.version}")
        if current is not None:  # a first deploy shifts no traffic
            state.config["rollout"] = rollout.describe()
        return state

    def _ensure_model(
        self, desired: DesiredEndpoint, env: str, progress: DeployProgress | None = None
    ) -> None:
        sagemaker = self.clients("sagemaker")
        name = desired.resource_name
        try:
            sagemaker.describe_model(ModelName=name)
            return  # made by an earlier attempt: same name means same content
        except ClientError as exc:
            if not is_not_found(exc):
                raise CIError(describe_aws_error(exc, f"model {name}")) from exc
        created = f"model {name} exists"
        with (
            aws_errors(f"model {name}"),
            progress.preparing("CreateModel", created) if progress else nullcontext(),
        ):
            sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=self.project.role_arn(env),
                PrimaryContainer={"ModelPackageName": desired.version.arn},
                Tags=desired.tags,
            )

    def _ensure_config(
        self, desired: DesiredEndpoint, progress: DeployProgress | None = None
    ) -> None:
        sagemaker = self.clients("sagemaker")
        name = desired.resource_name
        try:
            sagemaker.describe_endpoint_config(EndpointConfigName=name)
            return
        except ClientError as exc:
            if not is_not_found(exc):
                raise CIError(describe_aws_error(exc, f"endpoint config {name}")) from exc
        created = f"endpoint config {name} exists"
        with (
            aws_errors(f"endpoint config {name}"),
            progress.preparing("CreateEndpointConfig", created) if progress else nullcontext(),
        ):
            sagemaker.create_endpoint_config(**desired.config_request())

    def _prepare_update(
        self,
        scaling: EndpointScaling,
        current: EndpointState,
        desired: DesiredEndpoint,
        progress: DeployProgress,
        known: Any = ...,
    ) -> bool | None:
        """Lift autoscaling when the update changes the variant's instance type or drops its
        instances (serverless): SageMaker refuses such updates of a scalable target. The
        deploy re-registers it afterwards. True when autoscaling stays on during the update,
        False when it was lifted, None when there was none.
        ``known``: the bounds this command read (``...``: not read); the running config's
        instance type comes from ``current`` too when it was read (#27: describe once).
        """
        if (scaling.current() if known is ... else known) is None:
            return None
        config_name = current.config.get("endpoint_config")
        if not config_name:
            return True
        settings = current.config.get("settings") or {}
        if "endpoint.type" in settings:  # what config_settings read from the running config
            running = {"InstanceType": settings.get("endpoint.instance_type")}
        else:
            with aws_errors(f"endpoint config {config_name}"):
                running = self.clients("sagemaker").describe_endpoint_config(
                    EndpointConfigName=config_name
                )["ProductionVariants"][0]
        if running.get("InstanceType") != desired.variant.get("InstanceType"):
            with progress.preparing(
                "DeregisterScalableTarget",
                "its autoscaling is removed for the instance type change (the deploy registers "
                "it again once the update is done)",
            ):
                scaling.remove()
            return False
        return True

    def _repair_record(self, desired: DesiredEndpoint, current: EndpointState) -> EndpointState:
        """An update that finished after its deploy was interrupted left the endpoint's tags
        naming the version before: tag it as that deploy would have (what served before is
        what the stale tags name), so a restore puts back the right version."""
        recorded = current.config.get("recorded") or {}
        if recorded.get("config-hash") == desired.config_hash:
            return current
        version, digest = recorded.get("model-version", ""), recorded.get("config-hash", "")
        config = None
        if version.isdigit() and digest:
            config = resource_name(desired.endpoint_name, version, digest)
        before = EndpointState(
            name=desired.endpoint_name,
            status="InService",
            model_version=int(version) if version.isdigit() else None,
            url="",
            config={"endpoint_config": config},
        )
        self._tag_endpoint(desired, before)
        log.warning(
            "endpoint %s: its tags named version %s, it serves %s: tags repaired",
            desired.endpoint_name,
            version or "unknown",
            desired.version.version,
        )
        return current

    def _tag_endpoint(self, desired: DesiredEndpoint, previous: EndpointState) -> None:
        """The endpoint names what it serves now and what served before (for a quick restore)."""
        sagemaker = self.clients("sagemaker")
        name = desired.endpoint_name
        before = [
            ("previous-model-version", str(previous.model_version or "unknown")),
            ("previous-endpoint-config", str(previous.config.get("endpoint_config") or "unknown")),
        ]
        tags = desired.tags + [{"Key": TAG + k, "Value": v} for k, v in before]
        with aws_errors(f"endpoint {name}"):
            arn = (
                self._arns.get(name)
                or sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"]
            )
            sagemaker.add_tags(ResourceArn=arn, Tags=tags)

    def _waiter_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"MaxAttempts": self.waiter_max_attempts}
        if self.waiter_delay is not None:
            config["Delay"] = self.waiter_delay
        return config

    def _wait(self, waiter: str, name: str) -> None:
        sagemaker = self.clients("sagemaker")
        if waiter == "endpoint_in_service":
            found = in_service_waiter(sagemaker)
        else:
            found = sagemaker.get_waiter(waiter)
        found.wait(EndpointName=name, WaiterConfig=self._waiter_config())

    def _wait_in_service(self, desired: DesiredEndpoint, previous: EndpointState | None) -> None:
        """Wait for InService; name the FailureReason when it fails or the update rolls back."""
        name = desired.endpoint_name
        try:
            self._wait("endpoint_in_service", name)
        except WaiterError as exc:
            described = self._describe(name) or {}
            status = described.get("EndpointStatus", "gone")
            reason = described.get("FailureReason") or describe_aws_error(exc)
            raise CIError(
                f"endpoint {name}: deploying version {desired.version.version} failed "
                f"(status {status}): {reason}"
            ) from exc
        described = self._describe(name) or {}
        if described.get("EndpointConfigName") != desired.resource_name:
            was = f"version {previous.model_version}" if previous else "the previous config"
            reason = described.get("FailureReason") or "a rollback alarm fired during the rollout"
            raise CIError(
                f"endpoint {name}: update to version {desired.version.version} was rolled back "
                f"and it still serves {was}: {reason}"
            )

    # -- invoke -----------------------------------------------------------------------------
    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        name = self.project.endpoint_name(env)
        runtime = self.clients("sagemaker-runtime")
        extra = {"InferenceId": inference_id} if inference_id else {}
        try:
            response = runtime.invoke_endpoint(
                EndpointName=name,
                Body=body,
                ContentType=content_type,
                Accept="application/json",
                **extra,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ModelError":  # the container answered with an error
                status = int(exc.response.get("OriginalStatusCode") or 500)
                return status, str(
                    exc.response.get("OriginalMessage") or error.get("Message", "")
                ).encode()
            raise CIError(describe_aws_error(exc, f"endpoint {name}")) from exc
        return 200, response["Body"].read()
