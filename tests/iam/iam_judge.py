"""The judge: every recorded request against the rendered infra/bootstrap.yml, per layout.

For a request made by command C: the workflow job that runs C (github_jobs), the role that job
assumes (or the request's identity: a role the CLI assumed itself, or the execution role
SageMaker acts as for the pipelines and endpoints C started: pipeline_role, execution_role),
that role's inline policies in the stack that creates it (cfn_stacks), and the resource policy
of the resource when another account owns it (model package group, bucket, ECR repository, role
trust policy) or when it is the project's KMS key. policy_eval decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from cfn_stacks import KMS_KEY_ID, Stack
from github_jobs import Job, jobs_running
from iam_recorder import Request
from policy_eval import Policy, as_list, decide, statement_applies, wildcard
from sar_actions import Check, base_context, checks_for, home

LAYOUTS: dict[str, dict[str, str]] = {
    "one-account": {"dev": "123456789012", "staging": "123456789012", "prod": "123456789012"},
    "shared-staging-prod": {
        "dev": "123456789012",
        "staging": "222222222222",
        "prod": "222222222222",
    },
    "three-accounts": {"dev": "123456789012", "staging": "222222222222", "prod": "333333333333"},
}


@dataclass(frozen=True)
class Role:
    arn: str
    account: str
    properties: dict[str, Any]

    @property
    def name(self) -> str:
        return self.properties["RoleName"]

    def identity_policies(self) -> list[Policy]:
        return [
            Policy(f"role {self.name} policy {p['PolicyName']}", p["PolicyDocument"])
            for p in self.properties.get("Policies", [])
        ]


def roles(stacks: list[Stack]) -> dict[str, Role]:
    """Role ARN -> Role, over every stack (a role is created by exactly one)."""
    found: dict[str, Role] = {}
    for stack in stacks:
        for resource in stack.resources.values():
            if resource["Type"] == "AWS::IAM::Role":
                p = resource["Properties"]
                arn = f"arn:aws:iam::{stack.account}:role/{p['RoleName']}"
                assert arn not in found, f"{arn} created by two stacks"
                found[arn] = Role(arn, stack.account, p)
    return found


def job_role(job: Job, all_roles: dict[str, Role]) -> Role:
    matches = [r for r in all_roles.values() if r.name == job.role_name]
    assert matches, f"{job}: role {job.role_name} is created by no bootstrap stack"
    assert len(matches) == 1, f"{job}: role {job.role_name} in several accounts"
    return matches[0]


@dataclass(frozen=True)
class ResourcePolicy:
    label: str
    account: str
    patterns: tuple[str, ...]  # the ARNs it governs (wildcards)
    document: dict[str, Any]


def resource_policies(stacks: list[Stack]) -> list[ResourcePolicy]:
    found = []
    for stack in stacks:
        by_id = stack.resources
        for resource in by_id.values():
            kind, p = resource["Type"], resource["Properties"]
            if kind == "AWS::S3::BucketPolicy":
                bucket = p["Bucket"]
                found.append(
                    ResourcePolicy(
                        f"bucket policy of {bucket} ({stack.env} stack)",
                        stack.account,
                        (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"),
                        p["PolicyDocument"],
                    )
                )
            elif kind == "AWS::SageMaker::ModelPackageGroup" and "ModelPackageGroupPolicy" in p:
                name = p["ModelPackageGroupName"]
                base = f"arn:aws:sagemaker:eu-west-1:{stack.account}"
                found.append(
                    ResourcePolicy(
                        f"model package group policy of {name}",
                        stack.account,
                        (f"{base}:model-package-group/{name}", f"{base}:model-package/{name}/*"),
                        p["ModelPackageGroupPolicy"],
                    )
                )
            elif kind == "AWS::ECR::Repository" and "RepositoryPolicyText" in p:
                name = p["RepositoryName"]
                found.append(
                    ResourcePolicy(
                        f"repository policy of {name}",
                        stack.account,
                        (f"arn:aws:ecr:eu-west-1:{stack.account}:repository/{name}",),
                        p["RepositoryPolicyText"],
                    )
                )
            elif kind == "AWS::KMS::Key":
                arn = f"arn:aws:kms:eu-west-1:{stack.account}:key/{KMS_KEY_ID}"
                found.append(
                    ResourcePolicy(
                        f"key policy of {stack.env}'s project key", stack.account, (arn,),
                        p["KeyPolicy"],
                    )
                )  # fmt: skip
            elif kind == "AWS::IAM::Role":
                found.append(
                    ResourcePolicy(
                        f"trust policy of role {p['RoleName']}",
                        stack.account,
                        (f"arn:aws:iam::{stack.account}:role/{p['RoleName']}",),
                        p["AssumeRolePolicyDocument"],
                    )
                )
    return found


def _governing(arn: str, policies: list[ResourcePolicy]) -> list[ResourcePolicy]:
    return [p for p in policies if any(wildcard(pattern, arn) for pattern in p.patterns)]


def _account_of(arn: str, policies: list[ResourcePolicy], caller_account: str) -> str:
    parts = arn.split(":")
    if len(parts) > 4 and parts[4]:
        return parts[4]
    owners = _governing(arn, policies)  # S3 ARNs carry no account: the bucket's stack does
    return owners[0].account if owners else caller_account


def bucket_keys(stacks: list[Stack]) -> dict[str, str]:
    """Bucket -> the KMS key its default encryption uses (SSE-KMS buckets only)."""
    found = {}
    for stack in stacks:
        for resource in stack.resources.values():
            if resource["Type"] != "AWS::S3::Bucket":
                continue
            p = resource["Properties"]
            rules = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration", [])
            for rule in rules:
                default = rule.get("ServerSideEncryptionByDefault") or {}
                if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                    found[p["BucketName"]] = default["KMSMasterKeyID"]
    return found


def config_keys(requests: list[Request]) -> dict[str, str]:
    """Endpoint config -> the KmsKeyId its ML storage volumes use (as CreateEndpointConfig set)."""
    return {
        r.params["EndpointConfigName"]: r.params["KmsKeyId"]
        for r in requests
        if r.operation == "CreateEndpointConfig" and r.params.get("KmsKeyId")
    }


# S3 operations on SSE-KMS objects call KMS as the caller (Amazon S3 User Guide, "Using
# server-side encryption with AWS KMS keys (SSE-KMS)", permissions: kms:GenerateDataKey to
# upload, kms:Decrypt to download). HeadObject reads metadata only.
S3_KMS = {
    "PutObject": "kms:GenerateDataKey",
    "CreateMultipartUpload": "kms:GenerateDataKey",
    "CopyObject": "kms:GenerateDataKey",
    "GetObject": "kms:Decrypt",
}


def kms_checks(
    request: Request, caller: str, buckets: dict[str, str], configs: dict[str, str]
) -> list[Check]:
    """The KMS calls AWS makes as ``caller`` for ``request`` when the project key is in use."""
    context = base_context(caller)
    why = str(request)
    found = []
    if request.service == "s3" and request.operation in S3_KMS:
        # the key a PutObject names (SSEKMSKeyId: a job's output KmsKeyId), else the bucket's
        key = request.params.get("SSEKMSKeyId") or buckets.get(str(request.params.get("Bucket")))
        if key:
            found.append(
                Check(
                    S3_KMS[request.operation],
                    key,
                    {**context, "kms:ViaService": "s3.eu-west-1.amazonaws.com"},
                    f"{why}{' by ' + request.via if request.via else ''}: SSE-KMS object "
                    f"in {request.params['Bucket']}",
                )
            )
    if request.service == "sagemaker" and request.operation in ("CreateEndpoint", "UpdateEndpoint"):
        # "kms:CreateGrant (required only if the associated EndpointConfig has a KmsKeyId
        # specified)": SageMaker Developer Guide, API permissions reference (CreateEndpoint,
        # UpdateEndpoint). The grant is for SageMaker, an AWS resource.
        key = configs.get(str(request.params.get("EndpointConfigName")))
        if key:
            found.append(
                Check(
                    "kms:CreateGrant",
                    key,
                    {
                        **context,
                        "kms:GrantIsForAWSResource": "true",
                        "kms:ViaService": "sagemaker.eu-west-1.amazonaws.com",
                    },
                    f"{why}: its config's volumes use {key}",
                )
            )
    return found


def scalable_target_tags(requests: list[Request]) -> dict[str, dict[str, str]]:
    """Tags each scalable target carries: those its RegisterScalableTarget set."""
    tags: dict[str, dict[str, str]] = {}
    for r in requests:
        if r.operation == "RegisterScalableTarget":
            given = r.params.get("Tags") or {}
            tags.setdefault(r.params["ResourceId"], {}).update(given)
    return tags


@dataclass(frozen=True)
class Verdict:
    job: str
    role: str
    check: Check
    allowed: bool
    reason: str
    grants: tuple[str, ...] = ()
    caller: str = ""

    def line(self) -> str:
        return (
            f"{self.job}: role {self.role} is denied {self.check.action} on "
            f"{self.check.resource} ({self.check.why}); needed: a statement allowing "
            f"{self.check.action} on {self.check.resource} [{self.reason}]"
        )


@dataclass
class World:
    """What the judge reads from one layout's stacks."""

    roles: dict[str, Role]
    policies: list[ResourcePolicy]

    @classmethod
    def of(cls, stacks: list[Stack]) -> World:
        return cls(roles(stacks), resource_policies(stacks))


