"""Every AWS request the CLI makes in the GitOps loop is allowed by the rendered bootstrap.yml,
for every option combination and account layout (the judge: iam_judge.py)."""

from __future__ import annotations

import pytest
from iam_cases import CASES, layout_stacks, recorded, rendered
from iam_flows import NOT_DRIVEN
from iam_judge import denied_lines, judge


def other_paths(combo: dict[str, str]) -> set[str]:
    """Deletes a deploy makes off the release path: pruning, a Failed endpoint replaced, an
    instance type change (autoscaling deregistered), capture turned off (monitor schedule)."""
    paths = {"sagemaker:DeleteModel"}
    if combo["deployment"] != "batch":
        paths.add("sagemaker:DeleteEndpoint")
    if combo["deployment"] == "realtime":
        paths |= {
            "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:DeregisterScalableTarget",
        }
    if combo["monitoring"] == "yes":
        paths.add("scheduler:DeleteSchedule")
    return paths


@pytest.mark.parametrize(("combo", "layout"), CASES)
def test_every_request_of_the_loop_is_allowed(combo, layout, bake_once, tmp_path) -> None:
    jobs, template = rendered(bake_once, combo)
    stacks = layout_stacks(template, layout)
    requests = recorded(combo, layout, jobs, stacks, tmp_path)

    verdicts, orphans = judge(requests, jobs, stacks)

    assert orphans == set(), f"commands no workflow job runs: {sorted(orphans)}"
    assert len(verdicts) > 50
    denied = denied_lines(verdicts)
    assert not denied, "\n" + "\n".join(denied)
    # the deploy paths beside a release's (iam_flows.other_deploy_paths) are judged too
    judged = {v.check.action for v in verdicts}
    assert judged >= other_paths(combo), sorted(other_paths(combo) - judged)
    driven = {r.command for r in requests}
    for job in jobs:
        for command in job.commands:
            assert command in driven or command in NOT_DRIVEN, f"{job} {command}: not driven"
