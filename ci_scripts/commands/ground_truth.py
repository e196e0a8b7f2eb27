"""``ground-truth --env E FILE``: upload labels for captured requests, in Model Monitor's format.

A labelling process (people, a CRM export, a delayed outcome) knows the true class of requests
by the ``InferenceId`` they were sent with. It writes a CSV with one line per request,
``inference_id,label`` (a batch request lists one label per row: ``inference_id,1,0,1``; a
header line ``inference_id,...`` is skipped), and this command turns it into ground-truth JSON
lines (ci_scripts.model_quality documents the format) under the environment's ground-truth
prefix, one new object per upload (``YYYY/MM/DD/HH/labels-<time>-<id>.jsonl``), where
``monitor --quality`` and Model Monitor's model quality job read them. Nothing is written when a
line is wrong: the error names the file and line.
"""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from ci_scripts import model_quality as mq
from ci_scripts import problem_types
from ci_scripts.backends.base import Backend
from ci_scripts.errors import CIError
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig
from ci_scripts.schema import Invalid, parse_class


def parse_labels(
    path: Path, problem_type: str | None = None, classes: tuple[Any, ...] | None = (0, 1)
) -> list[tuple[str, list[Any]]]:
    """``(inference_id, labels)`` per line of ``path``; CIError ``<file>:<line>: <reason>``.

    A label is one of ``classes`` for a classifier (a class name as schema.py writes it, or a
    number), any finite number for a regression."""
    kind = problem_types.get(problem_type)
    contract_classes = classes
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CIError(f"{path}: cannot read labels: {exc}") from None
    found: list[tuple[str, list[Any]]] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (number == 1 and cells[0].lower() == "inference_id"):
            continue
        if len(cells) < 2 or not cells[0]:
            raise CIError(f"{path}:{number}: expected inference_id,label[,label...]")
        if kind.classification and contract_classes is not None:
            unknown = []
            values = []
            for cell in cells[1:]:
                try:
                    values.append(parse_class(cell, contract_classes))
                except Invalid:
                    unknown.append(cell)
            if unknown:
                expected = ", ".join(str(c) for c in contract_classes)
                raise CIError(f"{path}:{number}: labels must be one of {expected}, got {unknown}")
        else:
            try:
                values = [kind.parse_truth(cell) for cell in cells[1:]]
            except ValueError as exc:
                raise CIError(f"{path}:{number}: label {exc}") from None
        found.append((cells[0], values))
    if not found:
        raise CIError(f"{path}: no labels")
    return found


def run(project: ProjectConfig, backend: Backend, env: str, path: Path) -> str:
    """Write the labels of ``path`` for ``env``; return the URI of the object written."""
    contract = load_contract(project)
    labels = parse_labels(path, contract.problem_type, contract.classes)
    write = backend.write_object
    now = datetime.now(UTC)
    uri = (
        f"{mq.ground_truth_prefix(project.capture_bucket(env), env)}/{now:%Y/%m/%d/%H}/"
        f"labels-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.jsonl"
    )
    body = "".join(
        mq.ground_truth_line(inference_id, values) + "\n" for inference_id, values in labels
    )
    write(uri, body.encode("utf-8"))
    rows = sum(len(values) for _, values in labels)
    typer.echo(f"ground truth {env}: {len(labels)} requests ({rows} rows) labelled: {uri}")
    return uri
