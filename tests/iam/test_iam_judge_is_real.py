"""The judge is a real judge: removing any one granted action that the loop uses, from the
statement that grants it, makes a request fail naming that action (evaluated in-process against
the mutated policies, on the recordings the allowed-requests test made)."""

from __future__ import annotations

import pytest
from iam_cases import layout_stacks, recorded, rendered
from iam_judge import World, decide_check, judge, without
from option_matrix import COMBINATIONS, combination_id

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
