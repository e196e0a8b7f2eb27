"""The end of an environment's life on AWS: ``destroy --env E``, and pruning after each deploy.

Every deploy creates a model and an endpoint config named ``<project>-<env>-v<version>-<hash>``
(aws.endpoints), so what an environment runs is found by that name alone: the endpoint
``<project>-<env>``, those configs and models, the rollback alarms (by their names), the
variant's scalable target and policy, and the monitoring the backend set up for it.

``destroy`` removes all of it in dependency order (monitoring and autoscaling reference the
endpoint, the endpoint references its config, the config its model), waiting for the endpoint to
be gone with botocore's EndpointDeleted waiter. It reads everything first and refuses an endpoint
that is being updated, so it either runs to the end or changes nothing; run again, it finds
nothing and does nothing. Buckets (captures, reports) and the registry stay: they belong to the
project, and CloudFormation's bootstrap stacks own them (the generated README says how to remove
those too).

``prune`` deletes the configs and models of versions no longer needed for a rollback (the caller
names the versions to keep: those in the manifest's recent git history), never the running one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ci_scripts.backends.aws.endpoints import MAX_NAME, AwsEndpointHost
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, is_not_found
from ci_scripts.backends.aws.guardrails import VARIANT, EndpointScaling, alarm_specs
from ci_scripts.errors import CIError

# SageMaker refuses DeleteEndpoint while an update runs; Deleting only needs waiting for.
BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
LONGEST_SUFFIX = len("-v9999999-") + 8
RESOURCE = re.compile(r"-v(\d+)-[0-9a-f]{8}$")


def resource_version(endpoint_name: str, resource: str) -> int | None:
    """The model version in ``resource`` when it is exactly a name aws.endpoints gives the
    models and configs of ``endpoint_name`` (``<endpoint, cut to fit>-v<n>-<hash>``), else None.
    The exact check keeps ``churn-prod`` from claiming ``churn-prod-x-staging-v1-…``."""
    match = RESOURCE.search(resource)
    if not match:
        return None
    suffix = match.group(0)
    expected = endpoint_name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    return int(match.group(1)) if resource == expected else None


@dataclass
class Inventory:
    """What one environment runs on AWS, found by name (reads only)."""

    endpoint: str | None = None
    endpoint_status: str = ""
    running_config: str = ""
    configs: dict[str, int] = field(default_factory=dict)  # name -> model version
    models: dict[str, int] = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)
    scaling: bool = False
    monitoring: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per resource, as destroy lists them before asking."""
        found = [f"endpoint {self.endpoint} ({self.endpoint_status})"] if self.endpoint else []
        found += [f"monitoring {name}" for name in self.monitoring]
        found += ["autoscaling of variant " + VARIANT] if self.scaling else []
        found += [f"endpoint config {name}" for name in sorted(self.configs)]
        found += [f"model {name}" for name in sorted(self.models)]
        found += [f"alarm {name}" for name in sorted(self.alarms)]
        return found


