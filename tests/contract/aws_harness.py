"""The aws backend on moto, as a BackendHarness.

moto (in-process ``mock_aws``) provides almost every call. Two it lacks are answered by botocore
``before-call`` hooks that update moto's own state, so later reads see the change:

- ``sagemaker:UpdateEndpoint`` (moto 5.2 has no update_endpoint): switch the endpoint to the new
  config, like a finished blue/green update (or, when a test sets ``rollback_reason``, keep the
  old config with that FailureReason, like an update an alarm rolled back).
- ``sagemaker:ListPipelineExecutionSteps`` (not implemented): answer the steps the test scripted.

- ``sagemaker:CreateEndpointConfig``/``DescribeEndpointConfig`` drop ``ShadowProductionVariants``:
  the harness keeps them per config and adds them to the description.
- ``cloudwatch:GetMetricData`` has no percentile statistics (p50, p99): the harness answers it
  from moto's own stored datapoints (Sum, Average, SampleCount, pNN by nearest rank).
- a shadow window has no traffic on moto: the backend's ``shadow_wait`` is the harness's, which
  publishes the window's metrics (put_metric_data) and writes both variants' data capture to S3
  as SageMaker would, as scripted by ``seed_shadow_candidate``.
moto runs no pipeline, so a batch pipeline's (``<project>-<env>-batch``) successful execution
does here what its Transform step does on AWS (ci_scripts.pipelines.batch): for each input file
under the run's InputUri, ``<OutputUri><key>.out`` with ``<id>,<transform_answer>`` per line.

moto's ListPipelineExecutions ignores SortBy/SortOrder/MaxResults (it lists in creation order);
SageMaker sorts (API_ListPipelineExecutions): the answer is sorted as asked after the call.

and two quirks are corrected: moto's UpdateModelPackage drops CustomerMetadataProperties it was
not sent (SageMaker keeps them), so they are restored after the call; its
DescribePipelineExecution never reports a FailureReason, so a scripted failure's is filled in.

Every call the backend makes is recorded through a ``before-call`` hook, so tests can assert that
an idempotent deploy or a refused one made no mutating call.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import botocore.loaders
import botocore.session
import moto.core.responses
import requests
from botocore.awsrequest import AWSResponse
from botocore.retries.bucket import TokenBucket
from gitops_testkit import (
    MOTO_ACCOUNT,
    REGION,
    BackendHarness,
    use_stub_platform_pipelines,
    write_model_repo,
)
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from ci_scripts.backends.aws.backend import AwsBackend
from ci_scripts.backends.base import ModelVersion
from ci_scripts.project import ProjectConfig


@functools.cache
def _method_names(clazz: type) -> frozenset[str]:
    return frozenset(name for name, _ in inspect.getmembers(clazz, inspect.isfunction))


# moto lists a response class's methods with inspect.getmembers on every request it answers
# (moto.core.responses.BaseResponse.call_action: a quarter of a millisecond each, thousands per
# test run); a class's methods do not change while it runs, so the list is made once per class.
moto.core.responses.method_names_from_class = _method_names

MUTATING = ("Create", "Update", "Delete", "Put", "Register", "Deregister", "Start", "Stop", "Add")
DEFAULT_METRICS = {"auc": 0.95, "accuracy": 0.91, "f1": 0.9, "precision": 0.89, "recall": 0.92}


_LOADER = botocore.loaders.create_loader()


def new_session() -> boto3.session.Session:
    """A session with its own hooks but a shared loader: service models are parsed once."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=REGION)


_ADMIN: dict[str, Any] = {}


def admin_client(service: str) -> Any:
    """Clients for the test's own calls (setup, seeding): not recorded, reused across tests
    (moto's interception is global, so a client made under one mock_aws works in the next)."""
    if service not in _ADMIN:
        _ADMIN[service] = new_session().client(service)
    return _ADMIN[service]


