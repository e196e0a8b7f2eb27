"""How a new version replaces the running one on AWS: blue/green with a canary, alarms that roll
it back, and target-tracking autoscaling.

These builders turn the manifest's ``deployment`` and ``endpoint.autoscaling`` sections into API
arguments; the endpoint host applies them. Changing the rollout policy means changing this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts import canary
from ci_scripts.backends.aws.errors import aws_errors
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.manifest import spec

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"


def alarm_specs(
    endpoint_name: str, manifest: dict[str, Any], tags: list[dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """put_metric_alarm arguments for the alarms that roll a blue/green update back.

    Names start with the endpoint's name, ``<project>-<env>-``: the prefix the deploy role may
    manage (infra/bootstrap.yml). ``tags`` (project, environment, ...) go on each alarm.
    """
    alarms = spec(manifest).deployment.alarms
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint_name},
        {"Name": "VariantName", "Value": VARIANT},
    ]
    common = {
        "Namespace": "AWS/SageMaker",
        "Dimensions": dimensions,
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if tags:
        common["Tags"] = tags  # PutMetricAlarm tags on create; TagResource keeps them current
    return [
        {
            **common,
            "AlarmName": f"{endpoint_name}-5xx-errors",
            "AlarmDescription": "Endpoint 5xx errors above the manifest's max_5xx_errors",
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "Threshold": float(alarms.max_5xx_errors),
        },
        {
            **common,
            "AlarmName": f"{endpoint_name}-model-latency",
            "AlarmDescription": "Model latency above the manifest's max_model_latency_ms",
            "MetricName": "ModelLatency",  # reported in microseconds
            "Statistic": "Average",
            "Threshold": float(alarms.max_model_latency_ms) * 1000,
        },
    ]


def deployment_config(
    manifest: dict[str, Any], alarm_names: list[str], running_instances: int | None = None
) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig: blue/green, canary when the fleet allows one.

    The canary is a whole number of instances computed by ci_scripts.canary from the fleet the
    update really gets (``running_instances`` when autoscaling retains the running fleet), so a
    fleet too small for one (a single instance) shifts all at once and bakes for the canary wait
    instead, behind the same alarms. Serverless endpoints take blue/green with all-at-once
    shifting only (SageMaker's deployment guardrails exclude them from canary and rolling updates).
    """
    policy = spec(manifest).deployment
    rollout = canary.manifest_plan(manifest, running_instances)
    routing: dict[str, Any]
    if rollout.possible:
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": rollout.canary_instances},
            "WaitIntervalInSeconds": rollout.wait_seconds,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": rollout.wait_seconds}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": policy.termination_wait_seconds,
        }
    }
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in alarm_names]}
    return config


def desired_scaling(manifest: dict[str, Any]) -> dict[str, int] | None:
    """Autoscaling the manifest asks for (realtime endpoints with an autoscaling section)."""
    endpoint = spec(manifest).endpoint
    scaling = endpoint.autoscaling
    if endpoint.type != "realtime" or scaling is None:
        return None
    return dataclasses.asdict(scaling)


