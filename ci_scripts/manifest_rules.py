"""What SageMaker would refuse halfway through a deploy, refused when the manifest is read.

The JSON schema checks shapes; these rules check facts the schema cannot hold (the endpoint and
transform instance types botocore knows, one field against another, the running endpoint). Each
refusal is one line naming the file and the JSON path, and every one runs before a deploy changes
anything.
``canary_refusal`` is a plain function so a caller that knows the real fleet size can reuse it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

# ci_scripts/aws_facts.json, generated from botocore (scripts/gen_aws_facts.py): the one list of
# instance types the hooks check answers against and ci_scripts checks manifests against.
FACTS_PATH = Path(__file__).resolve().parent / "aws_facts.json"

# No documented maximum bounds an endpoint's instance count: RegisterScalableTarget's MaxCapacity
# is an unbounded integer ("Although you can specify a large maximum capacity, note that service
# quotas might impose lower limits", https://docs.aws.amazon.com/autoscaling/application/
# APIReference/API_RegisterScalableTarget.html), and ProductionVariant.InitialInstanceCount only has
# a minimum of 1 (https://docs.aws.amazon.com/sagemaker/latest/APIReference/
# API_ProductionVariant.html). The bound is the account's per-instance-type endpoint quota
# (https://docs.aws.amazon.com/general/latest/gr/sagemaker.html), so validate warns above a fleet
# no default quota grants rather than refusing.
SANE_MAX_INSTANCES = 100

# botocore TrafficRoutingConfig.CanarySize: "Value must be less than or equal to 50% of the
# variant's total instance count".
MAX_CANARY_PERCENT = 50


@cache
def endpoint_instance_types() -> frozenset[str]:
    """botocore's ProductionVariantInstanceType enum (CreateEndpointConfig accepts no other)."""
    facts = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    return frozenset(facts["instance_types"]["endpoint"])


@cache
def transform_instance_types() -> frozenset[str]:
    """botocore's TransformInstanceType enum (CreateTransformJob's TransformResources)."""
    facts = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    return frozenset(facts["instance_types"]["transform"])


@cache
def _instance_store_families() -> frozenset[str]:
    facts = json.loads(FACTS_PATH.read_text(encoding="utf-8"))
    return frozenset(facts["instance_store"]["families"])


def has_instance_store(instance_type: str) -> bool:
    """``instance_type`` (ml.<family>.<size>) has local NVMe instance storage, which SageMaker
    encrypts in hardware and refuses a KmsKeyId / VolumeKmsKeyId for (aws_facts.json
    ``instance_store``, its source named there)."""
    parts = str(instance_type).split(".")
    return len(parts) == 3 and parts[1] in _instance_store_families()


def volume_kms_key(kms_key: str | None, instance_type: Any) -> str | None:
    """The KmsKeyId / VolumeKmsKeyId for a volume of ``instance_type``: ``kms_key``, except for
    instance types with local instance store (API_CreateEndpointConfig KmsKeyId,
    API_ResourceConfig / API_ProcessingClusterConfig / API_TransformResources VolumeKmsKeyId)."""
    if not kms_key or (isinstance(instance_type, str) and has_instance_store(instance_type)):
        return None
    return kms_key


def canary_refusal(canary_percent: int, instance_count: int) -> str | None:
    """Why SageMaker would refuse this canary on ``instance_count`` instances; None if not.

    A canary runs on fleets of two or more instances (one instance shifts all at once); its
    CAPACITY_PERCENT may be at most half the fleet.
    """
    if instance_count < 2 or canary_percent <= MAX_CANARY_PERCENT:
        return None
    return (
        f"{canary_percent} is above {MAX_CANARY_PERCENT}: SageMaker's CanarySize may be at most "
        f"50% of the variant's {instance_count} instances"
    )


