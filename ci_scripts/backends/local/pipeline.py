"""Execute a SageMaker pipeline definition (the JSON ``Pipeline.definition()`` produces) locally.

The runner follows SageMaker's semantics: parameters take their defaults unless overridden (cast
to their declared type), a step runs once every step it depends on (``DependsOn`` plus every
``Get`` of another step's properties) has succeeded, steps inside a Condition's IfSteps/ElseSteps
run only on that branch, a failing step stops the run, and a Fail step fails it with its message.
Independent steps run concurrently on a small thread pool (each step is a subprocess).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts.backends.base import PipelineRun
from ci_scripts.backends.local import image, warm
from ci_scripts.backends.local.cache import StepCache
from ci_scripts.backends.local.expressions import Resolver, step_references
from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.backends.local.state import LocalState, read_json, write_json_atomic
from ci_scripts.backends.local.steps import EXECUTORS, StepContext, StepFailed, StepOutcome
from ci_scripts.errors import CIError

# Every step start and end is logged here with ``extra={"step_event": record}`` (the record the
# run keeps, or name/type/status "Executing" at the start): ``run-pipeline`` shows them as they
# happen. A logger keeps the backend free of any notion of a terminal.
STEP_EVENTS = logging.getLogger("ci_scripts.steps")


@dataclass
class _Node:
    step: dict[str, Any]
    deps: set[str]
    gate: tuple[str, bool] | None  # (condition step, branch) for steps nested in a condition
    status: str = "NotStarted"
    record: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # order in which the step started (or was skipped)

    @property
    def name(self) -> str:
        return self.step["Name"]


def build_graph(definition: dict[str, Any]) -> dict[str, _Node]:
    """Every step (nested ones included) with its dependencies; bad references are CIErrors."""
    nodes: dict[str, _Node] = {}

    def add(steps: list[dict[str, Any]], gate: tuple[str, bool] | None) -> None:
        for step in steps:
            name, kind = step.get("Name"), step.get("Type")
            if not name or not kind:
                raise CIError(f"pipeline definition: step {step!r:.80} lacks Name or Type")
            if name in nodes:
                raise CIError(f"pipeline definition: step name {name!r} is used twice")
            args = dict(step.get("Arguments") or {})
            if kind == "Condition":  # nested steps carry their own references
                args.pop("IfSteps", None)
                args.pop("ElseSteps", None)
            deps = set(step.get("DependsOn") or []) | set(step_references(args))
            if gate:
                deps.add(gate[0])
            deps.discard(name)
            nodes[name] = _Node(step, deps, gate)
            if kind == "Condition":
                add(step.get("Arguments", {}).get("IfSteps") or [], (name, True))
                add(step.get("Arguments", {}).get("ElseSteps") or [], (name, False))

    add(definition.get("Steps") or [], None)
    for node in nodes.values():
        for dep in sorted(node.deps - set(nodes)):
            raise CIError(f"pipeline definition: step {node.name} depends on unknown step {dep!r}")
    _check_acyclic(nodes)
    return nodes


# Step types whose run starts a step process (a Tuning step one per trial: two or more).
PROCESS_STEP_TYPES = ("Processing", "Training", "Tuning")


def starts_several_processes(nodes: dict[str, _Node]) -> bool:
    """Whether a run of ``nodes`` may start more than one step process. A warm interpreter
    (warm.py) preloads pandas and scikit-learn, about 2 s of CPU, while its first step runs, to
    save that import on the steps after it: a run with one step process (every monitoring
    run) has no step after it, and its one step imports only what it needs."""
    kinds = [node.step["Type"] for node in nodes.values()]
    processes = [kind for kind in kinds if kind in PROCESS_STEP_TYPES]
    return len(processes) > 1 or "Tuning" in processes


def _check_acyclic(nodes: dict[str, _Node]) -> None:
    remaining = {name: set(node.deps) for name, node in nodes.items()}
    while remaining:
        free = [name for name, deps in remaining.items() if not deps]
        if not free:
            raise CIError(
                f"pipeline definition: steps {', '.join(sorted(remaining))} depend on each other"
            )
        for name in free:
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(free)


def resolve_parameters(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``overrides``, cast to each parameter's declared type."""
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    for name in overrides:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise CIError(
                f"parameter {name!r}: the pipeline has no such parameter (known: {known})"
            )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        value = overrides.get(name, spec.get("DefaultValue"))
        if value is None:
            raise CIError(f"parameter {name!r}: no value given and no default in the definition")
        values[name] = _cast(name, spec.get("Type", "String"), value)
    return values


