"""One execution of a pipeline definition, as SageMaker Pipelines resolves it: which steps run and
the arguments each step's job gets, for the IAM judge.

A definition's arguments hold expressions ("Pipeline definition JSON schema",
https://aws-sagemaker-mlops.github.io/sagemaker-model-building-pipeline-definition-JSON-schema/):
``{"Get": "Parameters.X"}`` (the execution's value, else the default), ``{"Get":
"Execution.PipelineExecutionId"}``, ``{"Get": "Steps.S.<property>"}`` (a property of an earlier
step: a processing output's S3Uri, a tuning job's best trial, a training job's model artifacts)
and ``{"Std:Join": ...}``. Values that name no resource (a property file's metric, a tuned
hyperparameter) resolve to a ``<...>`` placeholder: the judge reads resources only.

A Condition step whose conditions depend on parameters alone is decided; one that reads a
step's result (the quality gate) may go either way, so both branches run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# SageMaker Pipelines' execution ids are 12 lowercase characters; its jobs are named
# pipelines-<execution id>-<step name>-<suffix> (the execution role's grants pin that prefix),
# but a tuning job's name is capped at 32 characters: <execution id>-<step>-<suffix>.
EXECUTION_ID = "a1b2c3d4e5f6"
SUFFIX = "0A1b2C3d4E"
TUNING_JOB = f"{EXECUTION_ID}-Tune-{SUFFIX}"
BEST_TRIAL = f"{TUNING_JOB}-001-0a1b2c3d"


def job_name(step: str) -> str:
    """The name Pipelines gives the job of ``step`` (Processing, Training, Transform)."""
    return f"pipelines-{EXECUTION_ID}-{step}-{SUFFIX}"


@dataclass
class Execution:
    """One execution: its parameter values and the resolved arguments of the steps so far."""

    definition: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> step, resolved

    def __post_init__(self) -> None:
        defaults = {p["Name"]: p.get("DefaultValue") for p in self.definition.get("Parameters", [])}
        unknown = sorted(set(self.parameters) - set(defaults))
        assert not unknown, f"parameters the definition does not declare: {unknown}"
        self.parameters = {**defaults, **self.parameters}

    def run(self) -> Iterator[dict[str, Any]]:
        """Each step that runs, in definition order, its Arguments resolved (Condition steps'
        branches inline, after the condition step itself)."""
        yield from self._run(self.definition.get("Steps", []))

    def _run(self, steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for step in steps:
            if step["Type"] == "Condition":
                arguments = step["Arguments"]
                decided = [self.condition(c) for c in arguments.get("Conditions", [])]
                yield {**step, "Arguments": {}}
                if False not in decided:
                    yield from self._run(arguments.get("IfSteps", []))
                if None in decided or False in decided:
                    yield from self._run(arguments.get("ElseSteps", []))
                continue
            resolved = {**step, "Arguments": self.value(step.get("Arguments", {}))}
            self.steps[step["Name"]] = resolved
            yield resolved

    def condition(self, condition: dict[str, Any]) -> bool | None:
        """True/False when it depends on parameters alone, else None (either way)."""
        kind = condition["Type"]
        if kind == "Not":
            inner = self.condition(condition["Condition"])
            return None if inner is None else not inner
        if kind == "Equals":
            left, right = self.value(condition["LeftValue"]), self.value(condition["RightValue"])
            if any(isinstance(v, str) and v.startswith("<") for v in (left, right)):
                return None
            return str(left) == str(right)
        return None

    def value(self, node: Any) -> Any:
        """``node`` with every expression replaced by its value in this execution."""
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Get"}:
            return self.get(node["Get"])
        if set(node) == {"Std:Join"}:
            join = node["Std:Join"]
            return str(join["On"]).join(str(self.value(v)) for v in join["Values"])
        if set(node) == {"Std:JsonGet"}:
            return f"<JsonGet {node['Std:JsonGet'].get('Path')}>"
        return {key: self.value(value) for key, value in node.items()}

    def get(self, path: str) -> Any:
        if path.startswith("Parameters."):
            return self.parameters[path.removeprefix("Parameters.")]
        if path == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if path.startswith("Steps."):
            step, _, rest = path.removeprefix("Steps.").partition(".")
            return self.step_property(step, rest)
        return f"<{path}>"

    def step_property(self, name: str, path: str) -> Any:
        """A property of step ``name`` (which ran before: a definition only refers back)."""
        step = self.steps[name]
        arguments = step["Arguments"]
        if step["Type"] == "Tuning":
            if path.endswith("TrainingJobName") and (
                path.startswith("TrainingJobSummaries[") or path.startswith("BestTrainingJob.")
            ):
                return BEST_TRIAL
            if path == "HyperParameterTuningJobName":
                return TUNING_JOB
            return f"<Steps.{name}.{path}>"
        if step["Type"] == "Training" and path == "ModelArtifacts.S3ModelArtifacts":
            output = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
            return f"{output}/{job_name(name)}/output/model.tar.gz"
        found = _walk(arguments, path)
        return f"<Steps.{name}.{path}>" if found is None else found


def _walk(node: Any, path: str) -> Any:
    """``ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri`` in a step's arguments: a list
    indexed by a name is the element whose ``...Name`` field is that name."""
    for key, index in re.findall(r"([A-Za-z0-9]+)(?:\[([^\]]+)\])?", path):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
        if index:
            wanted = index.strip("'\"")
            if index.isdigit():
                node = node[int(index)] if isinstance(node, list) else None
            elif isinstance(node, list):
                node = next(
                    (
                        i
                        for i in node
                        if any(k.endswith("Name") and v == wanted for k, v in i.items())
                    ),
                    None,
                )
            else:
                node = node.get(wanted) if isinstance(node, dict) else None
    return node