def batch_refusals(
    effective: dict[str, Any], raw: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """The rules of ``endpoint.type: batch``, and the ``batch`` section elsewhere.

    A batch deployment has no endpoint: nothing scales it, nothing routes traffic to a shadow,
    serverless memory means nothing to a transform job. Its outputs must not land under its
    inputs (the next run would score them as inputs).
    """
    from ci_scripts.manifest import spec

    view = spec(effective)
    kind = view.endpoint.type
    if kind != "batch":
        if view.batch is not None:
            return [("batch", f"only for endpoint.type 'batch' (this one is {kind!r})")]
        return []
    found: list[tuple[str, str]] = []
    instance_type = view.endpoint.instance_type
    if instance_type not in transform_instance_types():
        found.append(
            (
                "endpoint.instance_type",
                f"{instance_type!r} is not an instance type SageMaker batch transform accepts "
                "(ci_scripts/aws_facts.json, from botocore)",
            )
        )
    # endpoint.serverless has a schema default (filled in everywhere): judge what was written.
    written = (raw if raw is not None else effective).get("endpoint", {})
    for key in ("autoscaling", "serverless"):
        if key in written:
            found.append(
                (f"endpoint.{key}", "makes no sense for endpoint.type 'batch' (no endpoint runs)")
            )
    assert view.batch is not None  # the schema requires it on endpoint.type batch
    inputs, outputs = view.batch.input_prefix, view.batch.output_prefix
    if outputs.startswith(inputs) or inputs.startswith(outputs):
        found.append(
            (
                "batch.output_prefix",
                f"{outputs!r} overlaps input_prefix {inputs!r}: a run would score its own "
                "outputs (or overwrite its inputs); use separate prefixes",
            )
        )
    return found


def refusals(effective: dict[str, Any], raw: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(json path, reason)`` for every rule a schema-valid, defaulted manifest breaks
    (``raw``, the manifest as written, tells a written field from a schema default)."""
    from ci_scripts.manifest import spec

    found: list[tuple[str, str]] = batch_refusals(effective, raw)
    view = spec(effective)
    endpoint = view.endpoint
    if endpoint.type == "realtime":
        instance_type = endpoint.instance_type
        if instance_type not in endpoint_instance_types():
            found.append(
                (
                    "endpoint.instance_type",
                    f"{instance_type!r} is not an instance type SageMaker endpoints accept "
                    "(ci_scripts/aws_facts.json, from botocore)",
                )
            )
        scaling = endpoint.autoscaling
        if scaling and scaling.min_capacity > scaling.max_capacity:
            found.append(
                (
                    "endpoint.autoscaling.min_capacity",
                    f"{scaling.min_capacity} is above max_capacity {scaling.max_capacity}",
                )
            )
        percent = view.deployment.canary_percent
        # The fleet a canary starts on: autoscaling's upper bound when it may grow that far.
        # Any realtime fleet may reach two instances (a count change, autoscaling), and the
        # canary is a share of it: judge the percentage on the smallest fleet that canaries.
        fleet = max(2, endpoint.initial_instance_count)
        reason = canary_refusal(percent, fleet)
        if reason:
            found.append(("deployment.canary_percent", reason))
    found.extend(shadow_refusals(effective))
    return found


def shadow_refusals(effective: dict[str, Any]) -> list[tuple[str, str]]:
    """A shadow test (``deployment.shadow``) SageMaker or the comparison could not run.

    SageMaker shadow variants need an instance-based realtime endpoint: "Serverless Inference"
    is among the features that make an endpoint incompatible with shadow tests
    (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-create.html, Prerequisites).
    The comparison pairs the live and shadow answers captured by data capture, so capture must
    be on; and the test runs before prod switches only.
    """
    from ci_scripts.manifest import spec

    view = spec(effective)
    if not view.deployment.shadow.enabled:
        return []
    path = "deployment.shadow.enabled"
    if view.environment != "prod":
        return [
            (path, "true, but the shadow test runs only before prod switches (deploy/prod.json)")
        ]
    kind = view.endpoint.type
    if kind != "realtime":
        where = "a batch job (no endpoint)" if kind == "batch" else f"a {kind} endpoint"
        return [
            (
                path,
                f"true on {where}: SageMaker shadow variants need an instance-based realtime "
                "endpoint",
            )
        ]
    capture = view.data_capture
    if not capture.enabled or not capture.sampling_percentage:
        return [
            (
                path,
                "true with data capture off: the shadow test pairs the captured live and shadow "
                "answers (set data_capture.enabled and a sampling_percentage above 0)",
            )
        ]
    return []


def capacity_warning(effective: dict[str, Any]) -> str:
    """A warning when the fleet may grow past SANE_MAX_INSTANCES (see there), else ""."""
    from ci_scripts.manifest import spec

    endpoint = spec(effective).endpoint
    if endpoint.type == "serverless":
        return ""
    field, count = "initial_instance_count", endpoint.initial_instance_count
    scaling = endpoint.autoscaling
    if scaling is not None and scaling.max_capacity > count:
        field, count = "autoscaling.max_capacity", scaling.max_capacity
    if count <= SANE_MAX_INSTANCES:
        return ""
    return (
        f"$.endpoint.{field}: {count} instances of {endpoint.instance_type} is above "
        f"{SANE_MAX_INSTANCES}; AWS sets no maximum, the account's SageMaker quota for "
        f"{endpoint.instance_type} endpoint usage does (Service Quotas; default quotas: "
        "https://docs.aws.amazon.com/general/latest/gr/sagemaker.html): a scale-out past it "
        "fails, so set the fleet you mean to pay for"
    )


def switch_refusal(running_type: str | None, desired_type: str) -> str | None:
    """Why the running endpoint cannot become ``desired_type`` by an update; None when it can.

    AWS page "Update a serverless endpoint" (sagemaker/latest/dg/serverless-endpoints-update):
    "Updating a real-time inference endpoint to on-demand serverless ... is currently not
    supported". Such a change is a new endpoint, not an update. (The page states no such limit
    for serverless to instance-based, so that update goes ahead.)
    """
    if running_type and "batch" in (running_type, desired_type) and running_type != desired_type:
        return (
            f"{desired_type!r}, but {running_type!r} runs: a batch job and an endpoint are "
            "different resources; run `ci_scripts destroy --env E` first, then deploy"
        )
    if running_type != "realtime" or desired_type != "serverless":
        return None
    return (
        "'serverless', but the endpoint runs realtime (instance-based): SageMaker cannot update "
        "a running instance-based endpoint to serverless; delete the endpoint and deploy it as "
        "a new one"
    )
