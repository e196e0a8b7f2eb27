"""The judge's IAM evaluator on its own: each rule it implements, allowed and refused."""

from __future__ import annotations

import pytest
from policy_eval import Policy, condition_holds, decide, wildcard

ROLE = "arn:aws:iam::222222222222:role/deployer"
OTHER = "arn:aws:iam::222222222222:role/other"
BUCKET = "arn:aws:s3:::artifacts"


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra):
    return {"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def identity(*statements):
    return [Policy("identity", doc(*statements))]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x", True),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::c/k", False),
        ("model/churn-?", "model/churn-1", True),
        ("model/churn-?", "model/churn-10", False),
        ("a.b", "aXb", False),  # only * and ? are special
    ],
)
def test_wildcards(pattern, value, expected):
    assert wildcard(pattern, value) is expected


def test_actions_match_case_insensitively_with_wildcards():
    policies = identity(allow("SageMaker:Describe*", "*"))
    assert decide(ROLE, "sagemaker:DescribeEndpoint", "x", {}, policies, [], None).allowed
    assert not decide(ROLE, "sagemaker:CreateEndpoint", "x", {}, policies, [], None).allowed


def test_not_action_and_not_resource():
    policies = identity(
        {"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/secret/*"}
    )
    assert decide(ROLE, "s3:GetObject", f"{BUCKET}/k", {}, policies, [], None).allowed
    assert not decide(ROLE, "s3:GetObject", f"{BUCKET}/secret/k", {}, policies, [], None).allowed
    assert not decide(ROLE, "iam:PassRole", "r", {}, policies, [], None).allowed


def test_explicit_deny_wins():
    policies = identity(
        allow("s3:*", "*"),
        {"Sid": "D", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"},
    )
    decision = decide(ROLE, "s3:PutObject", f"{BUCKET}/k", {}, policies, [], None)
    assert not decision.allowed and "identity#D" in decision.reason


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        ({"StringEquals": {"k": "a"}}, {"k": "a"}, True),
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEquals": {"k": "a"}}, {}, False),
        ({"StringNotEquals": {"k": "a"}}, {}, True),
        ({"StringLike": {"s3:prefix": "monitoring/*"}}, {"s3:prefix": "monitoring/prod/"}, True),
        ({"StringLike": {"s3:prefix": "monitoring/*"}}, {"s3:prefix": "models/"}, False),
        (
            {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/deployer"}},
            {"aws:PrincipalArn": ROLE},
            True,
        ),
        ({"ArnEquals": {"aws:PrincipalArn": OTHER}}, {"aws:PrincipalArn": ROLE}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "p"}}, {"aws:TagKeys": ["q", "p"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": "p"}}, {"aws:TagKeys": ["q", "p"]}, False),
        # every operator and every key must hold
        ({"StringEquals": {"k": "a", "j": "b"}}, {"k": "a", "j": "c"}, False),
    ],
)
def test_conditions(block, context, expected):
    assert condition_holds(block, context) is expected


def test_unknown_operator_is_an_error_not_a_silent_pass():
    with pytest.raises(AssertionError, match="DateLessThan"):
        condition_holds({"DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, {})


def bucket_policy(principal, **extra):
    statement = {"Sid": "R", "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject"}
    return [Policy("bucket", doc({**statement, "Resource": f"{BUCKET}/*", **extra}), True)]


def test_cross_account_needs_both_identity_and_resource_policy():
    mine = identity(allow("s3:GetObject", f"{BUCKET}/*"))
    theirs = bucket_policy({"AWS": "arn:aws:iam::222222222222:root"})
    key = f"{BUCKET}/k"
    assert decide(ROLE, "s3:GetObject", key, {}, mine, theirs, "111111111111").allowed
    assert not decide(ROLE, "s3:GetObject", key, {}, mine, [], "111111111111").allowed
    assert not decide(ROLE, "s3:GetObject", key, {}, [], theirs, "111111111111").allowed


def test_resource_policy_conditions_see_the_principal_arn():
    mine = identity(allow("s3:GetObject", f"{BUCKET}/*"))
    theirs = bucket_policy(
        {"AWS": "arn:aws:iam::222222222222:root"},
        Condition={"ArnEquals": {"aws:PrincipalArn": OTHER}},
    )
    context = {"aws:PrincipalArn": ROLE}
    assert not decide(ROLE, "s3:GetObject", f"{BUCKET}/k", context, mine, theirs, "1").allowed


def test_same_account_account_principal_delegates_but_role_principal_grants():
    key = f"{BUCKET}/k"
    root = bucket_policy({"AWS": "arn:aws:iam::222222222222:root"})
    assert not decide(ROLE, "s3:GetObject", key, {}, [], root, None).allowed
    named = bucket_policy({"AWS": ROLE})
    assert decide(ROLE, "s3:GetObject", key, {}, [], named, None).allowed


def test_trust_policy_is_required_even_in_the_same_account():
    mine = identity(allow("sts:AssumeRole", OTHER))
    trust = [
        Policy(
            "trust",
            doc(
                {
                    "Sid": "T",
                    "Effect": "Allow",
                    "Principal": {"AWS": "x"},
                    "Action": "sts:AssumeRole",
                }
            ),
            True,
        )
    ]
    decision = decide(ROLE, "sts:AssumeRole", OTHER, {}, mine, trust, None, True)
    assert not decision.allowed
    trust = [
        Policy(
            "trust",
            doc(
                {
                    "Sid": "T",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                    "Action": "sts:AssumeRole",
                }
            ),
            True,
        )
    ]
    assert decide(ROLE, "sts:AssumeRole", OTHER, {}, mine, trust, None, True).allowed