def _aware(when: datetime) -> datetime:
    """moto stores naive UTC timestamps; callers send aware ones."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "RetryAttempts": 0})
    return AWSResponse("https://moto.invalid", 200, {}, None), parsed


@dataclass
class RetryWaits:
    """What adaptive retries (ci_scripts/backends/aws/session.py) asked to wait, in seconds."""

    backoffs: list[float] = field(default_factory=list)  # before each retry of a throttled call
    paced: list[float] = field(default_factory=list)  # the rate limiter's, once a throttle set it


def record_retry_waits(monkeypatch: Any) -> RetryWaits:
    """Record instead of sleep the waits of adaptive retries: botocore's backoff before a retry
    and, once a throttle has turned it on, the client rate limiter's before each call. On moto
    they are only a core doing nothing (about 5 s for one throttled deploy)."""
    waits = RetryWaits()
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=waits.backoffs.append))
    monkeypatch.setattr(
        TokenBucket, "acquire", lambda self, amount=1, block=True: waits.paced.append(amount)
    )
    return waits


class AwsHarness(BackendHarness):
    name = "aws"
    scripted_invocations = True

    def __init__(self, root: Path, **answers: str) -> None:
        self.project = ProjectConfig.load(write_model_repo(root, **answers))
        self._sort: dict[str, Any] = {}
        self._started: dict[str, Any] = {}
        self.transform_answer = "1,0.8"  # what the fake transform appends to each id
        self.transform_answers: list[str] = []  # one per run first (then transform_answer)
        self.session = new_session()  # the backend's: every call it makes is recorded
        self.calls: list[str] = []
        self.update_requests: list[dict[str, Any]] = []
        self.pipeline_steps: list[dict[str, Any]] | None = None  # None: Succeeded, no steps
        self.pipeline_failure: str | None = None
        self.rollback_reason: str | None = None  # set: the next UpdateEndpoint rolls back
        events = self.session.events
        events.register_first("before-call", self._record)
        events.register("before-call.sagemaker.UpdateEndpoint", self._update_endpoint)
        events.register("before-call.sagemaker.ListPipelineExecutionSteps", self._pipeline_steps)
        events.register("after-call.sagemaker.StartPipelineExecution", self._script_execution)
        events.register("after-call.sagemaker.DescribePipelineExecution", self._failure_reason)
        events.register("before-call.sagemaker.ListPipelineExecutions", self._remember_sort)
        events.register(
            "before-parameter-build.sagemaker.StartPipelineExecution", self._remember_start
        )
        events.register("after-call.sagemaker.StartPipelineExecution", self._transform)
        events.register("after-call.sagemaker.ListPipelineExecutions", self._sort_executions)
        events.register("before-call.sagemaker.UpdateModelPackage", self._keep_metadata)
        events.register(
            "before-call.sagemaker.DescribeMonitoringSchedule", self._no_monitoring_schedule
        )
        events.register("before-call.sagemaker.CreateEndpointConfig", self._keep_shadow_variants)
        events.register("after-call.sagemaker.DescribeEndpointConfig", self._add_shadow_variants)
        events.register("before-parameter-build.cloudwatch.GetMetricData", self._stash_params)
        events.register("before-call.cloudwatch.GetMetricData", self._get_metric_data)
        self._metric_request: dict[str, Any] = {}
        self.shadow_variants: dict[str, list[dict[str, Any]]] = {}
        self.shadow_behaviour = "agrees"
        self.shadow_requests = 120  # requests prod gets during a shadow window
        self.shadow_configs_seen: list[str] = []  # configs the endpoint ran during windows
        self.backend = AwsBackend(
            self.project, session=self.session, waiter_delay=0, shadow_wait=self._shadow_window
        )
        self._setup_account()

    # -- account ----------------------------------------------------------------------------
    def _setup_account(self) -> None:
        """What infra/bootstrap.yml creates in the dev account."""
        p = self.project
        s3 = admin_client("s3")
        s3.create_bucket(
            Bucket=p.artifact_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        # ... and the serving stacks: a capture bucket per account that hosts an endpoint (moto
        # is one account, so every layout's buckets live side by side).
        for bucket in sorted({p.capture_bucket(env) for env in ("staging", "prod")}):
            if bucket != p.artifact_bucket:
                s3.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
        admin_client("ecr").create_repository(repositoryName=p.ecr_repository)
        sagemaker = admin_client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=p.model_package_group)

    @property
    def moto_sagemaker(self) -> Any:
        return sagemaker_backends[MOTO_ACCOUNT][REGION]

    # -- BackendHarness ---------------------------------------------------------------------
    def seed_version(
        self,
        *,
        metrics: dict[str, float] | None = None,
        hyperparameters: dict[str, str] | None = None,
        approval: str = "PendingManualApproval",
        group: str | None = None,
        same_model_as: ModelVersion | None = None,
    ) -> ModelVersion:
        """Register a package as the pipeline's RegisterModel step does (report in S3)."""
        group = group or self.project.model_package_group
        sagemaker = admin_client("sagemaker")
        if group not in self.moto_sagemaker.model_package_groups:
            sagemaker.create_model_package_group(ModelPackageGroupName=group)
        count = len(
            [
                p
                for p in self.moto_sagemaker.model_packages.values()
                if p.model_package_group_name == group
            ]
        )
        key = f"{group}/evaluation-{count + 1}.json"
        report = {
            "binary_classification_metrics": {
                name: {"value": value, "standard_deviation": "NaN"}
                for name, value in (DEFAULT_METRICS if metrics is None else metrics).items()
            }
        }
        admin_client("s3").put_object(
            Bucket=self.project.artifact_bucket, Key=key, Body=json.dumps(report).encode()
        )
        bucket = self.project.artifact_bucket
        image = f"{MOTO_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{self.project.ecr_repository}:abc"
        properties = {"project": self.project.project}
        properties.update({f"hyperparameter:{k}": v for k, v in (hyperparameters or {}).items()})
        arn = sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=approval,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": image,
                        "ModelDataUrl": same_model_as.model_data_url
                        if same_model_as
                        else f"s3://{bucket}/model-{count + 1}.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv", "application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{self.project.artifact_bucket}/{key}",
                    }
                }
            },
            CustomerMetadataProperties=properties,
        )["ModelPackageArn"]
        version = int(arn.rsplit("/", 1)[1])
        found = self.backend.get_version(group, version)
        assert found is not None
        return found

    def attach_monitor_reports(self, version: int) -> None:
        """What the pipeline's DataBaseline, CheckBias and Explain steps attach to a package:
        the monitor's baseline and the reports it watches (so a deploy keeps a monitor)."""
        run = f"s3://{self.project.artifact_bucket}/pipeline-runs/r{version}"
        arn = self.project.model_package_arn(version).replace(
            self.project.accounts["dev"], MOTO_ACCOUNT
        )
        package = self.moto_sagemaker.model_packages[arn]
        package.model_metrics = {
            **(package.model_metrics or {}),
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"{run}/DataBaseline/baseline/statistics.json",
                }
            },
            "Bias": {
                "Report": {
                    "ContentType": "application/json",
                    "S3Uri": f"{run}/CheckBias/bias/analysis.json",
                }
            },
            "Explainability": {
                "Report": {
                    "ContentType": "application/json",
                    "S3Uri": f"{run}/Explain/explainability/analysis.json",
                }
            },
        }

    def new_process(self) -> None:
        """The next command starts afresh, as each workflow step's CLI process does: nothing
        the backend remembered (its per-command reads, a prepared plan) carries over."""
        self.backend = AwsBackend(
            self.project, session=self.session, waiter_delay=0, shadow_wait=self._shadow_window
        )

    def mutations(self) -> list[str]:
        return [c for c in self.calls if c.split(":", 1)[1].startswith(MUTATING)]

    def reset_mutations(self) -> None:
        self.calls.clear()

    def prepare_invocations(self, env: str, rows: int, answers: list[Any] | None = None) -> None:
        """Queue moto's invoke_endpoint answers: ``rows`` single-row ones, then the batch.

        ``answers`` (JSON-able bodies) replaces the default well-formed predictions.
        """
        if answers is None:
            one = {"predictions": [{"label": 1, "probability": 0.8}]}
            batch = {"predictions": [{"label": 1, "probability": 0.8}] * rows}
            answers = [one] * rows + [batch]
        results = [
            {
                "Body": body if isinstance(body, str) else json.dumps(body),
                "ContentType": "application/json",
            }
            for body in answers
        ]
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={"account_id": MOTO_ACCOUNT, "region": REGION, "results": results},
            timeout=5,
        )

    def seed_shadow_candidate(self, behaviour: str = "agrees") -> ModelVersion:
        """A version that, as a shadow of prod, ``agrees`` with the live answers, ``disagrees``
        (another label) or ``errors`` (5xx): what the next shadow window's traffic shows."""
        self.shadow_behaviour = behaviour
        return self.seed_version()

    # -- test-only powers -------------------------------------------------------------------
    def fail_next_endpoint(self, reason: str) -> None:
        """The next endpoint created ends Failed with ``reason`` (moto makes all InService)."""

        def fail(parsed: dict[str, Any], **_: Any) -> None:
            for endpoint in self.moto_sagemaker.endpoints.values():
                if endpoint.arn == parsed.get("EndpointArn"):
                    endpoint.endpoint_status = "Failed"
                    endpoint.failure_reason = reason
            events.unregister("after-call.sagemaker.CreateEndpoint", fail)

        # The client copied the session's hooks when it was made: register on the client.
        events = self.backend.clients("sagemaker").meta.events
        events.register("after-call.sagemaker.CreateEndpoint", fail)

    def set_endpoint_status(self, env: str, status: str, reason: str | None = None) -> None:
        endpoint = self.moto_sagemaker.endpoints[self.project.endpoint_name(env)]
        endpoint.endpoint_status = status
        endpoint.failure_reason = reason

    # -- shadow tests -----------------------------------------------------------------------
    def _shadow_window(self, seconds: float) -> None:
        """What prod's traffic leaves behind during a shadow window, as SageMaker writes it:
        per-variant CloudWatch metrics and data capture of both variants (same InferenceIds).
        Only while the endpoint really runs a config with a shadow variant."""
        from ci_scripts.backends.aws.shadow import NAMESPACE, SHADOW_VARIANT

        name = self.project.endpoint_name("prod")
        endpoint = self.moto_sagemaker.endpoints[name]
        config = endpoint.endpoint_config_name
        self.shadow_configs_seen.append(config)
        if not self.shadow_variants.get(config):
            return  # no shadow variant: SageMaker replicates nothing
        now = datetime.now(UTC)
        n, behaviour = self.shadow_requests, self.shadow_behaviour
        live_label, shadow_label = 1, 0 if behaviour == "disagrees" else 1
        errors = n if behaviour == "errors" else 0
        cloudwatch = admin_client("cloudwatch")
        for variant, failed, latency_us in (
            ("AllTraffic", 0, 8000.0),
            (SHADOW_VARIANT, errors, 9500.0),
        ):
            dimensions = [
                {"Name": "EndpointName", "Value": name},
                {"Name": "VariantName", "Value": variant},
            ]
            cloudwatch.put_metric_data(
                Namespace=NAMESPACE,
                MetricData=[
                    {
                        "MetricName": "Invocations",
                        "Dimensions": dimensions,
                        "Timestamp": now,
                        "Value": float(n),
                    },
                    {
                        "MetricName": "Invocation5XXErrors",
                        "Dimensions": dimensions,
                        "Timestamp": now,
                        "Value": float(failed),
                    },
                    {
                        "MetricName": "ModelLatency",
                        "Dimensions": dimensions,
                        "Timestamp": now,
                        "Values": [latency_us, latency_us * 2],
                        "Counts": [float(n - 1), 1.0],
                        "Unit": "Microseconds",
                    },
                ],
            )
        capture = self.moto_sagemaker.endpoint_configs[config].data_capture_config
        bucket, _, prefix = capture["DestinationS3Uri"].removeprefix("s3://").partition("/")
        for variant, label in (("AllTraffic", live_label), (SHADOW_VARIANT, shadow_label)):
            if variant == SHADOW_VARIANT and errors:
                continue  # 5xx answers: nothing captured to compare
            lines = [
                json.dumps(
                    {
                        "captureData": {
                            "endpointInput": {
                                "observedContentType": "text/csv",
                                "mode": "INPUT",
                                "data": "1,2,3",
                                "encoding": "CSV",
                            },
                            "endpointOutput": {
                                "observedContentType": "application/json",
                                "mode": "OUTPUT",
                                "data": json.dumps(
                                    {"predictions": [{"label": label, "probability": 0.8}]}
                                ),
                                "encoding": "JSON",
                            },
                        },
                        "eventMetadata": {
                            "eventId": f"{variant}-{i}",
                            "inferenceId": f"request-{i}",
                            "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                        },
                        "eventVersion": "0",
                    }
                )
                for i in range(n)
            ]
            key = f"{prefix.strip('/')}/{name}/{variant}/{now:%Y/%m/%d/%H}/capture.jsonl"
            admin_client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())

    def _keep_shadow_variants(self, params: dict[str, Any], **_: Any) -> None:
        """moto gap: CreateEndpointConfig drops ShadowProductionVariants; keep them here."""
        request = json.loads(params["body"])
        self.shadow_variants[request["EndpointConfigName"]] = list(
            request.get("ShadowProductionVariants") or []
        )

    def _add_shadow_variants(self, parsed: dict[str, Any], **_: Any) -> None:
        found = self.shadow_variants.get(parsed.get("EndpointConfigName", ""))
        if found:
            parsed["ShadowProductionVariants"] = found

    def _stash_params(self, params: dict[str, Any], **_: Any) -> None:
        """The GetMetricData request as the caller built it (before-call sees it serialized)."""
        self._metric_request = params

    def _get_metric_data(self, model: Any, **_: Any) -> Any:
        """moto gap: no pNN statistics; answer every query from moto's stored datapoints."""
        from moto.cloudwatch.models import cloudwatch_backends

        self._record(model)
        request = self._metric_request
        start, end = request["StartTime"], request["EndTime"]
        stored = cloudwatch_backends[MOTO_ACCOUNT][REGION].metric_data
        results = []
        for query in request["MetricDataQueries"]:
            metric, stat = query["MetricStat"]["Metric"], query["MetricStat"]["Stat"]
            dims = {(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])}
            values = sorted(
                d.value
                for d in stored
                if d.namespace == metric["Namespace"]
                and d.name == metric["MetricName"]
                and {(x.name, x.value) for x in d.dimensions} == dims
                and start <= _aware(d.timestamp) <= end
            )
            if not values:
                numbers: list[float] = []
            elif stat == "Sum":
                numbers = [sum(values)]
            elif stat == "Average":
                numbers = [sum(values) / len(values)]
            elif stat == "SampleCount":
                numbers = [float(len(values))]
            else:  # pNN, nearest rank
                rank = max(1, math.ceil(len(values) * float(stat[1:]) / 100))
                numbers = [values[rank - 1]]
            results.append(
                {
                    "Id": query["Id"],
                    "Label": stat,
                    "StatusCode": "Complete",
                    "Values": numbers,
                    "Timestamps": [start] * len(numbers),
                }
            )
        return _ok({"MetricDataResults": results, "Messages": []})

    # -- hooks ------------------------------------------------------------------------------
    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}:{model.name}")

    def _update_endpoint(self, params: dict[str, Any], model: Any, **_: Any) -> Any:
        """moto gap: UpdateEndpoint, completed at once (as after a successful blue/green)."""
        # botocore calls handlers of the specific event first, and this one answers the call,
        # so the generic recorder never sees it: record here.
        self._record(model)
        params = json.loads(params["body"])  # before-call sees the serialized request
        self.update_requests.append(params)
        backend = self.moto_sagemaker
        endpoint = backend.endpoints[params["EndpointName"]]
        if self.rollback_reason:  # an alarm fired: SageMaker rolled back to the old fleet
            endpoint.failure_reason, self.rollback_reason = self.rollback_reason, None
            return _ok({"EndpointArn": endpoint.arn})
        config = backend.endpoint_configs[params["EndpointConfigName"]]
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config.production_variants
        )
        endpoint.data_capture_config = config.data_capture_config
        endpoint.endpoint_status = "InService"
        return _ok({"EndpointArn": endpoint.arn})

    def _no_monitoring_schedule(self, model: Any, **_: Any) -> Any:
        """moto gap: no *MonitoringSchedule calls. The contract's deploys create none (their
        packages have no Model Monitor baseline), so there is none to describe; tests of the
        schedules themselves stub the SageMaker client (tests/aws/test_aws_monitoring.py)."""
        self._record(model)
        error = {"Code": "ResourceNotFound", "Message": "Could not find monitoring schedule."}
        response = AWSResponse("https://moto.invalid", 400, {}, None)
        return response, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    def _keep_metadata(self, params: dict[str, Any], **_: Any) -> None:
        """moto quirk: UpdateModelPackage drops CustomerMetadataProperties it was not given
        (SageMaker keeps them); restore them once moto has applied the update."""
        request = json.loads(params["body"])
        if "CustomerMetadataProperties" in request:
            return
        package = self.moto_sagemaker.model_packages.get(request["ModelPackageArn"])
        kept = dict(package.customer_metadata_properties or {}) if package else None

        def restore(**_: Any) -> None:
            if package is not None:
                package.customer_metadata_properties = kept
            self.backend.clients("sagemaker").meta.events.unregister(
                "after-call.sagemaker.UpdateModelPackage", restore
            )

        self.backend.clients("sagemaker").meta.events.register(
            "after-call.sagemaker.UpdateModelPackage", restore
        )

    def _script_execution(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto marks every execution Succeeded; a test may script a failure instead."""
        if self.pipeline_failure is None:
            return
        arn = parsed["PipelineExecutionArn"]
        pipeline = self.moto_sagemaker.pipelines[arn.split(":pipeline/", 1)[1].split("/")[0]]
        execution = pipeline.pipeline_executions[arn]
        execution.pipeline_execution_status = "Failed"
        execution.pipeline_execution_failure_reason = self.pipeline_failure

    def _failure_reason(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto quirk: DescribePipelineExecution always says FailureReason ""."""
        if parsed.get("PipelineExecutionStatus") == "Failed" and self.pipeline_failure:
            parsed["FailureReason"] = self.pipeline_failure

    def _remember_start(self, params: dict[str, Any], **_: Any) -> None:
        self._started = dict(params)

    def _transform(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto gap: a batch pipeline's Succeeded run writes what its Transform step would."""
        if self.pipeline_failure is not None:
            return
        if not str(self._started.get("PipelineName", "")).endswith("-batch"):
            return
        values = {p["Name"]: p["Value"] for p in self._started.get("PipelineParameters", [])}
        answer = self.transform_answers.pop(0) if self.transform_answers else self.transform_answer
        s3 = admin_client("s3")
        in_bucket, in_prefix = values["InputUri"][5:].split("/", 1)
        out_bucket, out_prefix = values["OutputUri"][5:].split("/", 1)
        listed = s3.list_objects_v2(Bucket=in_bucket, Prefix=in_prefix).get("Contents", [])
        rows = 0
        for item in listed:
            text = s3.get_object(Bucket=in_bucket, Key=item["Key"])["Body"].read().decode()
            ids = [line.split(",", 1)[0] for line in text.splitlines() if line]
            rows += len(ids)
            body = "".join(f"{i},{answer}\n" for i in ids)
            key = out_prefix + item["Key"][len(in_prefix) :] + ".out"
            s3.put_object(Bucket=out_bucket, Key=key, Body=body.encode())
        # ... and what its CheckInput step writes: the rows it checked
        check_bucket, check_prefix = values["CheckUri"][5:].split("/", 1)
        execution = parsed["PipelineExecutionArn"].rsplit("/", 1)[-1]
        s3.put_object(
            Bucket=check_bucket,
            Key=f"{check_prefix}/{execution}/summary.json",
            Body=json.dumps({"files": {}, "rows": rows}).encode(),
        )

    def fail_batch_run(self, env: str, reason: str) -> str:
        """A run of ``env``'s batch pipeline as Scheduler starts it (the schedule's parameters),
        whose Transform step failed with ``reason`` on its job (moto keeps the job); its ARN."""
        name = self.project.batch_pipeline_name(env)
        schedule = admin_client("scheduler").get_schedule(Name=name)
        listed = schedule["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
        sagemaker = admin_client("sagemaker")
        model = next(p["Value"] for p in listed if p["Name"] == "ModelName")
        job_name = f"pipelines-{len(self.moto_sagemaker.transform_jobs)}-Transform"
        sagemaker.create_transform_job(
            TransformJobName=job_name,
            ModelName=model,
            TransformInput={
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i/"}}
            },
            TransformOutput={"S3OutputPath": "s3://b/o/"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        )
        job = self.moto_sagemaker.transform_jobs[job_name]
        job.transform_job_status, job.failure_reason = "Failed", reason
        arn = sagemaker.start_pipeline_execution(PipelineName=name, PipelineParameters=listed)[
            "PipelineExecutionArn"
        ]
        execution = self.moto_sagemaker.pipelines[name].pipeline_executions[arn]
        execution.pipeline_execution_status = "Failed"
        execution.pipeline_execution_failure_reason = "Step failure: One or multiple steps failed."
        self.pipeline_steps = [
            {"StepName": "CheckInput", "StepStatus": "Succeeded", "Metadata": {}},
            {
                "StepName": "Transform",
                "StepStatus": "Failed",
                "Metadata": {"TransformJob": {"Arn": job.arn}},
            },
        ]
        return arn

    def _remember_sort(self, params: dict[str, Any], **_: Any) -> None:
        self._sort = json.loads(params["body"])

    def _sort_executions(self, parsed: dict[str, Any], **_: Any) -> None:
        """moto gap: sort and cut ListPipelineExecutions' answer as SageMaker does."""
        listed = parsed.get("PipelineExecutionSummaries") or []
        if self._sort.get("SortOrder", "Descending") == "Descending":
            listed.reverse()  # moto lists in creation order
        if self._sort.get("MaxResults"):
            del listed[int(self._sort["MaxResults"]) :]
        parsed["PipelineExecutionSummaries"] = listed

    def _pipeline_steps(self, params: dict[str, Any], model: Any, **_: Any) -> Any:
        """moto gap: ListPipelineExecutionSteps answers what the test scripted."""
        self._record(model)
        return _ok({"PipelineExecutionSteps": list(self.pipeline_steps or [])})


@contextmanager
def aws_harness(
    tmp_path: Path, monkeypatch: Any, harness_class: type[AwsHarness] | None = None, **answers: str
) -> Iterator[AwsHarness]:
    """moto for the whole test, fake credentials, a fresh model repo under ``tmp_path``.

    ``harness_class`` (an AwsHarness subclass) adds powers, e.g. tests/iam's request recorder."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("GITHUB_SHA", "GITHUB_REF", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    if answers.get("pipeline", "stub") == "stub":
        use_stub_platform_pipelines(monkeypatch)
    with mock_aws():
        yield (harness_class or AwsHarness)(tmp_path / "repo", **answers)
