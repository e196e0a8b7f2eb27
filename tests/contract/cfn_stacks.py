"""infra/bootstrap.yml as CloudFormation would create it, per environment and account layout.

Parameters, pseudo parameters and conditions are decided, Fn::If branches chosen, and Ref /
Fn::GetAtt of the resources the policies name become their real names and ARNs (the formats
below are CloudFormation's documented return values for these types), so the judge evaluates
concrete policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import parsed_files

REGION = "eu-west-1"
ENVIRONMENTS = ("dev", "staging", "prod")
NO_VALUE = object()
# The id CloudFormation would give the project's KMS key (AWS::KMS::Key returns its key id from
# Ref and its ARN from Fn::GetAtt Arn): any fixed id serves the judge.
KMS_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# Ref / GetAtt return values per resource type (AWS::* "Return values" sections).
REFS = {
    "AWS::IAM::Role": lambda p, acct: p["RoleName"],
    "AWS::S3::Bucket": lambda p, acct: p["BucketName"],
    "AWS::ECR::Repository": lambda p, acct: p["RepositoryName"],
    "AWS::IAM::OIDCProvider": lambda p, acct: (
        f"arn:aws:iam::{acct}:oidc-provider/{p['Url'].removeprefix('https://')}"
    ),
    "AWS::SNS::Topic": lambda p, acct: f"arn:aws:sns:{REGION}:{acct}:{p['TopicName']}",
    "AWS::KMS::Key": lambda p, acct: KMS_KEY_ID,
}
ATTRS = {
    ("AWS::IAM::Role", "Arn"): lambda p, acct: f"arn:aws:iam::{acct}:role/{p['RoleName']}",
    ("AWS::S3::Bucket", "Arn"): lambda p, acct: f"arn:aws:s3:::{p['BucketName']}",
    ("AWS::ECR::Repository", "Arn"): lambda p, acct: (
        f"arn:aws:ecr:{REGION}:{acct}:repository/{p['RepositoryName']}"
    ),
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupArn"): lambda p, acct: (
        f"arn:aws:sagemaker:{REGION}:{acct}:model-package-group/{p['ModelPackageGroupName']}"
    ),
    ("AWS::KMS::Key", "Arn"): lambda p, acct: f"arn:aws:kms:{REGION}:{acct}:key/{KMS_KEY_ID}",
    ("AWS::Events::Rule", "Arn"): lambda p, acct: (
        f"arn:aws:events:{REGION}:{acct}:rule/{p['Name']}"
    ),
}


def load(path: Path) -> dict[str, Any]:
    """The template as cfn-lint reads it; parsed once per content (tests/parsed_files.py)."""
    return parsed_files.cfn_template(path)


def evaluate(
    template: dict[str, Any], parameters: dict[str, str], account: str, *, names: bool = True
) -> dict:
    """Resources and Outputs of one stack, every intrinsic resolved.

    With ``names`` (the IAM judge), Ref / Fn::GetAtt of the types in REFS / ATTRS become real
    names and ARNs; without (tests/test_infra.py), every resource Ref and Fn::GetAtt stays a
    ``"<Name>"`` / ``"<Name.Attr>"`` placeholder, so tests can say which resource is meant.
    """
    values: dict[str, Any] = {
        name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
    }
    values.update(parameters)
    values.update(
        {
            "AWS::AccountId": account,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
    )
    definitions = template.get("Conditions", {})
    decided: dict[str, bool] = {}
    resources = template.get("Resources", {})
    physical: dict[str, dict[str, Any]] = {}  # logical id -> resolved properties (for names)

    def condition(name: str) -> bool:
        if name not in decided:
            decided[name] = truth(definitions[name])
        return decided[name]

    def truth(expr: dict) -> bool:
        (fn, args), *_ = expr.items()
        if fn == "Fn::Equals":
            left, right = (resolve(arg) for arg in args)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not truth(args[0])
        if fn == "Fn::And":
            return all(truth(arg) for arg in args)
        if fn == "Fn::Or":
            return any(truth(arg) for arg in args)
        if fn == "Condition":
            return condition(args)
        raise AssertionError(f"unexpected condition function {fn}")

    def properties(logical: str) -> dict[str, Any]:
        if logical not in physical:
            physical[logical] = {}  # cycles resolve to what is known so far
            physical[logical] = resolve(resources[logical].get("Properties", {}))
        return physical[logical]

    def lookup(name: str) -> str:
        if name in values:
            return str(values[name])
        logical, _, attr = name.partition(".")
        if names and logical in resources:
            kind = resources[logical]["Type"]
            make = ATTRS.get((kind, attr)) if attr else REFS.get(kind)
            if make:
                return make(properties(logical), account)
        return f"<{name}>"

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), *_ = node.items()
                if key == "Ref":
                    return NO_VALUE if arg == "AWS::NoValue" else lookup(arg)
                if key == "Fn::If":
                    name, when_true, when_false = arg
                    return resolve(when_true if condition(name) else when_false)
                if key == "Fn::GetAtt":
                    return lookup(arg if isinstance(arg, str) else ".".join(arg))
                if key == "Fn::Sub":
                    text, extra = (arg, {}) if isinstance(arg, str) else arg
                    local = {k: resolve(v) for k, v in extra.items()}
                    return re.sub(
                        r"\$\{([^}!]+)\}",
                        lambda m: str(local[m[1]]) if m[1] in local else lookup(m[1]),
                        text,
                    )
                assert not key.startswith("Fn::"), f"evaluator does not know {key}"
            out = {}
            for key, value in node.items():
                value = resolve(value)
                if value is not NO_VALUE:
                    out[str(key)] = value
            return out
        if isinstance(node, list):
            return [v for v in (resolve(item) for item in node) if v is not NO_VALUE]
        return node if not isinstance(node, str) else str(node)

    kept = {
        name: {**body, "Properties": properties(name)}
        for name, body in resources.items()
        if "Condition" not in body or condition(body["Condition"])
    }
    outputs = {
        name: resolve(body)
        for name, body in template.get("Outputs", {}).items()
        if "Condition" not in body or condition(body["Condition"])
    }
    return {"Resources": kept, "Outputs": outputs}


@dataclass(frozen=True)
class Stack:
    env: str
    account: str
    resources: dict[str, Any]


def stacks(
    template: dict[str, Any],
    accounts: dict[str, str],
    extra: dict[str, str] | None = None,
    per_env: dict[str, dict[str, str]] | None = None,
) -> list[Stack]:
    """The three bootstrap stacks, each in its environment's account, in the order
    infra/README.md deploys them (the first stack in an account creates the OIDC provider).
    ``extra``: parameters of every stack; ``per_env``: of one environment's stack."""
    result, seen = [], set()
    for env in ENVIRONMENTS:
        account = accounts[env]
        params = {
            "Environment": env,
            "CreateOIDCProvider": "false" if account in seen else "true",
            "DevAccountId": accounts["dev"],
            "StagingAccountId": accounts["staging"],
            "ProdAccountId": accounts["prod"],
            **(extra or {}),
            **(per_env or {}).get(env, {}),
        }
        seen.add(account)
        result.append(Stack(env, account, evaluate(template, params, account)["Resources"]))
    return result
