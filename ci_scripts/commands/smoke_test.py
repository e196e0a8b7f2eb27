"""``smoke-test --env E``: real requests with rows from the shipped dataset, checked.

The rows are a seeded sample of the test split (the rows of data/dataset.csv the package's
``preprocess.split_rows`` puts there; without a model package, of the whole dataset), never the
first N rows, which a dataset sorted by class would make one-sided (and drifted, to a monitor).
Each row goes alone (for a latency distribution), then all rows in one request (batch parsing).
Every answer must be HTTP 200 with one prediction per row, each valid against the JSON Schema
the model's problem type and classes give (ci_scripts.problem_types: shape and ranges); the
p95 single-row latency must stay within the manifest's ``smoke_test.max_latency_ms``. Every request
carries a fresh ``InferenceId``, as the API front sends one, so its capture can be labelled.

With ``--rollback-on-failure`` (the deploy workflow's smoke test) a failed check restores the
version the endpoint served before the last deploy, which the backend recorded at deploy time
(aws: the endpoint's ``previous-model-version`` tag; local: the routes file), and still exits
non-zero: the manifest names a version that does not work, so a person reverts that change.

A batch deployment (``endpoint.type: batch``) has no endpoint to send requests to: its smoke test
scores the same rows as a small batch run into a scratch prefix (``check_batch``).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import random
import time
import uuid
from pathlib import Path
from typing import Any

import typer

from ci_scripts import gitinfo
from ci_scripts import manifest as manifests
from ci_scripts.backends.base import Backend, EndpointState
from ci_scripts.batch import runs_batch
from ci_scripts.commands.deploy import SERVING, deploy_manifest
from ci_scripts.errors import CIError
from ci_scripts.model_contract import ModelContract
from ci_scripts.model_contract import load as load_contract
from ci_scripts.project import ProjectConfig

DATASET = Path("data") / "dataset.csv"
TARGET_COLUMN = "target"
SAMPLE_SEED = 20240601  # the same rows every run, so two smoke tests compare like with like


def feature_rows(path: Path, limit: int, project: ProjectConfig | None = None) -> list[list[str]]:
    """A seeded sample of ``limit`` test-split rows of the dataset, without the target column."""
    if not path.is_file():
        raise CIError(f"{DATASET.as_posix()}: not found; the smoke test sends rows from it")
    rows = _test_split(project, path) if project is not None else None
    if rows is None:
        rows = _dataset_rows(path)
    if not rows:
        raise CIError(f"{DATASET.as_posix()}: has no data rows")
    return random.Random(SAMPLE_SEED).sample(rows, min(limit, len(rows)))


def _dataset_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise CIError(f"{DATASET.as_posix()}: empty")
        keep = [i for i, name in enumerate(header) if name.strip() != TARGET_COLUMN]
        return [[row[i] for i in keep] for row in reader if row]


def _test_split(project: ProjectConfig, path: Path) -> list[list[str]] | None:
    """The platform's ``preprocess.split_rows(path, "test")`` for the repo's schema; None when
    the repo has no model package (a stand-in)."""
    from ci_scripts.runtime import team
    from ci_scripts.runtime.errors import StepError

    src = project.root / "src"
    if not (src / project.package / "schema.py").is_file():
        return None
    with team.bound_to(src, project.package):
        try:
            split_rows = importlib.import_module("ci_scripts.runtime.preprocess").split_rows
            return [list(row) for row in split_rows(path, "test")]
        except StepError as exc:  # a bad dataset row, a model that will not import
            raise CIError(f"{DATASET.as_posix()}: {exc}") from exc


def to_csv(rows: list[list[str]]) -> bytes:
    """Rows as a CSV body: cells with a comma or a quote (a category may hold them) quoted."""
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def check_answer(
    env: str, what: str, status: int, body: bytes, expected: int, contract: ModelContract
) -> None:
    """Raise naming ``env`` and the failed check unless ``body`` holds ``expected`` predictions,
    each valid against the model's answer schema (ci_scripts.problem_types)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

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
    validator = Draft202012Validator(contract.prediction_schema)
    for i, prediction in enumerate(predictions):
        error = best_match(validator.iter_errors(prediction))
        if error is not None:
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
            raise CIError(
                f"{prefix}: prediction {i}{where}: {error.message} "
                f"(the answer schema of {contract.source})"
            )


def new_id() -> str:
    """A fresh inference id per request: the capture records it, so labels for these rows
    (ground truth, ci_scripts.model_quality) can be joined with the predictions later."""
    return f"smoke-{uuid.uuid4()}"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with ``pct`` % of values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run(
    project: ProjectConfig,
    backend: Backend,
    env: str,
    *,
    rollback_on_failure: bool = False,
    commit: str | None = None,
) -> None:
    manifest = manifests.load(project, env)
    if manifest.model_version is None and backend.describe_endpoint(env) is None:
        # A new repo's null manifest (the first push marks both changed): deploy made nothing,
        # so there is nothing to test, and that is not a failure.
        typer.echo(f"smoke-test {env}: {manifest.label} names no model_version; nothing to test")
        return
    try:
        check(project, backend, manifest)
    except CIError as failure:
        if not rollback_on_failure:
            raise
        restore_previous(project, backend, manifest, failure, commit)


