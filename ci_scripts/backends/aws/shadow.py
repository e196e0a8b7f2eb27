"""The aws shadow test: the candidate as a SageMaker shadow variant of the prod endpoint.

SageMaker replicates requests of an endpoint's production variant to a shadow variant named in
the endpoint config's ``ShadowProductionVariants``; callers get only the production variant's
answers ("Shadow variants",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-shadow-deployment.html, and "Create a
shadow test", https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-create.html: at most
one shadow variant and one production variant per endpoint; data capture logs the requests and
responses of both). The test:

1. creates the candidate's model (named as the deploy that follows will name it, so that deploy
   reuses it) and an endpoint config ``<endpoint>-shadow-v<n>-<hash>``: the running config's
   production variant unchanged (at the fleet's current instance count) and key, the data
   capture the manifest asks for, plus the candidate as the shadow variant on the same
   instance type and count;
2. updates the endpoint to it and waits for InService (botocore's waiter);
3. waits ``duration_minutes`` (``wait`` is injectable: tests do not sleep);
4. puts the endpoint back on the config that ran before and waits again, then deletes the
   shadow config; this also runs when anything fails or the deploy is interrupted (Ctrl-C,
   SIGTERM), so prod ends as it began. The wait for the restore also gives CloudWatch and data
   capture time to publish the window's last minute;
5. reads CloudWatch GetMetricData for both variants (namespace AWS/SageMaker, dimensions
   EndpointName and VariantName: Invocations and Invocation5XXErrors Sum, ModelLatency p50, p99
   and Average, reported in microseconds; "SageMaker AI endpoint invocation metrics",
   https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html) and the data
   capture of both variants in the window, and pairs their answers by
   ``eventMetadata.inferenceId``.

Assumptions the docs do not spell out, stated here and in the README: the shadow variant's
captures land under ``<DestinationS3Uri>/<endpoint>/<shadow variant>/YYYY/MM/DD/HH/`` like a
production variant's, and a replicated request keeps the caller's InferenceId, so only requests
sent with an InferenceId (the key ground truth is joined on) can be paired; the shadow variant
gets every request when its InitialVariantWeight equals the production variant's (the guide's
example sets both to 1).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error
from ci_scripts.backends.aws.guardrails import VARIANT
from ci_scripts.backends.base import ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.interrupts import termination_interrupts
from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy, VariantFigures

if TYPE_CHECKING:
    from ci_scripts.backends.aws.endpoints import AwsEndpointHost

SHADOW_VARIANT = "Shadow"
NAMESPACE = "AWS/SageMaker"
RECORD_TAG = "shadow-result"  # the endpoint's tag (sagemaker-gitops:shadow-result) status shows
MAX_NAME = 63
SHADOW_MARK = "-shadow-"  # in the shadow config's name: <endpoint>-shadow-v<n>-<hash>


class AwsShadowTest:
    """One shadow test on one environment's endpoint."""

    def __init__(self, host: AwsEndpointHost, wait: Callable[[float], None] = time.sleep) -> None:
        self.host = host
        self.wait = wait

    def run(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, policy: ShadowPolicy
    ) -> ShadowMeasurement:
        from ci_scripts.backends.aws.endpoints import TAG, desired_endpoint

        host, project = self.host, self.host.project
        host.require_account(env)
        name = project.endpoint_name(env)
        current = host.describe_endpoint(env)
        if current is None or current.status != "InService":
            status = current.status if current else "absent"
            raise CIError(f"endpoint {name}: the shadow test needs {env} serving (status {status})")
        live_name = str(current.config.get("endpoint_config") or "")
        if SHADOW_MARK in live_name:
            raise CIError(
                f"endpoint {name}: runs {live_name}, the config of a shadow test that was not "
                "put back; update the endpoint to the config it ran before, then deploy again"
            )
        sagemaker = host.clients("sagemaker")
        with aws_errors(f"endpoint config {live_name}"):
            live = sagemaker.describe_endpoint_config(EndpointConfigName=live_name)
            tags = sagemaker.list_tags(ResourceArn=live["EndpointConfigArn"]).get("Tags", [])
        production = dict(live["ProductionVariants"][0])
        if "InstanceType" not in production:
            raise CIError(
                f"endpoint {name}: runs serverless; SageMaker shadow variants need an "
                "instance-based realtime endpoint"
            )
        instances = current.config.get("instance_count") or production["InitialInstanceCount"]
        production["InitialInstanceCount"] = int(instances)
        production.pop("CurrentInstanceCount", None)
        candidate = desired_endpoint(project, env, manifest, version)
        # The capture the manifest asks for (validate refuses a shadow test without one), so
        # turning capture on in the same change as the shadow test works.
        capture = candidate.data_capture or {}
        if not capture.get("EnableCapture"):
            raise CIError(
                f"{env}: deployment.shadow needs data capture on: the shadow test pairs the "
                "captured live and shadow answers"
            )
        suffix = f"{SHADOW_MARK}v{version.version}-{candidate.config_hash}"
        shadow_name = name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        request: dict[str, Any] = {
            "EndpointConfigName": shadow_name,
            "ProductionVariants": [production],
            "ShadowProductionVariants": [
                {
                    "VariantName": SHADOW_VARIANT,
                    "ModelName": candidate.resource_name,
                    "InstanceType": production["InstanceType"],
                    "InitialInstanceCount": int(instances),
                    "InitialVariantWeight": float(production.get("InitialVariantWeight", 1.0)),
                }
            ],
            "DataCaptureConfig": capture,
            # The live config's tags: while the shadow runs, the endpoint still serves them.
            "Tags": [t for t in tags if t["Key"].startswith(TAG)]
            + [{"Key": TAG + "shadow-version", "Value": str(version.version)}],
        }
        if live.get("KmsKeyId"):
            request["KmsKeyId"] = live["KmsKeyId"]
        host._ensure_model(candidate, env)  # the deploy after a passed test reuses it
        self._delete_config(shadow_name)  # left by an earlier attempt that was cut short
        with aws_errors(f"endpoint config {shadow_name}"):
            sagemaker.create_endpoint_config(**request)
        switched = False
        with termination_interrupts("shadow test"):  # SIGTERM restores prod too
            try:
                with aws_errors(f"endpoint {name}"):
                    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=shadow_name)
                switched = True
                self._wait_on(
                    name, shadow_name, f"starting the shadow of version {version.version}"
                )
                started = datetime.now(UTC)
                seconds = policy.duration_minutes * 60
                self.wait(seconds)
                ended = max(datetime.now(UTC), started + timedelta(seconds=seconds))
            finally:
                if switched:
                    self._restore(name, live_name, shadow_name)
                self._delete_config(shadow_name)
        figures = self._metrics(name, started, ended, current.model_version, version.version)
        destination = str(capture["DestinationS3Uri"]).rstrip("/")
        pairs = self._pairs(f"{destination}/{name}", started, ended)
        traffic = (
            f"a copy of every prod request to {name} ({SHADOW_VARIANT} variant, SageMaker "
            f"shadow variant); pairs are the captured requests sent with an InferenceId"
        )
        return ShadowMeasurement(
            env,
            figures[0],
            figures[1],
            pairs,
            float(seconds),
            traffic,
            started=started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def record(self, env: str, record: str) -> None:
        """Tag the endpoint with its last shadow result (``status`` shows it)."""
        from ci_scripts.backends.aws.endpoints import TAG

        name = self.host.project.endpoint_name(env)
        sagemaker = self.host.clients("sagemaker")
        with aws_errors(f"endpoint {name}"):
            arn = sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"]
            sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": TAG + RECORD_TAG, "Value": record}])

    # -- internals --------------------------------------------------------------------------
    def _wait_on(self, name: str, config: str, doing: str) -> None:
        from botocore.exceptions import WaiterError

        try:
            self.host._wait("endpoint_in_service", name)
        except WaiterError as exc:
            described = self.host._describe(name) or {}
            reason = described.get("FailureReason") or describe_aws_error(exc)
            raise CIError(f"endpoint {name}: {doing} failed: {reason}") from exc
        described = self.host._describe(name) or {}
        if described.get("EndpointConfigName") != config:
            reason = described.get("FailureReason") or "SageMaker kept the previous config"
            raise CIError(f"endpoint {name}: {doing} failed: {reason}")

    def _restore(self, name: str, live_name: str, shadow_name: str) -> None:
        """The endpoint back on ``live_name`` (the shadow removed); raises naming what is left
        when SageMaker refuses, so nobody thinks prod is as it was."""
        sagemaker = self.host.clients("sagemaker")
        try:
            described = self.host._describe(name) or {}
            if described.get("EndpointConfigName") == live_name:
                return  # the switch never happened (or SageMaker rolled it back)
            if described.get("EndpointStatus") != "InService":
                self.host._wait("endpoint_in_service", name)  # an update still under way
            sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=live_name)
            self._wait_on(name, live_name, f"removing the shadow (back to {live_name})")
        except Exception as exc:  # a ClientError, a failed wait: say what may be left
            text = describe_aws_error(exc) if isinstance(exc, ClientError) else str(exc)
            raise CIError(
                f"endpoint {name}: could not put back endpoint config {live_name} after the "
                f"shadow test ({text}); it may still run {shadow_name}: update the endpoint "
                f"to {live_name} by hand"
            ) from exc

    def _delete_config(self, shadow_name: str) -> None:
        sagemaker = self.host.clients("sagemaker")
        with contextlib.suppress(ClientError):  # prune removes what a later deploy finds left
            sagemaker.delete_endpoint_config(EndpointConfigName=shadow_name)

    def _metrics(
        self, name: str, started: datetime, ended: datetime, live: int | None, shadow: int
    ) -> tuple[VariantFigures, VariantFigures]:
        start = started.replace(second=0, microsecond=0)
        end = ended.replace(second=0, microsecond=0) + timedelta(minutes=1)
        period = max(60, int((end - start).total_seconds()))
        wanted = [
            ("Invocations", "Sum"),
            ("Invocation5XXErrors", "Sum"),
            ("ModelLatency", "p50"),
            ("ModelLatency", "p99"),
            ("ModelLatency", "Average"),
        ]
        queries, keys = [], {}
        for v, variant in enumerate((VARIANT, SHADOW_VARIANT)):
            for m, (metric, stat) in enumerate(wanted):
                query_id = f"v{v}m{m}"
                keys[query_id] = (variant, metric, stat)
                queries.append(
                    {
                        "Id": query_id,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": name},
                                    {"Name": "VariantName", "Value": variant},
                                ],
                            },
                            "Period": period,
                            "Stat": stat,
                        },
                    }
                )
        values: dict[tuple[str, str, str], float] = {}
        cloudwatch = self.host.clients("cloudwatch")
        with aws_errors(f"CloudWatch metrics of endpoint {name}"):
            paginator = cloudwatch.get_paginator("get_metric_data")
            for page in paginator.paginate(MetricDataQueries=queries, StartTime=start, EndTime=end):
                for result in page.get("MetricDataResults", []):
                    numbers = [float(x) for x in result.get("Values", []) if x is not None]
                    if numbers:
                        key = keys[result["Id"]]
                        # Sums add up over periods; a statistic of one period is that period's.
                        values[key] = sum(numbers) if key[2] == "Sum" else numbers[0]

        def figures(variant: str, version: int | None) -> VariantFigures:
            def ms(stat: str) -> float | None:
                found = values.get((variant, "ModelLatency", stat))
                return None if found is None or math.isnan(found) else found / 1000.0

            return VariantFigures(
                variant=variant,
                version=version,
                requests=int(values.get((variant, "Invocations", "Sum"), 0)),
                errors=int(values.get((variant, "Invocation5XXErrors", "Sum"), 0)),
                latency_p50_ms=ms("p50"),
                latency_p99_ms=ms("p99"),
                latency_avg_ms=ms("Average"),
            )

        return figures(VARIANT, live), figures(SHADOW_VARIANT, shadow)

    def _pairs(self, prefix: str, started: datetime, ended: datetime) -> list[tuple[bytes, bytes]]:
        """(live, shadow) answers of the captured requests of the window, by inference id."""
        answers = [
            self._captured(f"{prefix}/{v}", started, ended) for v in (VARIANT, SHADOW_VARIANT)
        ]
        live, shadow = answers
        return [(live[key], shadow[key]) for key in sorted(live) if key in shadow]

    def _captured(self, prefix: str, started: datetime, ended: datetime) -> dict[str, bytes]:
        from ci_scripts.backends.aws.registry import split_s3_uri

        bucket, key_prefix = split_s3_uri(prefix)
        s3 = self.host.clients("s3")
        found: dict[str, bytes] = {}
        hour = started.replace(minute=0, second=0, microsecond=0)
        while hour <= ended:
            folder = f"{key_prefix}/{hour:%Y/%m/%d/%H}/"
            with aws_errors(f"data capture s3://{bucket}/{folder}"):
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=folder
                ):
                    for item in page.get("Contents", []):
                        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                        found.update(_answers(body, started, ended))
            hour += timedelta(hours=1)
        return found


def _answers(body: bytes, started: datetime, ended: datetime) -> dict[str, bytes]:
    """inference id -> captured answer of the data capture JSON lines in ``body`` (window)."""
    found: dict[str, bytes] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
            meta = event["eventMetadata"]
            output = event["captureData"]["endpointOutput"]
        except (ValueError, KeyError, TypeError):
            continue
        inference_id = meta.get("inferenceId")
        when = _parse_time(meta.get("inferenceTime"))
        if not inference_id or when is None or not started - timedelta(seconds=1) <= when <= ended:
            continue
        data = str(output.get("data", ""))
        found[str(inference_id)] = (
            base64.b64decode(data) if output.get("encoding") == "BASE64" else data.encode()
        )
    return found


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
