"""A small IAM policy evaluator: enough of AWS's evaluation logic to judge this project's
policies, tested on its own in test_iam_policy_eval.py.

Follows "Policy evaluation logic" (IAM User Guide): an explicit Deny in any applicable policy
wins; within one account an Allow in the identity policy or in a resource policy that names the
principal itself is enough; across accounts both the identity policy and the resource policy
must allow. A resource policy whose principal is the account (``:root``) delegates to that
account's IAM, so in the same account it grants nothing by itself. Supported: Action/NotAction
and Resource/NotResource with ``*``/``?`` wildcards, Principal (AWS, Service, Federated, "*"),
and the condition operators below, with ``...IfExists`` and ``ForAnyValue:``/``ForAllValues:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

Context = dict[str, str | list[str]]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's ``*`` (any run) and ``?`` (one character); nothing else is special."""
    return _compiled(str(pattern), ignore_case).fullmatch(str(value)) is not None


@cache
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """The regex of one IAM pattern, built once (the judge matches the same few hundred
    patterns against every request: building them each time was most of its time)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike compares the six colon-separated parts one by one (wildcards per part)."""
    p, v = str(pattern).split(":", 5), str(value).split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return False
    return all(wildcard(a, b) for a, b in zip(p, v, strict=True))


OPERATORS = {
    "StringEquals": lambda want, got: want == got,
    "StringNotEquals": lambda want, got: want != got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": lambda want, got: wildcard(want, got),
    "StringNotLike": lambda want, got: not wildcard(want, got),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": lambda want, got: not _arn_like(want, got),
    "ArnNotLike": lambda want, got: not _arn_like(want, got),
    "Bool": lambda want, got: str(want).lower() == str(got).lower(),
    "NumericLessThanEquals": lambda want, got: float(got) <= float(want),
    "NumericGreaterThanEquals": lambda want, got: float(got) >= float(want),
}
NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def condition_holds(block: dict[str, Any], context: Context) -> bool:
    """Every operator and every key must hold; values of one key are ORed."""
    for operator, tests in block.items():
        qualifier, _, name = operator.rpartition(":")
        if_exists = name.endswith("IfExists")
        name = name.removesuffix("IfExists")
        if name not in OPERATORS:
            raise AssertionError(f"policy_eval: condition operator {operator} not supported")
        compare = OPERATORS[name]
        for key, wanted in tests.items():
            present = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if present is None:
                if if_exists or (name in NEGATED and not qualifier):
                    continue
                return False
            got = as_list(present)
            wanted = [str(w) for w in as_list(wanted)]
            if name in NEGATED:
                match = [all(compare(w, g) for w in wanted) for g in got]
            else:
                match = [any(compare(w, g) for w in wanted) for g in got]
            # single-valued keys and ForAnyValue: one value matching is enough
            ok = all(match) if qualifier == "ForAllValues" else any(match)
            if not ok:
                return False
    return True


def _matches_any(patterns: Any, value: str, ignore_case: bool = False) -> bool:
    return any(wildcard(p, value, ignore_case) for p in as_list(patterns))


def principal_matches(principal: Any, caller: str) -> bool:
    """``caller`` is a role ARN (or ``service:<name>`` / ``federated:<arn>``)."""
    if principal == "*":
        return True
    account = caller.split(":")[4] if caller.startswith("arn:") else ""
    for kind, values in principal.items():
        for value in as_list(values):
            value = str(value)
            aws_names = ("*", caller, account, f"arn:aws:iam::{account}:root")
            if kind == "AWS" and caller.startswith("arn:") and value in aws_names:
                return True
            if kind == "Service" and caller == f"service:{value}":
                return True
            if kind == "Federated" and caller == f"federated:{value}":
                return True
    return False


def statement_applies(
    statement: dict[str, Any], action: str, resource: str, context: Context, caller: str | None
) -> bool:
    if "Action" in statement and not _matches_any(statement["Action"], action, True):
        return False
    if "NotAction" in statement and _matches_any(statement["NotAction"], action, True):
        return False
    if "Resource" in statement and not _matches_any(statement["Resource"], resource):
        return False
    if "NotResource" in statement and _matches_any(statement["NotResource"], resource):
        return False
    if (
        caller is not None
        and "Principal" in statement
        and not principal_matches(statement["Principal"], caller)
    ):
        return False
    return condition_holds(statement.get("Condition", {}), context)


@dataclass(frozen=True)
class Policy:
    label: str  # where the document lives, e.g. "role churn-model-github-deploy-dev/pipeline"
    document: dict[str, Any]
    resource_based: bool = False


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # the statement that decided, or why nothing allowed
    grants: tuple[str, ...] = ()  # "<policy label>#<Sid>" of every Allow the decision needed


def _find(policies: list[Policy], effect: str, action, resource, context, caller) -> list[str]:
    found = []
    for policy in policies:
        for statement in as_list(policy.document.get("Statement", [])):
            if statement.get("Effect") != effect:
                continue
            who = caller if policy.resource_based else None
            if statement_applies(statement, action, resource, context, who):
                found.append(f"{policy.label}#{statement.get('Sid', '?')}")
    return found


def decide(
    caller: str,
    action: str,
    resource: str,
    context: Context,
    identity: list[Policy],
    resource_policies: list[Policy],
    resource_account: str | None,
    resource_policy_required: bool = False,
) -> Decision:
    """Is ``caller`` (a role ARN) allowed ``action`` on ``resource``?

    ``resource_account`` None means the resource has no account (S3) or is the caller's.
    ``resource_policy_required``: the resource policy must allow even in the same account
    (role trust policies for sts:AssumeRole).
    """
    caller_account = caller.split(":")[4]
    denies = _find(identity + resource_policies, "Deny", action, resource, context, caller)
    if denies:
        return Decision(False, f"explicitly denied by {denies[0]}")
    by_identity = _find(identity, "Allow", action, resource, context, caller)
    by_resource = _find(resource_policies, "Allow", action, resource, context, caller)
    named = _names_caller(resource_policies, action, resource, context, caller)
    cross = resource_account not in (None, caller_account)
    if cross or resource_policy_required:
        if not by_resource:
            where = "the resource policy" if resource_policies else "no resource policy"
            return Decision(False, f"{where} does not allow it for {caller}")
        if by_identity:
            return Decision(True, by_identity[0], (by_identity[0], by_resource[0]))
        if not cross and named:
            return Decision(True, named[0], (named[0],))
        return Decision(False, "no identity policy statement allows it")
    if by_identity:
        return Decision(True, by_identity[0], (by_identity[0],))
    if named:
        return Decision(True, named[0], (named[0],))
    return Decision(False, "no identity policy statement allows it")


def _names_caller(policies, action, resource, context, caller) -> list[str]:
    """Resource policy Allows whose principal is the caller's ARN itself (not its account)."""
    found = []
    for policy in policies:
        for statement in as_list(policy.document.get("Statement", [])):
            principal = statement.get("Principal")
            if statement.get("Effect") != "Allow" or not isinstance(principal, dict):
                continue
            if caller in as_list(principal.get("AWS", [])) and statement_applies(
                statement, action, resource, context, caller
            ):
                found.append(f"{policy.label}#{statement.get('Sid', '?')}")
    return found
