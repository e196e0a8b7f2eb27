"""The judge is a real judge: removing any one granted action that the loop uses, from the
statement that grants it, makes a request fail naming that action (evaluated in-process against
the mutated policies, on the recordings the allowed-requests test made)."""

from __future__ import annotations

import pytest
from iam_cases import layout_stacks, recorded, rendered
from iam_judge import (
    SCHEDULER,
    Role,
    World,
    decide_check,
    judge,
    schedule_target_verdicts,
    without,
)
from iam_recorder import Request
from option_matrix import COMBINATIONS, combination_id
from sar_actions import MOTO_ACCOUNT

# Three accounts exercise every cross-account grant; the deployment/monitoring choices change
# which statements exist (api_gateway changes no IAM statement).
CASES = [
    pytest.param(combo, id=combination_id(combo))
    for combo in COMBINATIONS
    if combo["api_gateway"] == "no"
]


@pytest.mark.parametrize("combo", CASES)
def test_removing_any_used_grant_fails_naming_it(combo, bake_once, tmp_path) -> None:
    jobs, template = rendered(bake_once, combo)
    stacks = layout_stacks(template, "three-accounts")
    requests = recorded(combo, "three-accounts", jobs, stacks, tmp_path)
    verdicts, _ = judge(requests, jobs, stacks)
    world = World.of(stacks)
    uses: dict[tuple[str, str], list] = {}
    for verdict in verdicts:
        if verdict.allowed:
            for grant in verdict.grants:
                uses.setdefault((grant, verdict.check.action), []).append(verdict)
    assert len(uses) > 40

    survivors = []
    for (grant, action), affected in sorted(uses.items()):
        mutated = without(world, grant, action)
        lines = [decide_check(v.job, v.caller, v.check, mutated) for v in affected]
        denied = [v.line() for v in lines if not v.allowed]
        if not denied:
            survivors.append(f"{action} removed from {grant}: every request still allowed")
        else:
            assert all(action in line for line in denied), denied
    assert not survivors, "grants the judge cannot see (redundant?):\n" + "\n".join(survivors)


def _scheduler_world(trusted_service: str) -> World:
    role = Role(
        "arn:aws:iam::222222222222:role/p-staging-batch-scheduler",
        "222222222222",
        {
            "RoleName": "p-staging-batch-scheduler",
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": trusted_service},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": "222222222222"}},
                    }
                ]
            },
            "Policies": [
                {
                    "PolicyName": "start",
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Sid": "Start",
                                "Effect": "Allow",
                                "Action": "sagemaker:StartPipelineExecution",
                                "Resource": "arn:aws:sagemaker:eu-west-1:222222222222:"
                                "pipeline/p-staging-batch",
                            }
                        ]
                    },
                }
            ],
        },
    )
    return World({role.arn: role}, [])


def test_a_schedule_whose_role_scheduler_cannot_assume_or_use_is_denied() -> None:
    """The schedule's own calls (Scheduler assuming its role, the role starting the pipeline)
    are judged too, though no workflow job makes them."""
    request = Request(
        "deploy --env staging",
        None,
        "scheduler",
        "CreateSchedule",
        {
            "Name": "p-staging-batch",
            "Target": {
                "Arn": f"arn:aws:sagemaker:eu-west-1:{MOTO_ACCOUNT}:pipeline/p-staging-batch",
                "RoleArn": "arn:aws:iam::222222222222:role/p-staging-batch-scheduler",
                "SageMakerPipelineParameters": {"PipelineParameterList": []},
            },
        },
    )
    good = schedule_target_verdicts(request, _scheduler_world(SCHEDULER), "123456789012")
    assert [v.allowed for v in good] == [True, True]
    assert good[1].check.resource.endswith(":222222222222:pipeline/p-staging-batch")

    untrusted = schedule_target_verdicts(
        request, _scheduler_world("lambda.amazonaws.com"), "123456789012"
    )
    assert [v.allowed for v in untrusted] == [False, True]
    assert "sts:AssumeRole" in untrusted[0].line()

    other = {**request.params, "Target": {**request.params["Target"], "Arn": "arn:aws:sagemaker:"
             f"eu-west-1:{MOTO_ACCOUNT}:pipeline/p-staging-monitor"}}  # fmt: skip
    wrong = schedule_target_verdicts(
        Request(request.command, None, "scheduler", "UpdateSchedule", other),
        _scheduler_world(SCHEDULER),
        "123456789012",
    )
    assert [v.allowed for v in wrong] == [True, False]