def judge(
    requests: list[Request], jobs: list[Job], stacks: list[Stack]
) -> tuple[list[Verdict], set[str]]:
    """Every check of every request: (verdicts, commands no job runs)."""
    world = World.of(stacks)
    dev_account = next(s.account for s in stacks if s.env == "dev")
    tags = scalable_target_tags(requests)
    buckets, configs = bucket_keys(stacks), config_keys(requests)
    verdicts: list[Verdict] = []
    orphans: set[str] = set()
    decided: dict[tuple[str, ...], Verdict] = {}

    def verdict(job: str, caller: str, check: Check) -> Verdict:
        """decide_check once per distinct authorization: a loop repeats the same ones (every
        describe of an endpoint, every read of the registry), and only ``why`` tells them
        apart, which the decision does not read."""
        context = json.dumps(check.context, sort_keys=True, default=str)
        key = (job, caller, check.action, check.resource, context)
        if key not in decided:
            decided[key] = decide_check(job, caller, check, world)
        return replace(decided[key], check=check)

    for request in requests:
        running = jobs_running(jobs, request.command)
        if not running:
            orphans.add(request.command)
            continue
        for job in running:
            role = world.roles[request.identity] if request.identity else job_role(job, world.roles)
            for check in checks_for(request, role.arn, dev_account, tags):
                verdicts.append(verdict(str(job), role.arn, check))
            for check in kms_checks(request, role.arn, buckets, configs):
                verdicts.append(verdict(str(job), role.arn, check))
        verdicts.extend(schedule_target_verdicts(request, world, dev_account))
    return verdicts, orphans


