"""``smoke-test --env E``: real requests with rows from the shipped dataset, checked.

Each row goes alone (for a latency distribution), then all rows in one request (batch parsing).
Every answer must be HTTP 200 with one prediction per row and probabilities in [0, 1]; the p95
single-row latency must stay within the manifest's ``smoke_test.max_latency_ms``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import typer

from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend
from ci_scripts.commands.deploy import SERVING
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

DATASET = Path("data") / "dataset.csv"
TARGET_COLUMN = "target"


def feature_rows(path: Path, limit: int) -> list[list[str]]:
    """The first ``limit`` rows of the dataset without the target column, in column order."""
    if not path.is_file():
        raise CIError(f"{DATASET.as_posix()}: not found; the smoke test sends rows from it")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise CIError(f"{DATASET.as_posix()}: empty")
        keep = [i for i, name in enumerate(header) if name.strip() != TARGET_COLUMN]
        rows = []
        for row in reader:
            if len(rows) >= limit:
                break
            if row:
                rows.append([row[i] for i in keep])
    if not rows:
        raise CIError(f"{DATASET.as_posix()}: has no data rows")
    return rows


def to_csv(rows: list[list[str]]) -> bytes:
    return "".join(",".join(row) + "\n" for row in rows).encode("utf-8")


def check_answer(env: str, what: str, status: int, body: bytes, expected: int) -> None:
    """Raise naming ``env`` and the failed check unless ``body`` holds ``expected`` predictions."""
    prefix = f"smoke-test {env}: {what}"
    if status != 200:
        raise CIError(f"{prefix}: HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
    try:
        answer: Any = json.loads(body)
    except ValueError:
        raise CIError(f"{prefix}: response is not JSON: {body[:120]!r}") from None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        count = len(predictions) if isinstance(predictions, list) else "no"
        raise CIError(f"{prefix}: expected {expected} predictions, got {count}")
    for i, prediction in enumerate(predictions):
        p = prediction.get("probability") if isinstance(prediction, dict) else None
        if not isinstance(p, int | float) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise CIError(f"{prefix}: prediction {i} has probability {p!r}, not within [0, 1]")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with ``pct`` % of values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run(project: ProjectConfig, backend: Backend, env: str) -> None:
    manifest = manifests.load(project, env)
    settings = manifest.effective["smoke_test"]
    state = backend.describe_endpoint(env)
    if state is None or state.status != SERVING:
        status = state.status if state else "missing"
        raise CIError(f"smoke-test {env}: endpoint {project.endpoint_name(env)} is {status}")
    rows = feature_rows(project.root / DATASET, settings["rows"])
    latencies = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        status, body = backend.invoke(env, to_csv([row]), "text/csv")
        latencies.append((time.perf_counter() - started) * 1000)
        check_answer(env, f"row {i + 1}", status, body, 1)
    status, body = backend.invoke(env, to_csv(rows), "text/csv")
    check_answer(env, f"batch of {len(rows)} rows", status, body, len(rows))
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    limit = settings["max_latency_ms"]
    if p95 > limit:
        raise CIError(
            f"smoke-test {env}: latency p95 {p95:.0f} ms exceeds {limit} ms "
            f"({manifest.at('smoke_test', 'max_latency_ms')})"
        )
    typer.echo(
        f"smoke-test {env}: OK: endpoint {state.name} (version {state.model_version}) answered "
        f"{len(rows)} rows one by one and as one batch; latency p50 {p50:.0f} ms, "
        f"p95 {p95:.0f} ms (max {limit} ms)"
    )