def _cast(name: str, kind: str, value: Any) -> Any:
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        if kind == "Boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError(value)
    except (TypeError, ValueError):
        raise CIError(f"parameter {name!r}: {value!r} is not a valid {kind}") from None
    return str(value)


def new_execution_id() -> str:
    """Sortable by start time, unique enough for one machine."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class LocalPipelineRunner:
    """Runs definitions for one project against its ``.mlops`` state."""

    def __init__(
        self,
        state: LocalState,
        registry: SqliteRegistry,
        *,
        package: str,
        pipeline_name: str,
        region: str,
        account: str,
        use_cache: bool = True,
        max_workers: int | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.state = state
        self.registry = registry
        self.package = package
        self.pipeline_name = pipeline_name
        self.arn_prefix = f"arn:aws:sagemaker:{region}:{account}:"
        self.use_cache = use_cache
        self.max_workers = max_workers or min(4, os.cpu_count() or 2)
        self.on_step = on_step

    def run(
        self,
        definition: dict[str, Any],
        overrides: dict[str, Any] | None = None,
        *,
        origins: dict[Path, str] | None = None,
    ) -> PipelineRun:
        """Execute ``definition`` to the end; the returned run says Succeeded or Failed.
        ``origins``: local S3 copies of the repo's files, named so in step errors."""
        nodes = build_graph(definition)
        parameters = resolve_parameters(definition, overrides or {})
        execution_id = new_execution_id()
        started = datetime.now(UTC)
        pipeline_arn = f"{self.arn_prefix}pipeline/{self.pipeline_name.lower()}"
        execution = {
            "PipelineExecutionId": execution_id,
            "PipelineExecutionArn": f"{pipeline_arn}/execution/{execution_id}",
            "PipelineName": self.pipeline_name,
            "PipelineArn": pipeline_arn,
            "StartDateTime": started.isoformat(timespec="seconds"),
            "CurrentDateTime": started.isoformat(timespec="seconds"),
        }
        properties: dict[str, dict[str, Any]] = {}
        resolver = Resolver(parameters, execution, properties, self._read_json_uri)
        src = self.state.root / "src"
        ctx = StepContext(
            state=self.state,
            package=self.package,
            src_dir=src,
            execution_id=execution_id,
            pipeline_name=self.pipeline_name,
            arn_prefix=self.arn_prefix,
            resolver=resolver,
            registry=self.registry,
            cache=StepCache(self.state),
            code_hash=image.code_hash(src),
            use_cache=self.use_cache,
            origins=dict(origins or {}),
        )
        run_file = self.state.run_dir(execution_id) / "run.json"
        record = {
            "id": execution_id,
            "pipeline": self.pipeline_name,
            "parameters": parameters,
            "started": execution["StartDateTime"],
            "status": "Executing",
        }
        write_json_atomic(run_file, record)
        self.state.journal("StartPipelineExecution", execution["PipelineExecutionArn"])
        if warm.enabled(ctx.base_env) and starts_several_processes(nodes):
            ctx.warm = warm.WarmStarter(warm.preload_for(image.runtime()))
            ctx.warm.start()  # here: the thread that owns the run outlives every step
        try:
            failure = self._execute(nodes, ctx, properties)
        finally:
            if ctx.warm is not None:
                ctx.warm.stop()
        registered = next(
            (
                n.record.get("registered_version")
                for n in nodes.values()
                if n.record.get("registered_version")
            ),
            None,
        )
        tracked = self._track(execution_id, failure, parameters, properties, registered)
        run = PipelineRun(
            id=execution_id,
            status="Failed" if failure else "Succeeded",
            failure_reason=failure,
            registered_version=registered,
            steps=[n.record for n in sorted(nodes.values(), key=lambda n: n.seq) if n.record],
        )
        record.update(
            status=run.status,
            failure_reason=failure,
            registered_version=registered,
            ended=datetime.now(UTC).isoformat(timespec="seconds"),
            steps=run.steps,
            **({"mlflow_run": tracked} if tracked else {}),
        )
        write_json_atomic(run_file, record)
        return run

    def _track(
        self,
        execution_id: str,
        failure: str,
        parameters: dict[str, Any],
        properties: dict[str, dict[str, Any]],
        registered: int | None,
    ) -> str:
        """Record the run and its trials in MLflow (when installed); the registered version
        gets the run's link as metadata ``mlflow_run``, which the proposal shows."""
        from ci_scripts.backends.local import tracking
        from ci_scripts.gitinfo import current_commit

        if not tracking.enabled():
            return ""
        version = None
        if registered:
            group = next(
                (
                    p.get("ModelPackageArn", "").split("/")[-2]
                    for p in properties.values()
                    if p.get("ModelPackageVersion") == registered
                ),
                "",
            )
            version = self.registry.get_version(group, registered) if group else None
        url = tracking.record(
            self.state.home,
            experiment=self.pipeline_name,
            execution_id=execution_id,
            status="Failed" if failure else "Succeeded",
            parameters=parameters,
            steps={**properties, "__evaluation__": dict(version.metrics) if version else {}},
            commit=current_commit(self.state.root),
            model_path=self.state.s3_path(version.model_data_url) if version else None,
        )
        if url and version:
            self.registry.annotate(version.group, version.version, mlflow_run=url)
        return url

    # -- scheduling -------------------------------------------------------------------------
    def _execute(
        self, nodes: dict[str, _Node], ctx: StepContext, properties: dict[str, dict[str, Any]]
    ) -> str:
        """Run every runnable step; return the failure reason ("" when the run succeeded)."""
        failure = ""
        running: dict[Future[StepOutcome], tuple[_Node, float]] = {}
        started = 0
        run_t0 = time.monotonic()  # step start offsets let `make bench` measure idle time
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="step") as pool:
            while True:
                if not failure:
                    for node in nodes.values():
                        if node.status != "NotStarted":
                            continue
                        verdict = self._readiness(node, nodes)
                        if verdict != "wait":
                            started += 1
                            node.seq = started
                        if verdict == "ready":
                            node.status = "Executing"
                            future = pool.submit(EXECUTORS[node.step["Type"]], node.step, ctx)
                            running[future] = (node, time.monotonic())
                            _log_step(self._record(node, "Executing", 0.0))
                        elif verdict == "skip":
                            node.status = "Skipped"
                            node.record = self._record(node, "Skipped", 0.0)
                            _log_step(node.record)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    node, t0 = running.pop(future)
                    seconds = time.monotonic() - t0
                    try:
                        outcome = future.result()
                    except (StepFailed, CIError) as exc:
                        node.status = "Failed"
                        # The step keeps its own reason (as SageMaker's FailureReason does);
                        # the run's reason says which step it was.
                        reason = f"step {node.name} ({node.step['Type']}) failed: {exc}"
                        node.record = self._record(
                            node,
                            "Failed",
                            seconds,
                            failure_reason=str(exc),
                            started_offset=round(t0 - run_t0, 3),
                        )
                        failure = failure or reason
                    else:
                        node.status = "Succeeded"
                        properties[node.name] = outcome.properties
                        node.record = self._record(
                            node,
                            "Succeeded",
                            seconds,
                            cache_hit=outcome.cache_hit,
                            started_offset=round(t0 - run_t0, 3),
                            detail=outcome.detail,
                            registered_version=outcome.registered_version,
                            outcome=outcome.properties.get("Outcome"),
                        )
                    _log_step(node.record)
                    if self.on_step:
                        self.on_step(node.record)
        return failure

    def _readiness(self, node: _Node, nodes: dict[str, _Node]) -> str:
        """ready, wait, or skip (a dependency did not succeed, or the branch was not taken)."""
        deps = [nodes[d] for d in node.deps]
        if any(d.status in ("NotStarted", "Executing") for d in deps):
            return "wait"
        if any(d.status != "Succeeded" for d in deps):
            return "skip"
        if node.gate:
            condition, branch = node.gate
            outcome = nodes[condition].record.get("outcome")
            if outcome is not branch:
                return "skip"
        return "ready"

    def _record(self, node: _Node, status: str, seconds: float, **extra: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": node.name,
            "type": node.step["Type"],
            "status": status,
            "seconds": round(seconds, 3),
            "cache_hit": extra.pop("cache_hit", False),
            "failure_reason": extra.pop("failure_reason", ""),
        }
        record.update({k: v for k, v in extra.items() if v not in (None, "")})
        return record

    def _read_json_uri(self, uri: Any) -> Any:
        """JsonGet and ModelMetrics read JSON documents from the local s3 tree."""
        path: Path = self.state.s3_path(str(uri))
        document = read_json(path)
        if document is None:
            raise CIError(f"{uri}: JSON document not found (local copy {path})")
        return document


def _log_step(record: dict[str, Any]) -> None:
    STEP_EVENTS.info(
        "step %s: %s", record["name"], record["status"], extra={"step_event": dict(record)}
    )
