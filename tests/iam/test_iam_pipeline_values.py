"""pipeline_values.Execution on small definitions: what a step's job gets is what SageMaker
Pipelines would give it (parameters, joins, earlier steps' outputs, decided conditions)."""

from __future__ import annotations

import pytest
from pipeline_values import BEST_TRIAL, EXECUTION_ID, Execution, job_name

OUT = "s3://bucket/runs"
DEFINITION = {
    "Parameters": [
        {"Name": "InputUrl", "Type": "String", "DefaultValue": "s3://bucket/data.csv"},
        {"Name": "CaptureUri", "Type": "String", "DefaultValue": ""},
    ],
    "Steps": [
        {
            "Name": "Prepare",
            "Type": "Processing",
            "Arguments": {
                "ProcessingInputs": [{"S3Input": {"S3Uri": {"Get": "Parameters.InputUrl"}}}],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "train",
                            "S3Output": {
                                "S3Uri": {
                                    "Std:Join": {
                                        "On": "/",
                                        "Values": [OUT, {"Get": "Execution.PipelineExecutionId"}],
                                    }
                                }
                            },
                        }
                    ]
                },
            },
        },
        {"Name": "Tune", "Type": "Tuning", "Arguments": {}},
        {
            "Name": "Captured",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {
                        "Type": "Not",
                        "Condition": {
                            "Type": "Equals",
                            "LeftValue": {"Get": "Parameters.CaptureUri"},
                            "RightValue": "",
                        },
                    }
                ],
                "IfSteps": [
                    {
                        "Name": "Capture",
                        "Type": "Processing",
                        "Arguments": {
                            "Train": {
                                "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train']"
                                ".S3Output.S3Uri"
                            },
                            "Best": {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"},
                        },
                    }
                ],
                "ElseSteps": [{"Name": "Skipped", "Type": "Fail", "Arguments": {}}],
            },
        },
    ],
}


def _names(execution: Execution) -> list[str]:
    return [step["Name"] for step in execution.run()]


def test_parameters_joins_and_earlier_steps_resolve() -> None:
    execution = Execution(DEFINITION, {"CaptureUri": "s3://bucket/capture"})
    steps = {step["Name"]: step["Arguments"] for step in execution.run()}
    assert steps["Prepare"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://bucket/data.csv"
    assert steps["Capture"] == {"Train": f"{OUT}/{EXECUTION_ID}", "Best": BEST_TRIAL}
    assert job_name("Prepare") == f"pipelines-{EXECUTION_ID}-Prepare-0A1b2C3d4E"


def test_a_condition_on_parameters_alone_is_decided() -> None:
    assert _names(Execution(DEFINITION, {"CaptureUri": "s3://b/c"})) == [
        "Prepare",
        "Tune",
        "Captured",
        "Capture",
    ]
    assert _names(Execution(DEFINITION)) == ["Prepare", "Tune", "Captured", "Skipped"]


def test_a_condition_on_a_step_result_takes_both_branches() -> None:
    gate = {
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.X.P"}, "Path": "m"}},
        "RightValue": 0.9,
    }
    steps = [dict(s) for s in DEFINITION["Steps"]]
    steps[2] = {**steps[2], "Arguments": {**steps[2]["Arguments"], "Conditions": [gate]}}
    names = _names(Execution({**DEFINITION, "Steps": steps}))
    assert names[-2:] == ["Capture", "Skipped"]


def test_a_parameter_the_definition_does_not_declare_is_refused() -> None:
    with pytest.raises(AssertionError, match="Unknown"):
        Execution(DEFINITION, {"Unknown": "x"})
