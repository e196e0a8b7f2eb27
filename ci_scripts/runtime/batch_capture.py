"""A batch run's inputs and outputs as data capture records, so the monitor reads batch traffic.

The monitor (monitor.py) reads an endpoint's data capture: one JSON line per request, both sides,
with the request's ``inferenceId`` (capture.py). A batch run has no endpoint and no capture, but
its files hold the same facts: each input line ``<id>,<features...>`` and its output line
``<id>,<prediction columns...>`` (serve's ``Accept: text/csv`` answer, ``serve.csv_values``). This
step pairs them by file and line and writes one capture record per row, the row's id as its
``inferenceId`` (ground-truth labels join on it, as for endpoints) and the run's end as its
``inferenceTime``, to the capture folder the monitor reads. Then drift (inputs against the
training baseline) and, with labels, quality run unchanged on batch traffic.

Pairs whose ids disagree (an input file changed after its run) and output lines that are not the
model's answer are skipped and counted, never fatal, as capture.py skips bad capture lines.

``python -m ci_scripts.runtime batch_capture [--inputs DIR] [--outputs DIR] [--capture DIR]
[--time ISO]``
(SageMaker Processing conventions: inputs ``processing/input/batch_input`` and ``batch_output``,
output ``processing/output/capture``).
"""

from __future__ import annotations

import argparse
import csv
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.schema import parse_class

from . import model, paths

OUTPUT_SUFFIX = ".out"  # SageMaker batch transform's naming: input <key> -> <key>.out


def answer_from_columns(cells: Sequence[str]) -> dict[str, Any]:
    """serve's CSV columns of one prediction back into the object ``model.response`` writes
    (PREDICTION_SCHEMA's properties in order, an array one column per class)."""
    values = iter(cells)
    answer: dict[str, Any] = {}
    for name, prop in model.PREDICTION_SCHEMA["properties"].items():
        if prop.get("type") == "array":
            answer[name] = [float(next(values)) for _ in model.CLASSES or ()]
        elif "enum" in prop:  # a class: its name as schema.py declares it, or its number
            answer[name] = parse_class(next(values), tuple(prop["enum"]))
        else:
            answer[name] = float(next(values))
    if next(values, None) is not None:
        raise ValueError("more columns than PREDICTION_SCHEMA describes")
    return answer


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.reader(handle) if row]


def records(inputs: Path, outputs: Path, when: datetime) -> tuple[list[dict[str, Any]], int]:
    """``(capture records, rows skipped)`` of every input file under ``inputs`` that has its
    ``<key>.out`` under ``outputs``."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    found: list[dict[str, Any]] = []
    skipped = 0
    for source in sorted(p for p in inputs.rglob("*") if p.is_file()):
        key = source.relative_to(inputs).as_posix()
        produced = outputs / f"{key}{OUTPUT_SUFFIX}"
        if not produced.is_file():
            continue
        rows, answers = _rows(source), _rows(produced)
        if len(rows) != len(answers):
            skipped += len(rows)
            continue
        for row, out in zip(rows, answers, strict=True):
            try:
                if not out or out[0] != row[0]:
                    raise ValueError("ids disagree")
                answer = answer_from_columns(out[1:])
            except (ValueError, StopIteration):
                skipped += 1
                continue
            found.append(_record(row[0], row[1:], answer, stamp))
    return found, skipped


def _record(row_id: str, features: Sequence[str], answer: dict[str, Any], stamp: str) -> dict:
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": ",".join(features),
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": json.dumps({"predictions": [answer]}),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceId": row_id,
            "inferenceTime": stamp,
        },
        "eventVersion": "0",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} batch_capture", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--inputs", type=Path, default=None, help="the run's input files")
    parser.add_argument("--outputs", type=Path, default=None, help="the run's <key>.out files")
    parser.add_argument("--capture", type=Path, default=None, help="where the records go")
    parser.add_argument("--time", default=None, help="the run's end (ISO 8601; default now)")
    parser.add_argument("--name", default="batch", help="the capture file's name (no suffix)")
    args = parser.parse_args(argv)
    when = datetime.fromisoformat(args.time.replace("Z", "+00:00")) if args.time else None
    found, skipped = records(
        args.inputs or paths.monitor_input_dir("batch_input"),
        args.outputs or paths.monitor_input_dir("batch_output"),
        when or datetime.now(UTC),
    )
    target = (args.capture or paths.monitor_output_dir("capture")) / f"{args.name}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(r) + "\n" for r in found), encoding="utf-8")
    print(f"{len(found)} row(s) as capture records, {skipped} skipped: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