# The alarm fields ``ensure`` compares with what runs (DescribeAlarms returns them as sent).
ALARM_FIELDS = (
    "AlarmDescription",
    "MetricName",
    "Namespace",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


class EndpointAlarms:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    def ensure(
        self,
        endpoint_name: str,
        manifest: dict[str, Any],
        tags: list[dict[str, str]] | None = None,
    ) -> list[str]:
        """Make the rollback alarms match the manifest; their names.

        Reads first and writes only the alarms that differ (a deploy that changes nothing makes
        no mutating call). PutMetricAlarm is an upsert but sets tags only on create, so an
        existing alarm whose tags differ gets TagResource.
        """
        specs = alarm_specs(endpoint_name, manifest, tags)
        cloudwatch = self.clients("cloudwatch")
        names = [spec["AlarmName"] for spec in specs]
        with aws_errors(f"alarms of endpoint {endpoint_name}"):
            found = self.clients.describe_alarms(names)
            for spec in specs:
                alarm = found.get(spec["AlarmName"])
                if alarm is None or not _same_alarm(alarm, spec):
                    cloudwatch.put_metric_alarm(**spec)
                if alarm is not None and tags:
                    arn = alarm["AlarmArn"]
                    have = cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"]
                    if {t["Key"]: t["Value"] for t in have} != {t["Key"]: t["Value"] for t in tags}:
                        cloudwatch.tag_resource(ResourceARN=arn, Tags=tags)
        return names


def _same_alarm(alarm: dict[str, Any], spec: dict[str, Any]) -> bool:
    dimensions = sorted((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))
    wanted = sorted((d["Name"], d["Value"]) for d in spec["Dimensions"])
    return dimensions == wanted and all(alarm.get(k) == spec[k] for k in ALARM_FIELDS)


class EndpointScaling:
    """Target-tracking autoscaling of the endpoint's one variant (Application Auto Scaling)."""

    def __init__(
        self,
        clients: AwsClients,
        endpoint_name: str,
        tags: list[dict[str, str]] | None = None,
    ) -> None:
        self.clients = clients
        self.endpoint_name = endpoint_name
        self.tags = {t["Key"]: t["Value"] for t in tags or []}
        self.resource_id = f"endpoint/{endpoint_name}/variant/{VARIANT}"
        self.policy_name = f"{endpoint_name}-invocations-per-instance"

    def current(self) -> dict[str, int] | None:
        autoscaling = self.clients("application-autoscaling")
        with aws_errors(f"autoscaling of endpoint {self.endpoint_name}"):
            targets = autoscaling.describe_scalable_targets(
                ServiceNamespace="sagemaker",
                ResourceIds=[self.resource_id],
                ScalableDimension=SCALABLE_DIMENSION,
            )["ScalableTargets"]
            if not targets:
                return None
            policies = autoscaling.describe_scaling_policies(
                ServiceNamespace="sagemaker",
                ResourceId=self.resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
                PolicyNames=[self.policy_name],
            )["ScalingPolicies"]
        target_value = (
            policies[0].get("TargetTrackingScalingPolicyConfiguration", {}).get("TargetValue")
            if policies
            else None
        )
        return {
            "min_capacity": int(targets[0]["MinCapacity"]),
            "max_capacity": int(targets[0]["MaxCapacity"]),
            "target_invocations_per_instance": int(target_value) if target_value else -1,
        }

    def apply(self, desired: dict[str, int] | None, known: Any = ...) -> bool:
        """Make autoscaling match ``desired``; True when anything changed (reads only if equal).
        ``known``: the bounds the caller read this command (None: no target), not read again."""
        current = self.current() if known is ... else known
        if current == desired:
            return False
        if desired is None:
            self.remove()
            return True
        autoscaling = self.clients("application-autoscaling")
        with aws_errors(f"autoscaling of endpoint {self.endpoint_name}"):
            autoscaling.register_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=self.resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
                MinCapacity=desired["min_capacity"],
                MaxCapacity=desired["max_capacity"],
                **({"Tags": self.tags} if self.tags else {}),
            )
            autoscaling.put_scaling_policy(
                PolicyName=self.policy_name,
                ServiceNamespace="sagemaker",
                ResourceId=self.resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": float(desired["target_invocations_per_instance"]),
                    "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
                    "ScaleInCooldown": 300,
                    "ScaleOutCooldown": 60,
                },
            )
        return True

    def remove(self) -> None:
        """Deregister (needed before an update that changes the variant's instance type)."""
        autoscaling = self.clients("application-autoscaling")
        with aws_errors(f"autoscaling of endpoint {self.endpoint_name}"):
            try:
                autoscaling.delete_scaling_policy(
                    PolicyName=self.policy_name,
                    ServiceNamespace="sagemaker",
                    ResourceId=self.resource_id,
                    ScalableDimension=SCALABLE_DIMENSION,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ObjectNotFoundException":
                    raise
            autoscaling.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=self.resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
            )
