"""Evaluate the expression language of a SageMaker pipeline definition, locally.

A definition's arguments are JSON with placeholders that SageMaker resolves at run time:
``{"Get": "Parameters.X"}``, ``{"Get": "Execution.PipelineExecutionId"}``,
``{"Get": "Steps.S.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}``,
``{"Std:Join": {"On": "/", "Values": [...]}}``,
``{"Std:JsonGet": {"PropertyFile": ..., "Path": ...}}``,
and the conditions of Condition steps. The local backend resolves them the same way, from the
parameters of the run and the properties of the steps that already ran.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from ci_scripts.errors import CIError

# `.Name`, `['key']`, `["key"]` or `[0]`: the property path syntax of Get and of JsonGet paths.
_TOKEN = re.compile(
    r"""\.?([A-Za-z_][\w:-]*)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(\d+)\s*\]"""
)


def parse_path(path: str) -> list[str | int]:
    """``a.b['c'][0]`` -> ``['a', 'b', 'c', 0]``; anything unparsable is a CIError."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise CIError(f"{path!r}: cannot parse property path at {path[pos:]!r}")
        name, single, double, index = match.groups()
        if index is not None:
            tokens.append(int(index))
        else:
            tokens.append(next(t for t in (name, single, double) if t is not None))
        pos = match.end()
    return tokens


def walk(value: Any, tokens: list[str | int], where: str) -> Any:
    """Follow ``tokens`` into nested dicts/lists; a dict accepts an index into its values."""
    for token in tokens:
        if isinstance(value, dict):
            if isinstance(token, int):
                items = list(value.values())
                if token >= len(items):
                    raise CIError(f"{where}: index [{token}] out of range")
                value = items[token]
            elif token in value:
                value = value[token]
            else:
                raise CIError(f"{where}: no property {token!r}")
        elif isinstance(value, list) and isinstance(token, int):
            if token >= len(value):
                raise CIError(f"{where}: index [{token}] out of range")
            value = value[token]
        else:
            raise CIError(f"{where}: cannot take {token!r} of {type(value).__name__}")
    return value


def step_references(value: Any) -> Iterator[str]:
    """Names of the steps whose properties ``value`` reads (the implicit dependencies)."""
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            yield get.split(".", 2)[1]
        json_get = value.get("Std:JsonGet")
        if isinstance(json_get, dict) and isinstance(json_get.get("StepName"), str):
            yield json_get["StepName"]
        for item in value.values():
            yield from step_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from step_references(item)


def to_text(value: Any) -> str:
    """How SageMaker renders a value inside Std:Join (and in hyperparameters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Resolver:
    """Resolves placeholders against one execution's parameters and step properties."""

    def __init__(
        self,
        parameters: dict[str, Any],
        execution: dict[str, Any],
        steps: dict[str, dict[str, Any]],
        read_json_uri: Callable[[str], Any],
    ) -> None:
        self.parameters = parameters
        self.execution = execution
        self.steps = steps  # name -> properties of steps that have run (shared, grows)
        self.read_json_uri = read_json_uri

    # -- values -----------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """``value`` with every placeholder replaced by what it stands for."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return to_text(self.resolve(join.get("On", ""))).join(
                to_text(self.resolve(item)) for item in join.get("Values", [])
            )
        if set(value) == {"Std:JsonGet"}:
            return self.json_get(value["Std:JsonGet"])
        return {key: self.resolve(item) for key, item in value.items()}

    def get(self, reference: str) -> Any:
        """The value of one ``Get`` reference."""
        if not isinstance(reference, str) or "." not in reference:
            raise CIError(f"Get {reference!r}: not a property reference")
        root, rest = reference.split(".", 1)
        if root == "Parameters":
            if rest not in self.parameters:
                raise CIError(f"Get {reference}: unknown pipeline parameter {rest!r}")
            return self.parameters[rest]
        if root == "Execution":
            if rest not in self.execution:
                raise CIError(f"Get {reference}: unknown execution variable")
            return self.execution[rest]
        if root == "PipelineExperimentConfig":
            return self.execution.get(
                "PipelineName" if rest == "ExperimentName" else "PipelineExecutionId"
            )
        if root == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.steps:
                raise CIError(f"Get {reference}: step {step!r} has not run")
            return walk(self.steps[step], parse_path(path), f"Get {reference}")
        raise CIError(f"Get {reference}: unknown reference root {root!r}")

    def json_get(self, spec: dict[str, Any]) -> Any:
        """Std:JsonGet: read a JSON file (a step's PropertyFile or an S3 URI) at a path."""
        path = spec.get("Path", "")
        if "PropertyFile" in spec:
            prop = spec["PropertyFile"]
            if isinstance(prop, str):  # older definitions name the file and the step separately
                step = spec.get("StepName", "")
                prop = {"Get": f"Steps.{step}.PropertyFiles.{prop}"}
            uri = self.resolve(prop)
        else:
            uri = self.resolve(spec.get("S3Uri"))
        document = self.read_json_uri(uri)
        return walk(document, parse_path(path), f"JsonGet {uri} {path}")

    # -- conditions -------------------------------------------------------------------------
    def condition(self, cond: dict[str, Any]) -> bool:
        """Evaluate one entry of a Condition step's ``Conditions``."""
        kind = cond.get("Type")
        if kind in _COMPARISONS:
            left = self.resolve(cond.get("LeftValue"))
            right = self.resolve(cond.get("RightValue"))
            try:
                return _COMPARISONS[kind](*_comparable(left, right))
            except TypeError as exc:
                raise CIError(f"condition {kind}: cannot compare {left!r} with {right!r}") from exc
        if kind == "In":
            query = self.resolve(cond.get("QueryValue"))
            candidates = (_comparable(query, self.resolve(v)) for v in cond.get("Values", []))
            return any(a == b for a, b in candidates)
        if kind == "Not":
            return not self.condition(cond.get("Expression") or cond.get("Condition") or {})
        if kind == "Or":
            return any(self.condition(c) for c in cond.get("Conditions", []))
        if kind == "And":
            return all(self.condition(c) for c in cond.get("Conditions", []))
        raise CIError(f"condition type {kind!r} is not supported by the local backend")


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Compare numbers as numbers even when one side arrived as text (JSON files, parameters)."""
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return left, right
    if isinstance(left, numbers) and isinstance(right, str):
        return left, _number(right, right)
    if isinstance(right, numbers) and isinstance(left, str):
        return _number(left, left), right
    return left, right


def _number(text: str, fallback: Any) -> Any:
    try:
        return float(text)
    except ValueError:
        return fallback
