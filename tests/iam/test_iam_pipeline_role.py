"""The training pipeline's own calls through the IAM judge (tests/iam/pipeline_role.py): the Tune
step's tuning job and the MLflow tracking server are judged as the SageMaker execution role, and
propose's listing of the trials as the dev deploy role."""

from __future__ import annotations

from iam_cases import layout_stacks, recorded, rendered
from iam_judge import judge
from option_matrix import COMBINATIONS

TUNING_CALLS = {
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:AddTags",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "iam:PassRole",
}
MLFLOW_CALLS = {
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:SetTag",
    "sagemaker-mlflow:UpdateRun",
}


def test_the_pipeline_role_is_judged_on_tuning_and_tracking(bake_once, tmp_path) -> None:
    combo = COMBINATIONS[0]
    jobs, template = rendered(bake_once, combo)
    stacks = layout_stacks(template, "three-accounts")
    requests = recorded(combo, "three-accounts", jobs, stacks, tmp_path)
    verdicts, _ = judge(requests, jobs, stacks)

    as_execution_role = {
        v.check.action for v in verdicts if v.allowed and v.role.endswith("-sagemaker-execution")
    }
    assert as_execution_role >= TUNING_CALLS | MLFLOW_CALLS, sorted(
        (TUNING_CALLS | MLFLOW_CALLS) - as_execution_role
    )
    trials = [
        v
        for v in verdicts
        if v.check.action == "sagemaker:ListTrainingJobsForHyperParameterTuningJob"
        and "propose" in v.job
    ]
    assert trials and all(v.allowed for v in trials), [v.line() for v in trials]
    assert all(":123456789012:hyper-parameter-tuning-job/" in v.check.resource for v in trials)