class AwsTeardown:
    """Find, destroy and prune one environment's hosting resources."""

    def __init__(self, host: AwsEndpointHost, monitoring: Any = None) -> None:
        self.host = host
        self.project = host.project
        self.clients = host.clients
        # An object with monitoring_resources(env) -> [names] and remove_monitoring(env) ->
        # [lines]: the backend's monitoring (whatever it is: schedules, pipelines, rules).
        self.monitoring = monitoring

    def inventory(self, env: str, realtime: bool = True) -> Inventory:
        """Everything ``env`` runs; ``realtime`` (the manifest's endpoint type) says whether an
        autoscaling target can exist (serverless roles may not read Application Auto Scaling)."""
        name = self.project.endpoint_name(env)
        found = self._versioned(env)
        found.alarms = self._alarms(name)
        if realtime and self._scaling(name).current() is not None:
            found.scaling = True
        if self.monitoring is not None:
            found.monitoring = list(self.monitoring.monitoring_resources(env))
        return found

    def _versioned(self, env: str) -> Inventory:
        """The endpoint and the models and configs deploys made for it (what prune needs)."""
        name = self.project.endpoint_name(env)
        found = Inventory()
        described = self.host._describe(name)
        if described:
            found.endpoint = name
            found.endpoint_status = described.get("EndpointStatus", "")
            found.running_config = described.get("EndpointConfigName", "")
        # Server-side filter on a prefix every resource name keeps, then the exact name check.
        contains = name[: MAX_NAME - LONGEST_SUFFIX]
        sagemaker = self.clients("sagemaker")
        for kind, operation, items, key, into in (
            ("endpoint configs", "list_endpoint_configs", "EndpointConfigs",
             "EndpointConfigName", found.configs),
            ("models", "list_models", "Models", "ModelName", found.models),
        ):  # fmt: skip
            with aws_errors(f"{kind} of {name}"):
                for page in sagemaker.get_paginator(operation).paginate(NameContains=contains):
                    for item in page.get(items, []):
                        version = resource_version(name, item[key])
                        if version is not None:
                            into[item[key]] = version
        return found

    def _scaling(self, endpoint: str) -> EndpointScaling:
        return EndpointScaling(self.clients, endpoint)

    def _alarms(self, endpoint: str) -> list[str]:
        """The rollback alarms that exist, asked for by name (the call and grant deploy uses;
        monitoring's own alarms go with ``remove_monitoring``)."""
        known = [spec["AlarmName"] for spec in alarm_specs(endpoint, {})]
        with aws_errors(f"alarms of endpoint {endpoint}"):
            found = self.clients("cloudwatch").describe_alarms(AlarmNames=known)["MetricAlarms"]
        return sorted(alarm["AlarmName"] for alarm in found)

    # -- destroy ----------------------------------------------------------------------------
    def destroy(self, env: str, realtime: bool = True) -> list[str]:
        """Remove everything ``env`` runs; what was removed (nothing: already gone)."""
        self.host.require_account(env)
        found = self.inventory(env, realtime)
        name = self.project.endpoint_name(env)
        if found.endpoint_status in BUSY:
            raise CIError(
                f"endpoint {name}: status is {found.endpoint_status}; wait for it to finish "
                "before destroying it (nothing was removed)"
            )
        removed: list[str] = []
        if found.monitoring and self.monitoring is not None:
            removed += self.monitoring.remove_monitoring(env)
        if found.scaling:
            self._scaling(name).remove()
            removed.append(f"autoscaling of variant {VARIANT}")
        if found.endpoint:
            sagemaker = self.clients("sagemaker")
            if found.endpoint_status != "Deleting":
                try:
                    sagemaker.delete_endpoint(EndpointName=name)
                except ClientError as exc:
                    if not is_not_found(exc):
                        raise CIError(describe_aws_error(exc, f"endpoint {name}")) from exc
            self.host._wait("endpoint_deleted", name)
            removed.append(f"endpoint {name}")
        removed += self._delete(found.configs, found.models)
        if found.alarms:
            with aws_errors(f"alarms of endpoint {name}"):
                self.clients("cloudwatch").delete_alarms(AlarmNames=found.alarms)
            removed += [f"alarm {alarm}" for alarm in found.alarms]
        return removed

    def _delete(self, configs: dict[str, int], models: dict[str, int]) -> list[str]:
        """Delete endpoint configs, then models; one already gone is no error (idempotent)."""
        sagemaker = self.clients("sagemaker")
        removed: list[str] = []
        for kind, names, call, key in (
            ("endpoint config", configs, sagemaker.delete_endpoint_config, "EndpointConfigName"),
            ("model", models, sagemaker.delete_model, "ModelName"),
        ):
            for resource in sorted(names):
                try:
                    call(**{key: resource})
                except ClientError as exc:
                    if not (is_not_found(exc) or _could_not_find(exc)):
                        raise CIError(describe_aws_error(exc, f"{kind} {resource}")) from exc
                    continue
                removed.append(f"{kind} {resource}")
        return removed

    # -- prune ------------------------------------------------------------------------------
    def prune(self, env: str, keep_versions: set[int]) -> list[str]:
        """Delete configs and models of versions outside ``keep_versions``; never the running
        config (nor its model), whatever version it serves."""
        found = self._versioned(env)
        running = found.running_config
        configs = {
            n: v for n, v in found.configs.items() if v not in keep_versions and n != running
        }
        models = {n: v for n, v in found.models.items() if v not in keep_versions and n != running}
        return self._delete(configs, models)


def _could_not_find(exc: ClientError) -> bool:
    """DeleteModel/DeleteEndpointConfig answer ValidationException "Could not find ..."."""
    return "could not find" in str(exc.response.get("Error", {}).get("Message", "")).lower()
