"""The definition expression language: Get, Std:Join, Std:JsonGet, conditions, parameters, order."""

from __future__ import annotations

from typing import Any

import pytest

from ci_scripts.backends.local.expressions import Resolver, parse_path
from ci_scripts.backends.local.pipeline import build_graph, resolve_parameters
from ci_scripts.errors import CIError

DOCS = {"s3://b/eval.json": {"metrics": {"auc": {"value": 0.93}}, "items": [{"n": 4}]}}


def resolver(**steps: dict[str, Any]) -> Resolver:
    return Resolver(
        parameters={"Threshold": 0.9, "Name": "churn"},
        execution={"PipelineExecutionId": "exec-1"},
        steps=steps,
        read_json_uri=lambda uri: DOCS[uri],
    )


def test_parse_path_handles_dots_quoted_keys_and_indexes() -> None:
    assert parse_path("A.Outputs['train'].S3Output[0]") == ["A", "Outputs", "train", "S3Output", 0]
    assert parse_path('$.a["b c"].d') == ["a", "b c", "d"]
    with pytest.raises(CIError, match="cannot parse"):
        parse_path("a..b")


def test_get_parameters_execution_and_step_properties() -> None:
    r = resolver(
        Pre={"ProcessingOutputConfig": {"Outputs": {"train": {"S3Output": {"S3Uri": "s3://x"}}}}}
    )
    assert r.resolve({"Get": "Parameters.Threshold"}) == 0.9
    assert r.resolve({"Get": "Execution.PipelineExecutionId"}) == "exec-1"
    ref = {"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert r.resolve({"nested": [ref]}) == {"nested": ["s3://x"]}
    with pytest.raises(CIError, match="unknown pipeline parameter 'Nope'"):
        r.resolve({"Get": "Parameters.Nope"})
    with pytest.raises(CIError, match="step 'Later' has not run"):
        r.resolve({"Get": "Steps.Later.ModelArtifacts.S3ModelArtifacts"})


def test_join_renders_each_value_as_sagemaker_does() -> None:
    r = resolver()
    joined = r.resolve(
        {"Std:Join": {"On": "/", "Values": ["s3:/", {"Get": "Parameters.Name"}, 3, True, 0.5]}}
    )
    assert joined == "s3://churn/3/true/0.5"


def test_json_get_reads_property_files_and_s3_uris() -> None:
    r = resolver(Eval={"PropertyFiles": {"Report": "s3://b/eval.json"}})
    by_file = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"},
            "Path": "metrics.auc.value",
        }
    }
    assert r.resolve(by_file) == 0.93
    assert r.resolve({"Std:JsonGet": {"S3Uri": "s3://b/eval.json", "Path": "items[0].n"}}) == 4
    with pytest.raises(CIError, match="no property 'f1'"):
        r.resolve({"Std:JsonGet": {"S3Uri": "s3://b/eval.json", "Path": "metrics.f1.value"}})


def test_conditions_compare_typed_values() -> None:
    r = resolver(Eval={"PropertyFiles": {"Report": "s3://b/eval.json"}})
    auc = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"},
            "Path": "metrics.auc.value",
        }
    }
    threshold = {"Get": "Parameters.Threshold"}
    assert r.condition({"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": threshold})
    assert not r.condition({"Type": "LessThan", "LeftValue": auc, "RightValue": "0.5"})
    assert r.condition(
        {"Type": "In", "QueryValue": {"Get": "Parameters.Name"}, "Values": ["x", "churn"]}
    )
    assert r.condition(
        {"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}
    )
    assert r.condition(
        {
            "Type": "Or",
            "Conditions": [
                {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                {"Type": "Equals", "LeftValue": "a", "RightValue": "a"},
            ],
        }
    )
    with pytest.raises(CIError, match="cannot compare"):
        r.condition({"Type": "GreaterThan", "LeftValue": "abc", "RightValue": 1})


def test_parameters_default_override_and_cast() -> None:
    definition = {
        "Parameters": [
            {"Name": "Threshold", "Type": "Float", "DefaultValue": 0.9},
            {"Name": "Count", "Type": "Integer", "DefaultValue": 2},
            {"Name": "Flag", "Type": "Boolean", "DefaultValue": False},
        ]
    }
    assert resolve_parameters(definition, {"Threshold": "0.5", "Flag": "true"}) == {
        "Threshold": 0.5,
        "Count": 2,
        "Flag": True,
    }
    with pytest.raises(CIError, match="'Count': 'two' is not a valid Integer"):
        resolve_parameters(definition, {"Count": "two"})
    with pytest.raises(CIError, match="'Bogus': the pipeline has no such parameter"):
        resolve_parameters(definition, {"Bogus": "1"})


def step(name: str, kind: str = "Processing", args: Any = None, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Type": kind, "Arguments": args or {}, **extra}


def test_dependencies_come_from_get_references_depends_on_and_condition_branches() -> None:
    graph = build_graph(
        {
            "Steps": [
                step("B", args={"x": {"Get": "Steps.A.ProcessingJobName"}}),
                step("C", DependsOn=["B"]),
                step("A"),
                step(
                    "Check",
                    "Condition",
                    {
                        "Conditions": [],
                        "IfSteps": [step("Yes", "Fail")],
                        "ElseSteps": [step("No", "Fail", DependsOn=["C"])],
                    },
                ),
            ]
        }
    )
    assert graph["B"].deps == {"A"}
    assert graph["C"].deps == {"B"}
    assert graph["Check"].deps == set()  # nested steps' references are their own
    assert graph["Yes"].gate == ("Check", True) and graph["Yes"].deps == {"Check"}
    assert graph["No"].deps == {"Check", "C"} and graph["No"].gate == ("Check", False)


def test_bad_graphs_are_refused_naming_the_steps() -> None:
    with pytest.raises(CIError, match="step B depends on unknown step 'Ghost'"):
        build_graph({"Steps": [step("B", DependsOn=["Ghost"])]})
    with pytest.raises(CIError, match="steps A, B depend on each other"):
        build_graph({"Steps": [step("A", DependsOn=["B"]), step("B", DependsOn=["A"])]})
    with pytest.raises(CIError, match="'A' is used twice"):
        build_graph({"Steps": [step("A"), step("A")]})
