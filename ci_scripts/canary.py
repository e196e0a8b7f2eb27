"""How big the canary of a rollout can be, given the fleet the new version really gets.

SageMaker's canary traffic shifting turns on part of the new (green) fleet first and bakes it
behind the rollback alarms; "the canary size should be less than or equal to 50% of the new
fleet's capacity" (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html,
and TrafficRoutingConfig.CanarySize: "less than or equal to 50% of the variant's total instance
count"). So the canary is a whole number of instances: ``deployment.canary_percent`` of the fleet,
rounded up to at least one, and possible only when that is at most half the fleet. A one-instance
fleet can never canary: its update shifts all traffic at once and bakes behind the same alarms.

The fleet is the instance count the endpoint will run after the update: with autoscaling the
update retains the running variant's properties (RetainAllVariantProperties), so that is the
endpoint's current instance count (DescribeEndpoint ``CurrentInstanceCount``), not the manifest's
``initial_instance_count``. validate, and the aws and local endpoint hosts, all ask this module,
so the same policy holds everywhere and is stated the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ci_scripts.manifest import spec

# A production fleet survives the loss of an instance or of an Availability Zone only with two or
# more instances: AWS advises deploying multiple instances for each production endpoint, which
# SageMaker spreads across Availability Zones
# (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-best-practices.html; AWS Config's
# managed rule sagemaker-endpoint-config-prod-instance-count flags InitialInstanceCount = 1).
MIN_PRODUCTION_INSTANCES = 2
MAX_CANARY_SHARE = 0.5


@dataclass(frozen=True)
class CanaryPlan:
    """The rollout a fleet of ``instances`` gets: ``canary_instances`` first (0: all at once)."""

    instances: int
    canary_instances: int
    canary_percent: int  # what the manifest asked for
    wait_seconds: int

    @property
    def possible(self) -> bool:
        return self.canary_instances > 0

    @property
    def traffic_percent(self) -> int:
        """The share of traffic the new version takes in the first step (100: all at once)."""
        if not self.possible:
            return 100
        return round(100 * self.canary_instances / self.instances)

    def describe(self) -> str:
        """One line for validate and deploy, e.g. ``all at once behind alarms: 1 instance``."""
        fleet = f"{self.instances} instance{'s' if self.instances != 1 else ''}"
        if not self.possible:
            return f"all at once behind alarms: {fleet}"
        return (
            f"canary of {self.canary_instances} of {fleet} ({self.traffic_percent}% of traffic, "
            f"deployment.canary_percent {self.canary_percent}) for {self.wait_seconds} s, "
            "then the rest, behind alarms"
        )


def plan(instances: int, canary_percent: int, wait_seconds: int = 0) -> CanaryPlan:
    """The canary ``canary_percent`` gives a fleet of ``instances`` (see the module docstring)."""
    instances = max(int(instances), 0)
    wanted = max(1, math.ceil(instances * int(canary_percent) / 100))
    fits = instances >= 2 and wanted <= instances * MAX_CANARY_SHARE
    return CanaryPlan(
        instances=instances,
        canary_instances=wanted if fits else 0,
        canary_percent=int(canary_percent),
        wait_seconds=int(wait_seconds),
    )


def manifest_plan(manifest: dict[str, Any], running_instances: int | None = None) -> CanaryPlan:
    """The rollout of ``manifest`` (effective): over ``running_instances`` when autoscaling
    keeps the running fleet, else over ``endpoint.initial_instance_count``. Serverless endpoints
    have no instances to canary on (deployment guardrails exclude them): all at once, 0 instances.
    """
    view = spec(manifest)
    percent = view.deployment.canary_percent
    wait = view.deployment.canary_wait_seconds
    if view.endpoint.type != "realtime":
        return CanaryPlan(0, 0, canary_percent=percent, wait_seconds=wait)
    instances = running_instances or view.endpoint.initial_instance_count
    return plan(instances, percent, wait)


def describe_manifest(manifest: dict[str, Any]) -> str:
    """What validate says about a manifest's rollout (from the manifest alone)."""
    endpoint = spec(manifest).endpoint
    if endpoint.type != "realtime":
        return "all at once behind alarms: serverless (no instances to canary on)"
    text = manifest_plan(manifest).describe()
    if endpoint.autoscaling is not None:
        text += " (with autoscaling: computed again from the running fleet at deploy)"
    return text


def production_warning(env: str, manifest: dict[str, Any]) -> str:
    """A warning when prod runs on fewer instances than survive an Availability Zone, else ""."""
    endpoint = spec(manifest).endpoint
    if env != "prod" or endpoint.type != "realtime":
        return ""
    scaling = endpoint.autoscaling  # without autoscaling the fleet stays at its initial count
    floor = scaling.min_capacity if scaling is not None else MIN_PRODUCTION_INSTANCES
    fewest = min(endpoint.initial_instance_count, floor)
    if fewest >= MIN_PRODUCTION_INSTANCES:
        return ""
    return (
        f"prod may run on {fewest} instance: an instance or Availability Zone failure stops it "
        f"and no canary is possible (AWS advises at least {MIN_PRODUCTION_INSTANCES} instances "
        "for production endpoints)"
    )
