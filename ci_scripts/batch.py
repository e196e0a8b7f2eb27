"""Batch scoring facts both backends share: file naming, the join of outputs to inputs, runs.

A batch run reads every file under ``batch.input_prefix`` (CSV without header, each line
``<id>,<features...>``) and writes ``<output_prefix><key>.out`` for input ``<key>``, each line
``<id>,<prediction columns...>`` in input order. On AWS a SageMaker batch transform does it with
DataProcessing ``InputFilter $[1:]`` (the model never sees the id), ``JoinSource Input`` (the
answer line is appended to its input line) and an ``OutputFilter`` that keeps the id and the
prediction columns (:func:`data_processing`); locally ``backends/local/transform.py`` does the
same with the version's own serve code. Either way :func:`check_outputs` then proves every
input id came back once, in order, with a prediction the model's answer schema accepts;
that count is the run's ``rows``.

AWS page "Associate Prediction Results with Input Records"
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html): the
joined CSV record is the input's columns followed by the output's, and OutputFilter selects
columns of it by JSONPath index and slice, so ``$[0,N+1:]`` keeps the id (column 0) and every
column after the N features, however many prediction columns the problem type answers with.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from typing import Any

from ci_scripts.backends.base import BatchRun, EndpointState
from ci_scripts.errors import CIError
from ci_scripts.manifest import Batch, spec

# The batch scoring pipeline: the platform's own (CheckInput -> Transform -> Capture), which
# validate builds and the aws backend upserts as <project>-<env>-batch.
BATCH_MODULE = "ci_scripts.pipelines.batch"
OUTPUT_SUFFIX = ".out"  # SageMaker batch transform's output naming: <input key>.out
SMOKE_SUFFIX = "_smoke/"


def output_filter(n_features: int) -> str:
    """OutputFilter keeping the id and every prediction column of the joined record."""
    return f"$[0,{n_features + 1}:]"


def data_processing(n_features: int) -> dict[str, str]:
    """The transform's DataProcessing: the model sees the features only, the output keeps ids."""
    return {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": output_filter(n_features),
    }


def output_key(input_key: str) -> str:
    """Where the output of input ``<key>`` goes, relative to the output prefix."""
    return f"{input_key}{OUTPUT_SUFFIX}"


def smoke_prefix(output_prefix: str) -> str:
    """The scratch prefix a smoke test writes to: beside the output prefix, not under it (the
    monitor reads the output prefix; a smoke test's rows are not traffic)."""
    return output_prefix.rstrip("/") + SMOKE_SUFFIX


def prefixes(manifest: dict[str, Any]) -> tuple[str, str]:
    """``(input_prefix, output_prefix)`` of a defaulted batch manifest."""
    batch = spec(manifest).batch
    if batch is None:
        raise KeyError("batch")
    return batch.input_prefix, batch.output_prefix


def is_batch(manifest: dict[str, Any]) -> bool:
    return spec(manifest).endpoint.type == "batch"


def runs_batch(state: EndpointState | None) -> bool:
    """``state`` (describe_endpoint's answer) is a batch job's, not an endpoint's."""
    return state is not None and state.config.get("type") == "batch"


def describe_policy(manifest: dict[str, Any]) -> str:
    """What validate says a batch manifest does (from the manifest alone)."""
    view = spec(manifest)
    endpoint, batch = view.endpoint, view.batch or Batch.of({})
    return (
        f"each run scores every file under {batch.input_prefix} into "
        f"{batch.output_prefix}<key>.out on {endpoint.initial_instance_count} x "
        f"{endpoint.instance_type}, started {batch.schedule} (UTC) by EventBridge "
        "Scheduler (locally no scheduler: `ci_scripts batch-run`); a bad input file fails the run "
        "before anything is written; a new version scores from the next run on (no canary)"
    )


def input_ids(text: str) -> list[str]:
    """The ids (first column) of a batch input file, in order."""
    return [row[0].strip() for row in csv.reader(text.splitlines()) if row]


def prediction_width(schema: dict[str, Any], classes: tuple[int, ...] | None) -> int:
    """How many CSV columns one prediction takes (serve's ``csv_values``): one per scalar
    property of PREDICTION_SCHEMA, one per class for an array property."""
    width = 0
    for prop in (schema.get("properties") or {}).values():
        width += len(classes or ()) if prop.get("type") == "array" else 1
    return width


def parse_prediction(cells: list[str], schema: dict[str, Any], classes: tuple[Any, ...] | None):
    """A prediction's CSV columns back into the object PREDICTION_SCHEMA describes."""
    values = iter(cells)
    obj: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("type") == "array":
            obj[name] = [_number(next(values)) for _ in classes or ()]
        elif "enum" in prop:  # a class: a name stays text, so the schema's enum can judge it
            text = next(values)
            obj[name] = text if any(isinstance(c, str) for c in prop["enum"]) else _number(text)
        else:
            obj[name] = _number(next(values))
    return obj


def _number(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite")
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def check_outputs(
    inputs: dict[str, str],
    outputs: dict[str, str | None],
    contract: Any,
    output_prefix: str = "",
) -> int:
    """Every input id back once, in input order, with a valid prediction; the rows checked.

    ``inputs`` maps each input key to its text, ``outputs`` each input key to the text of its
    ``.out`` file (None when it is missing); ``contract`` is the model's declarations
    (ci_scripts.model_contract: ``prediction_schema``, ``classes``). A problem is a CIError
    naming ``<output_prefix><key>.out:<line>``.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = contract.prediction_schema
    validator = Draft202012Validator(schema)
    width = prediction_width(schema, contract.classes)
    rows = 0
    for key, text in inputs.items():
        label = f"{output_prefix}{output_key(key)}"
        produced = outputs.get(key)
        if produced is None:
            raise CIError(f"{label}: missing (input {key} has no output)")
        expected = input_ids(text)
        lines = list(csv.reader(produced.splitlines()))
        if len(lines) != len(expected):
            raise CIError(f"{label}: {len(lines)} line(s) for {len(expected)} input row(s)")
        for number, (cells, row_id) in enumerate(zip(lines, expected, strict=True), start=1):
            where = f"{label}:{number}"
            if not cells or cells[0].strip() != row_id:
                got = cells[0] if cells else ""
                raise CIError(f"{where}: id {got!r}, expected {row_id!r} (input order)")
            if len(cells) != 1 + width:
                raise CIError(f"{where}: {len(cells) - 1} prediction column(s), expected {width}")
            try:
                prediction = parse_prediction(cells[1:], schema, contract.classes)
            except ValueError as exc:
                raise CIError(f"{where}: prediction is not numeric ({exc})") from None
            error = best_match(validator.iter_errors(prediction))
            if error is not None:
                raise CIError(f"{where}: {error.message} (the answer schema of {contract.source})")
            rows += 1
    return rows


def run_record(run: BatchRun) -> dict[str, Any]:
    """A run as JSON (state files, status --json)."""
    return asdict(run)


def run_from_record(record: dict[str, Any]) -> BatchRun:
    fields = BatchRun.__dataclass_fields__
    return BatchRun(**{k: v for k, v in record.items() if k in fields})


def describe_run(run: BatchRun) -> str:
    """One line about a run, for status and batch-run."""
    rows = f", {run.rows} rows" if run.rows is not None else ""
    version = f"version {run.model_version}" if run.model_version is not None else "no version"
    when = run.ended or run.started
    reason = f": {run.failure_reason}" if run.failure_reason else ""
    return f"batch run {run.id} {run.status} ({version}{rows}, {when}){reason}"