SCHEDULER = "scheduler.amazonaws.com"


def schedule_target_verdicts(request: Request, world: World, dev_account: str) -> list[Verdict]:
    """What EventBridge Scheduler itself needs when a schedule a request creates fires: to
    assume the schedule's role (its trust policy names scheduler.amazonaws.com, with the
    aws:SourceAccount the schedule lives in), and that role to start the target pipeline
    (sagemaker:StartPipelineExecution on it): "Set up the execution role" and "Use templated
    targets" (SageMaker StartPipelineExecution) in the EventBridge Scheduler User Guide. No
    workflow job makes these calls, so without this nothing would judge them."""
    if request.service != "scheduler" or request.operation not in (
        "CreateSchedule",
        "UpdateSchedule",
    ):
        return []
    target = request.params.get("Target") or {}
    if "SageMakerPipelineParameters" not in target:
        return []
    job = f"EventBridge Scheduler (schedule {request.params.get('Name')})"
    role_arn = str(target.get("RoleArn"))
    role = world.roles.get(role_arn)
    if role is None:
        start = Check("sagemaker:StartPipelineExecution", str(target.get("Arn")), {}, str(request))
        return [Verdict(job, role_arn, start, False, "no bootstrap stack creates this role")]
    # moto named the pipeline in its one account: the schedule's own account owns it
    pipeline = home(str(target.get("Arn")), role.account, dev_account)
    start = Check(
        "sagemaker:StartPipelineExecution", pipeline, {}, f"{request}: the schedule's target"
    )
    assume = Check(
        "sts:AssumeRole",
        role_arn,
        {"aws:SourceAccount": role.account},
        f"{request}: Scheduler assumes the schedule's role",
    )
    trusted = any(
        statement.get("Effect") == "Allow"
        and statement_applies(
            statement, assume.action, role_arn, assume.context, f"service:{SCHEDULER}"
        )
        for statement in as_list(role.properties["AssumeRolePolicyDocument"].get("Statement", []))
    )
    trust = Verdict(
        job,
        role.name,
        assume,
        trusted,
        "trust policy allows scheduler.amazonaws.com" if trusted else "its trust policy does not",
    )
    return [trust, decide_check(job, role_arn, start, world)]


