"""deployment=batch through the IAM judge: the batch loop (iam_flows.run_batch_loop) really makes
the batch calls the judge then checks, and the batch render grants nothing for endpoints."""

from __future__ import annotations

from iam_cases import layout_stacks, recorded, rendered
from iam_judge import roles
from option_matrix import BATCH_COMBINATION
from policy_eval import as_list

BATCH_CALLS = {
    "sagemaker:CreateModel",
    "sagemaker:CreatePipeline",
    "sagemaker:AddTags",
    "sagemaker:StartPipelineExecution",
    "sagemaker:ListPipelineExecutions",
    "sagemaker:DescribePipelineExecution",
    "sagemaker:ListPipelineParametersForExecution",
    "sagemaker:ListPipelineExecutionSteps",
    "sagemaker:DescribeTransformJob",
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:GetSchedule",
    "s3:PutObject",
}
ENDPOINT_ACTIONS = (
    "sagemaker:createendpoint",
    "sagemaker:updateendpoint",
    "sagemaker:invokeendpoint",
    "sagemaker:createendpointconfig",
    "sagemaker:describeendpoint",
    "application-autoscaling:",
)


def test_the_batch_loop_makes_the_batch_calls(bake_once, tmp_path) -> None:
    jobs, template = rendered(bake_once, BATCH_COMBINATION)
    stacks = layout_stacks(template, "three-accounts")
    requests = recorded(BATCH_COMBINATION, "three-accounts", jobs, stacks, tmp_path)
    made = {str(r) for r in requests}
    assert made >= BATCH_CALLS, sorted(BATCH_CALLS - made)
    # prod's gate reads staging's batch job as staging's read-only role (another account)
    readonly = {str(r) for r in requests if r.identity and r.identity.endswith("readonly-staging")}
    assert {"sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions"} <= readonly
    assert not any(
        call.startswith(("sagemaker:InvokeEndpoint", "sagemaker:CreateEndpoint")) for call in made
    )


def test_a_batch_render_grants_nothing_for_endpoints(bake_once) -> None:
    _, template = rendered(bake_once, BATCH_COMBINATION)
    for stack in layout_stacks(template, "three-accounts"):
        for role in roles([stack]).values():
            for policy in role.identity_policies():
                for statement in as_list(policy.document["Statement"]):
                    for action in as_list(statement["Action"]):
                        assert not action.lower().startswith(ENDPOINT_ACTIONS), (
                            f"{policy.label} {statement.get('Sid')}: {action}"
                        )