def restore_previous(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    failure: CIError,
    commit: str | None,
) -> None:
    """Redeploy what served before the last deploy, then raise ``failure`` saying so."""
    env = manifest.env
    state = backend.describe_endpoint(env)
    name = state.name if state else project.endpoint_name(env)  # a batch job's own name
    batch = runs_batch(state)
    noun, serves = ("batch", "scores with") if batch else ("endpoint", "serves")
    previous = state.config.get("previous_version") if state else None
    if not isinstance(previous, int) or (state and previous == state.model_version):
        raise CIError(
            f"{failure}; not rolled back: {noun} {name} records no earlier version"
        ) from failure
    found = backend.get_version(project.model_package_group, previous)
    if found is None or found.approval_status != "Approved":
        why = found.approval_status if found else "missing from the registry"
        raise CIError(
            f"{failure}; not rolled back: previous version {previous} is {why}"
        ) from failure
    typer.echo(f"smoke-test {env}: failed; restoring version {previous} on {noun} {name}")
    restored = manifest.with_version(previous)
    deploy_manifest(
        project,
        backend,
        restored,
        commit=commit or gitinfo.current_commit(project.root),
        pr=None,
        reason="rollback after a failed smoke test",
    )
    _, verdict = recheck(project, backend, restored)
    raise CIError(
        f"{failure}; rolled back: {noun} {name} {serves} version {previous} again{verdict} "
        f"(revert the change to {manifest.label} so git names what runs)"
    ) from failure


def recheck(
    project: ProjectConfig, backend: Backend, restored: manifests.Manifest
) -> tuple[bool, str]:
    """Smoke-test a restored version again: whether it passed, and the clause saying so.

    A restore is a deploy like any other: the version that served before may not serve well now
    (its code, the data it is sent, the fleet it got), so "rolled back" alone would claim health
    nobody checked. The restore stays (it is the best known state); the caller says both.
    """
    try:
        check(project, backend, restored)
    except CIError as again:
        return False, f", but its smoke test failed too ({again})"
    return True, " and its smoke test passed"


def check(project: ProjectConfig, backend: Backend, manifest: manifests.Manifest) -> None:
    env = manifest.env
    settings = manifest.spec.smoke_test
    state = backend.describe_endpoint(env)
    if runs_batch(state):
        check_batch(project, backend, manifest, state)
        return
    if state is None or state.status != SERVING:
        status = state.status if state else "missing"
        raise CIError(f"smoke-test {env}: endpoint {project.endpoint_name(env)} is {status}")
    rows = feature_rows(project.root / DATASET, settings.rows, project)
    contract = load_contract(project)
    latencies = []
    for i, row in enumerate(rows):
        started = time.perf_counter()
        status, body = backend.invoke(env, to_csv([row]), "text/csv", inference_id=new_id())
        latencies.append((time.perf_counter() - started) * 1000)
        check_answer(env, f"row {i + 1}", status, body, 1, contract)
    status, body = backend.invoke(env, to_csv(rows), "text/csv", inference_id=new_id())
    check_answer(env, f"batch of {len(rows)} rows", status, body, len(rows), contract)
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    limit = settings.max_latency_ms
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


def check_batch(
    project: ProjectConfig,
    backend: Backend,
    manifest: manifests.Manifest,
    state: EndpointState,
) -> None:
    """A batch deployment's smoke test: a small batch through the real run, into scratch.

    ``smoke_test.rows`` rows of the shipped data, each with a fresh id, go to the scratch input
    prefix beside the manifest's (``<input_prefix>_smoke/``, not under it, so no scheduled run
    scores them) and are scored by ``run_batch`` into ``<output_prefix>_smoke/``; the run's own
    join check (ci_scripts.batch.check_outputs) proves every id came back once, in order, with a
    prediction the model's schema accepts, and the row count must match.
    """
    from ci_scripts import batch as batching

    env = manifest.env
    rows = feature_rows(project.root / DATASET, manifest.spec.smoke_test.rows, project)
    input_prefix, output_prefix = batching.prefixes(manifest.effective)
    scratch_in, scratch_out = (
        batching.smoke_prefix(input_prefix),
        batching.smoke_prefix(output_prefix),
    )
    body = to_csv([[f"smoke-{i + 1}", *row] for i, row in enumerate(rows)])
    backend.write_object(f"{scratch_in}smoke.csv", body)
    run = backend.run_batch(env, manifest.effective, input_uri=scratch_in, output_uri=scratch_out)
    if run.status != "Succeeded":
        raise CIError(f"smoke-test {env}: {batching.describe_run(run)}")
    if run.rows is not None and run.rows != len(rows):
        raise CIError(
            f"smoke-test {env}: batch run {run.id} scored {run.rows} rows of {len(rows)} sent"
        )
    typer.echo(
        f"smoke-test {env}: OK: batch {state.name} (version {run.model_version}) scored "
        f"{len(rows)} rows into {scratch_out}; every id came back once with a valid prediction"
    )