def decide_check(job: str, caller: str, check: Check, world: World) -> Verdict:
    role = world.roles[caller]
    governing = _governing(check.resource, world.policies)
    is_assume = check.action == "sts:AssumeRole"
    # A KMS key's own policy must allow its use, even in the key's account (AWS KMS Developer
    # Guide, "Key policies in AWS KMS": no principal has permission to a key unless the key
    # policy allows it, directly or by letting IAM policies decide).
    is_kms = check.action.startswith("kms:")
    if is_assume:
        governing = [p for p in governing if p.label.startswith("trust policy")]
        if not governing:
            return Verdict(job, role.name, check, False, f"no role {check.resource} exists")
    else:
        governing = [p for p in governing if not p.label.startswith("trust policy")]
    decision = decide(
        role.arn,
        check.action,
        check.resource,
        check.context,
        role.identity_policies(),
        [Policy(p.label, p.document, resource_based=True) for p in governing],
        _account_of(check.resource, world.policies, role.account),
        resource_policy_required=is_assume or is_kms,
    )
    return Verdict(
        job, role.name, check, decision.allowed, decision.reason, decision.grants, role.arn
    )


def denied_lines(verdicts: list[Verdict]) -> list[str]:
    return sorted({v.line() for v in verdicts if not v.allowed})


def without(world: World, grant: str, action: str) -> World:
    """``world`` with ``action`` removed from the statement ``grant`` ("<label>#<Sid>")."""
    label, _, sid = grant.rpartition("#")

    def cut(document: dict[str, Any]) -> dict[str, Any]:
        statements = []
        hits = 0
        for statement in as_list(document["Statement"]):
            if statement.get("Sid") == sid:
                hits += 1
                actions = [a for a in as_list(statement["Action"]) if a.lower() != action.lower()]
                assert len(actions) < len(as_list(statement["Action"])), (
                    f"{grant} grants {action} through a wildcard"
                )
                if not actions:
                    continue
                statement = {**statement, "Action": actions}
            statements.append(statement)
        # a role of one name lives in several accounts (the execution role): a statement only
        # some of its stacks grant (dev's pipeline jobs) is in one document, absent from others
        assert hits <= 1, f"{grant}: {hits} statements with that Sid"
        found.append(hits)
        return {**document, "Statement": statements}

    found: list[int] = []

    mutated_roles = dict(world.roles)
    for arn, role in world.roles.items():
        policies = []
        for policy in role.properties.get("Policies", []):
            if f"role {role.name} policy {policy['PolicyName']}" == label:
                policy = {**policy, "PolicyDocument": cut(policy["PolicyDocument"])}
            policies.append(policy)
        mutated_roles[arn] = Role(arn, role.account, {**role.properties, "Policies": policies})
    mutated_policies = [
        ResourcePolicy(p.label, p.account, p.patterns, cut(p.document)) if p.label == label else p
        for p in world.policies
    ]
    assert sum(found) >= 1, f"{grant}: no statement with that Sid"
    # a role's trust policy is both a resource policy here and a property of the role
    return World(mutated_roles, mutated_policies)


__all__ = ["LAYOUTS", "as_list", "denied_lines", "judge"]
