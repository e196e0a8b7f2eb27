"""The customer-managed KMS key through the IAM judge (iam_cases.KMS_LAYOUT): the loop runs with
[tool.sagemaker-gitops].kms_key_arn set, and the KMS calls AWS makes for it (SSE-KMS objects,
endpoint volume grants) are judged against the role policies and the key policy."""

from __future__ import annotations

import pytest
from iam_cases import KMS_LAYOUT, kms_key_arn, layout_stacks, recorded, rendered
from iam_judge import World, decide_check, judge, without
from option_matrix import DEFAULT_COMBINATION

KMS_ACTIONS = {"kms:CreateGrant", "kms:GenerateDataKey", "kms:Decrypt"}


@pytest.fixture
def judged(bake_once, tmp_path):
    jobs, template = rendered(bake_once, DEFAULT_COMBINATION)
    stacks = layout_stacks(template, KMS_LAYOUT)
    requests = recorded(DEFAULT_COMBINATION, KMS_LAYOUT, jobs, stacks, tmp_path)
    verdicts, _ = judge(requests, jobs, stacks)
    return requests, verdicts, World.of(stacks)


def test_the_loop_uses_the_key_and_every_kms_call_is_judged(judged) -> None:
    requests, verdicts, _ = judged
    key = kms_key_arn(KMS_LAYOUT)
    configs = [r for r in requests if r.operation == "CreateEndpointConfig"]
    assert configs and all(r.params.get("KmsKeyId") == key for r in configs)
    kms = [v for v in verdicts if v.check.action.startswith("kms:")]
    assert {v.check.action for v in kms} >= KMS_ACTIONS
    assert all(v.check.resource == key for v in kms)
    assert all(v.allowed for v in kms), [v.line() for v in kms if not v.allowed]
    # both sides decided: the role's policy and the key policy
    grants = {g.split("#")[0] for v in kms for g in v.grants}
    assert any(g.startswith("key policy of dev's") for g in grants), grants
    assert any(g.startswith("role ") for g in grants), grants


def test_removing_a_kms_grant_fails_naming_it(judged) -> None:
    """Each KMS grant the loop uses, from a role policy or from the key policy: without it, a
    request is denied and the line names the KMS action."""
    _, verdicts, world = judged
    uses: dict[tuple[str, str], list] = {}
    for verdict in verdicts:
        if verdict.allowed and verdict.check.action.startswith("kms:"):
            for grant in verdict.grants:
                uses.setdefault((grant, verdict.check.action), []).append(verdict)
    assert any("ProjectRolesGrantToSageMaker" in g for g, _ in uses)
    assert any("KmsGrantEndpointVolumesToSageMaker" in g for g, _ in uses)
    for (grant, action), affected in sorted(uses.items()):
        mutated = without(world, grant, action)
        denied = [
            decide_check(v.job, v.caller, v.check, mutated).line()
            for v in affected
            if not decide_check(v.job, v.caller, v.check, mutated).allowed
        ]
        assert denied, f"{action} removed from {grant}: every request still allowed"
        assert all(action in line for line in denied), denied
