"""Run one step of a SageMaker pipeline definition on this machine.

Processing and Training steps run the project's real step code as a subprocess under SageMaker's
container conventions, with ``/opt/ml`` mapped into the step's work directory through the
``OPT_ML_ROOT`` environment variable the step code honours. Inputs are copied from the local s3
tree (``.mlops/s3``) into place before the run, outputs moved back to their S3 locations after it,
as a SageMaker job does. Condition, RegisterModel, Model and Fail steps need no process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_scripts import model_reports
from ci_scripts.backends.local import image
from ci_scripts.backends.local import tuning as _tuning
from ci_scripts.backends.local.cache import StepCache, caching_enabled
from ci_scripts.backends.local.expressions import Resolver, to_text
from ci_scripts.backends.local.processes import dies_with_parent, tail
from ci_scripts.backends.local.registry import SqliteRegistry
from ci_scripts.backends.local.state import LocalState, keep_code
from ci_scripts.backends.local.warm import WarmStarter
from ci_scripts.errors import CIError

_PYTHON = re.compile(r"^(/usr(/local)?/bin/)?python(3(\.\d+)?)?$")


class StepFailed(Exception):
    """The step ran and failed; the message is the reason (with the tail of its stderr)."""


@dataclass
class StepOutcome:
    """What a step left behind: its properties (for Get references) and how it got them."""

    properties: dict[str, Any]
    cache_hit: bool = False
    detail: str = ""
    registered_version: int | None = None


@dataclass
class StepContext:
    """Everything a step executor needs from the run it belongs to."""

    state: LocalState
    package: str
    src_dir: Path
    execution_id: str
    pipeline_name: str
    arn_prefix: str  # arn:aws:sagemaker:<region>:<account>:
    resolver: Resolver
    registry: SqliteRegistry
    cache: StepCache
    code_hash: str
    use_cache: bool = True
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # Local S3 copies of the repo's own files (data/dataset.csv -> InputDataUrl's default), and
    # where steps staged them: a step's error names the repo's file, not its staged copy.
    origins: dict[Path, str] = field(default_factory=dict)
    staged: dict[str, str] = field(default_factory=dict)
    # Starts `python -m ...` steps forked from a warm interpreter (warm.py); None: all cold.
    warm: WarmStarter | None = None

    def in_repo_terms(self, message: str) -> str:
        """``message`` with staged copies of the repo's files named as the repo names them."""
        for copy, origin in sorted(self.staged.items(), key=lambda kv: -len(kv[0])):
            message = message.replace(copy, origin)
        return message

    def job_name(self, step: str) -> str:
        return f"pipelines-{self.execution_id}-{step}"[:63]


# -- executors ---------------------------------------------------------------------------------
def run_processing(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """A ProcessingJob: inputs -> ``ContainerEntrypoint`` subprocess -> outputs."""
    name = step["Name"]
    args = ctx.resolver.resolve(step.get("Arguments") or {})
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    key = _cache_key(step, args, ctx)
    if key and (cached := ctx.cache.lookup(key)) is not None:
        return StepOutcome(cached, cache_hit=True)

    work, opt_ml = _work_dirs(ctx, name)
    for item in args.get("ProcessingInputs") or []:
        s3_input = item.get("S3Input")
        if not s3_input:
            raise CIError(f"step {name}: input {item.get('InputName')}: only S3Input is supported")
        _download(ctx, s3_input["S3Uri"], _local(s3_input["LocalPath"], opt_ml, work), name)
    for out in outputs:
        _local(out["S3Output"]["LocalPath"], opt_ml, work).mkdir(parents=True, exist_ok=True)

    app = args.get("AppSpecification") or {}
    command = list(app.get("ContainerEntrypoint") or image.command("python"))
    command += [to_text(a) for a in app.get("ContainerArguments") or []]
    stopping = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    _execute(ctx, name, command, args.get("Environment") or {}, work, opt_ml, stopping)

    uploaded: dict[str, dict[str, Any]] = {}
    for out in outputs:
        s3_output = out["S3Output"]
        _upload(ctx, _local(s3_output["LocalPath"], opt_ml, work), s3_output["S3Uri"])
        uploaded[out["OutputName"]] = {"OutputName": out["OutputName"], "S3Output": s3_output}
    properties = {
        "ProcessingJobName": ctx.job_name(name),
        "ProcessingJobArn": f"{ctx.arn_prefix}processing-job/{ctx.job_name(name).lower()}",
        "ProcessingJobStatus": "Completed",
        "AppSpecification": app,
        "ProcessingOutputConfig": {"Outputs": uploaded},
        "PropertyFiles": {
            pf["PropertyFileName"]: _join_uri(
                uploaded[pf["OutputName"]]["S3Output"]["S3Uri"], pf["FilePath"]
            )
            for pf in step.get("PropertyFiles") or []
            if pf.get("OutputName") in uploaded
        },
    }
    if key:
        ctx.cache.store(
            key, name, ctx.execution_id, properties, [o["S3Output"]["S3Uri"] for o in outputs]
        )
    return StepOutcome(properties)


def run_training(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """A TrainingJob: channels -> ``<image> train`` -> ``model.tar.gz`` of /opt/ml/model."""
    name = step["Name"]
    args = ctx.resolver.resolve(step.get("Arguments") or {})
    key = _cache_key(step, args, ctx)
    if key and (cached := ctx.cache.lookup(key)) is not None:
        return StepOutcome(cached, cache_hit=True)

    properties = _training_job(name, ctx.job_name(name), args, ctx)
    model_uri = properties["ModelArtifacts"]["S3ModelArtifacts"]
    if key:
        ctx.cache.store(key, name, ctx.execution_id, properties, [model_uri])
    return StepOutcome(properties)


def _training_job(
    name: str, job_name: str, args: dict[str, Any], ctx: StepContext
) -> dict[str, Any]:
    """One training job of resolved CreateTrainingJob ``args`` (work dir ``name``): channels in,
    ``<image> train``, /opt/ml/model packed at <S3OutputPath>/<job_name>/output/model.tar.gz."""
    work, opt_ml = _work_dirs(ctx, name)
    channels: dict[str, Any] = {}
    for channel in args.get("InputDataConfig") or []:
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise CIError(f"step {name}: channel {channel.get('ChannelName')}: only S3 data")
        _download(ctx, source["S3Uri"], opt_ml / "input" / "data" / channel["ChannelName"], name)
        channels[channel["ChannelName"]] = {
            "ContentType": channel.get("ContentType", ""),
            "TrainingInputMode": channel.get("InputMode", "File"),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": "None",
        }
    hyperparameters = {k: to_text(v) for k, v in (args.get("HyperParameters") or {}).items()}
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for file, content in (
        ("hyperparameters.json", hyperparameters),
        ("inputdataconfig.json", channels),
        ("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]}),
    ):
        (config / file).write_text(_json(content), encoding="utf-8")
    for sub in ("model", "output/data", "checkpoints"):
        (opt_ml / sub).mkdir(parents=True, exist_ok=True)

    algorithm = args.get("AlgorithmSpecification") or {}
    # The image's ENTRYPOINT is `python -m ci_scripts.runtime` and SageMaker passes `train`
    # (the Dockerfile's contract); an explicit ContainerEntrypoint replaces that, as on SageMaker.
    if algorithm.get("ContainerEntrypoint"):
        command = list(algorithm["ContainerEntrypoint"])
        command += [to_text(a) for a in algorithm.get("ContainerArguments") or []]
    else:
        command = image.command("python", "train")
    stopping = (args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    stdout = _execute(ctx, name, command, args.get("Environment") or {}, work, opt_ml, stopping)

    output_path = (args.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not output_path:
        raise CIError(f"step {name}: OutputDataConfig.S3OutputPath is missing")
    model_uri = _join_uri(output_path, job_name, "output", "model.tar.gz")
    _pack_model(opt_ml / "model", ctx.state.s3_path(model_uri))
    properties = {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"{ctx.arn_prefix}training-job/{job_name.lower()}",
        "TrainingJobStatus": "Completed",
        "AlgorithmSpecification": algorithm,
        "HyperParameters": hyperparameters,
        "OutputDataConfig": args.get("OutputDataConfig"),
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": _final_metrics(algorithm.get("MetricDefinitions") or [], stdout),
    }
    return properties


def run_condition(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """All of ``Conditions`` must hold; the runner then takes IfSteps or ElseSteps."""
    conditions = (step.get("Arguments") or {}).get("Conditions") or []
    try:
        outcome = all(ctx.resolver.condition(cond) for cond in conditions)
    except CIError as exc:
        raise StepFailed(str(exc)) from exc
    return StepOutcome({"Outcome": outcome}, detail=f"outcome {str(outcome).lower()}")


def run_fail(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """A Fail step ends the run with its (resolved) error message."""
    message = to_text(ctx.resolver.resolve((step.get("Arguments") or {}).get("ErrorMessage", "")))
    raise StepFailed(message or "Fail step reached")


def run_model(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """A CreateModel step: nothing to create locally, but later steps may read its name."""
    name = f"{ctx.pipeline_name}-{ctx.execution_id}-{step['Name']}"[:63]
    return StepOutcome({"ModelName": name, "ModelArn": f"{ctx.arn_prefix}model/{name.lower()}"})


def run_register(step: dict[str, Any], ctx: StepContext) -> StepOutcome:
    """CreateModelPackage into the SQLite registry, with metrics read from ModelMetrics."""
    name = step["Name"]
    args = ctx.resolver.resolve(step.get("Arguments") or {})
    group = args.get("ModelPackageGroupName")
    containers = (args.get("InferenceSpecification") or {}).get("Containers") or []
    if not group or not containers:
        raise CIError(f"step {name}: ModelPackageGroupName and InferenceSpecification are required")
    model_data_url = containers[0].get("ModelDataUrl", "")
    if not model_data_url or not ctx.state.s3_path(model_data_url).exists():
        raise StepFailed(f"model artifact {model_data_url or '(none)'} does not exist")
    metrics_doc = _metrics_source(args.get("ModelMetrics"), "ModelQuality", "Statistics")
    metadata = {k: to_text(v) for k, v in (args.get("CustomerMetadataProperties") or {}).items()}
    if trials := _trials_of(metadata.get("tuning_job", ""), ctx):
        metadata["trials"] = trials
    declared_hps, declared_metrics = metadata_parts(metadata)
    metrics = flatten_metrics(ctx.resolver.read_json_uri(metrics_doc)) if metrics_doc else {}
    reports = model_reports.report_uris(args.get("ModelMetrics"), args.get("DriftCheckBaselines"))
    checks = {kind: _summary(kind, uri, ctx) for kind, uri in reports.items()}
    version = ctx.registry.register(
        group,
        model_data_url=model_data_url,
        image_uri=containers[0].get("Image", ""),
        approval_status=args.get("ModelApprovalStatus") or "PendingManualApproval",
        metrics=metrics or declared_metrics,
        hyperparameters=declared_hps or _hyperparameters_of(model_data_url, ctx),
        baseline_uri=_baseline_uri(args),
        description=args.get("ModelPackageDescription")
        or f"pipeline {ctx.pipeline_name} execution {ctx.execution_id}",
        metadata=metadata,
        reports=reports,
        checks={kind: summary for kind, summary in checks.items() if summary},
    )
    # The version serves the code it was trained and registered with, not whatever src/ holds
    # when it is deployed again (a rollback): on aws the image tag pins it, locally this copy.
    keep_code(ctx.state, ctx.src_dir, ctx.code_hash, group, version.version)
    return StepOutcome(
        {"ModelPackageArn": version.arn, "ModelPackageVersion": version.version},
        detail=f"registered version {version.version} ({version.approval_status})",
        registered_version=version.version,
    )


EXECUTORS: dict[str, Callable[[dict[str, Any], StepContext], StepOutcome]] = {
    "Processing": run_processing,
    "Training": run_training,
    "Condition": run_condition,
    "Fail": run_fail,
    "Model": run_model,
    "RegisterModel": run_register,
    "Tuning": lambda step, ctx: _tuning.run_tuning(step, ctx),
}


# -- helpers -----------------------------------------------------------------------------------
def flatten_metrics(document: Any) -> dict[str, float]:
    """SageMaker model-quality JSON (``{"<kind>_metrics": {"auc": {"value": x}}}``) -> name: x."""
    metrics: dict[str, float] = {}
    if not isinstance(document, dict):
        return metrics
    for section in document.values():
        if not isinstance(section, dict):
            continue
        for metric, body in section.items():
            value = body.get("value") if isinstance(body, dict) else body
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                metrics[metric] = number
    return metrics


def metadata_parts(properties: dict[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    """Hyperparameters and fallback metrics declared in CustomerMetadataProperties.

    The aws backend reads the same keys: ``hyperparameters`` (a JSON object),
    ``hyperparameter:<name>`` and ``metric:<name>``.
    """
    hyperparameters: dict[str, str] = {}
    metrics: dict[str, float] = {}
    try:
        blob = json.loads(properties.get("hyperparameters") or "null")
    except ValueError:
        blob = None
    if isinstance(blob, dict):
        hyperparameters.update({str(k): to_text(v) for k, v in blob.items()})
    for key, value in properties.items():
        kind, _, name = key.partition(":")
        if kind == "hyperparameter" and name:
            hyperparameters[name] = value
        elif kind == "metric" and name:
            with contextlib.suppress(ValueError):
                metrics[name] = float(value)
    return hyperparameters, metrics


def _cache_key(step: dict[str, Any], args: dict[str, Any], ctx: StepContext) -> str | None:
    if not (ctx.use_cache and caching_enabled(step)):
        return None
    return ctx.cache.key(step, args, ctx.code_hash)


def _work_dirs(ctx: StepContext, name: str) -> tuple[Path, Path]:
    work = ctx.state.run_dir(ctx.execution_id) / name
    if work.exists():
        shutil.rmtree(work)
    opt_ml = work / "opt_ml"
    opt_ml.mkdir(parents=True)
    return work, opt_ml


def _local(container_path: str, opt_ml: Path, work: Path) -> Path:
    """A container path: /opt/ml/... lives under the step's opt_ml, anything else under rootfs/."""
    posix = "/" + container_path.strip("/")
    if posix == "/opt/ml" or posix.startswith("/opt/ml/"):
        return opt_ml / posix[len("/opt/ml") :].lstrip("/")
    return work / "rootfs" / posix.lstrip("/")


def _download(ctx: StepContext, uri: str, dest: Path, step: str) -> None:
    """Copy an S3 object (into ``dest/<name>``) or prefix (its contents into ``dest``)."""
    source = ctx.state.s3_path(uri)
    if not source.exists():
        raise StepFailed(f"input {uri} does not exist (local copy {source})")
    dest.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copy2(source, dest / source.name)
    else:
        shutil.copytree(source, dest, dirs_exist_ok=True)
    for copy, origin in ctx.origins.items():
        if copy == source:
            ctx.staged[str(dest / source.name)] = origin
        elif copy.is_relative_to(source):
            ctx.staged[str(dest / copy.relative_to(source))] = origin


def _upload(ctx: StepContext, produced: Path, uri: str) -> None:
    """Move a job's output directory to its S3 location, replacing what was there."""
    target = ctx.state.s3_path(uri)
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if produced.exists():
        shutil.move(str(produced), str(target))
    else:
        target.mkdir()


def _execute(
    ctx: StepContext,
    name: str,
    command: list[str],
    environment: dict[str, Any],
    work: Path,
    opt_ml: Path,
    timeout: Any,
) -> str:
    """Run the container command; a non-zero exit is a StepFailed with the tail of its stderr."""
    command = [_localize_arg(arg, i, opt_ml, work) for i, arg in enumerate(command)]
    env = image.environment(ctx.src_dir, ctx.package, ctx.base_env)
    env.update({k: to_text(v) for k, v in environment.items()})
    env["OPT_ML_ROOT"] = str(opt_ml)
    env["PYTHONUNBUFFERED"] = "1"
    stdout_log, stderr_log = work / "stdout.log", work / "stderr.log"
    started = time.monotonic()
    seconds = float(timeout) if timeout else None
    with stdout_log.open("wb") as out, stderr_log.open("wb") as err:
        try:
            returncode = None
            if ctx.warm is not None:
                returncode = ctx.warm.run(
                    command, cwd=work, env=env, stdout=out, stderr=err, timeout=seconds
                )
            if returncode is None:  # not a `python -m` command, or no warm process: cold
                returncode = subprocess.run(
                    command,
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    preexec_fn=dies_with_parent(),  # no orphaned step after a kill -9 of the CLI
                    timeout=seconds,
                    check=False,
                ).returncode
        except FileNotFoundError as exc:
            raise StepFailed(f"command {command[0]!r} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"exceeded MaxRuntimeInSeconds={timeout}") from exc
        except OSError as exc:  # the warm process ended under the step (the run is stopping)
            raise StepFailed(str(exc)) from exc
    (work / "seconds").write_text(f"{time.monotonic() - started:.3f}\n")
    if returncode != 0:
        reason = ""
        for failure in (opt_ml / "output" / "failure", opt_ml / "output" / "message"):
            if failure.is_file():
                reason = failure.read_text(errors="replace").strip()[:500]
        stderr = tail(stderr_log)
        said = f"{reason}; stderr: {stderr}" if reason and reason not in stderr else reason
        root = ctx.state.root
        log = stderr_log.relative_to(root) if stderr_log.is_relative_to(root) else stderr_log
        raise StepFailed(
            ctx.in_repo_terms(
                f"exited with code {returncode}: {said or f'stderr: {stderr}'} (full log: {log})"
            )
        )
    return stdout_log.read_text(errors="replace")


def _localize_arg(arg: str, index: int, opt_ml: Path, work: Path) -> str:
    """``python`` is this interpreter (with the step code's deps), /opt/ml/... the work dir."""
    arg = to_text(arg)
    if index == 0 and _PYTHON.match(arg):
        return sys.executable
    if arg.startswith("/opt/ml"):
        return str(_local(arg, opt_ml, work))
    return arg


def _pack_model(model_dir: Path, target: Path) -> None:
    """SageMaker packs /opt/ml/model as model.tar.gz with the files at the archive root."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    os.replace(partial, target)


def _join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def _json(content: Any) -> str:
    return json.dumps(content, indent=2, sort_keys=True)


def _final_metrics(definitions: list[dict[str, str]], log: str) -> dict[str, dict[str, Any]]:
    """MetricDefinitions regexes over the training log, last match wins (SageMaker's rule)."""
    found: dict[str, dict[str, Any]] = {}
    for definition in definitions:
        matches = re.findall(definition.get("Regex", "(?!)"), log)
        if matches:
            last = matches[-1][0] if isinstance(matches[-1], tuple) else matches[-1]
            try:
                found[definition["Name"]] = {"MetricName": definition["Name"], "Value": float(last)}
            except ValueError:
                continue
    return found


def _metrics_source(metrics: Any, kind: str, part: str) -> str | None:
    uri = ((metrics or {}).get(kind) or {}).get(part) or {}
    return uri.get("S3Uri") if isinstance(uri, dict) else None


def _baseline_uri(args: dict[str, Any]) -> str | None:
    """The data-quality baseline attached to the package, wherever the definition put it."""
    for holder in (args.get("DriftCheckBaselines"), args.get("ModelMetrics")):
        for part in ("Statistics", "Constraints"):
            if uri := _metrics_source(holder, "ModelDataQuality", part):
                return uri
    metadata = args.get("CustomerMetadataProperties") or {}
    return metadata.get("baseline_uri") or metadata.get("BaselineUri")


def _summary(kind: str, uri: str, ctx: StepContext) -> dict[str, Any]:
    """A report's summary; a missing or unreadable report is an empty one (as on aws)."""
    try:
        return model_reports.summarize(kind, ctx.resolver.read_json_uri(uri))
    except CIError:
        return {}


def _trials_of(tuning_job: str, ctx: StepContext) -> str:
    """The trials of ``tuning_job`` (a Tuning step of this run), best first, as compact JSON."""
    for props in list(ctx.resolver.steps.values()):
        if tuning_job and props.get("HyperParameterTuningJobName") == tuning_job:
            return json.dumps(
                [
                    {
                        "job": s["TrainingJobName"],
                        "status": s.get("TrainingJobStatus", ""),
                        "objective": (
                            s.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
                        ).get("Value"),
                        "hyperparameters": s.get("TunedHyperParameters") or {},
                    }
                    for s in props.get("TrainingJobSummaries") or []
                ],
                separators=(",", ":"),
            )
    return ""


def _hyperparameters_of(model_data_url: str, ctx: StepContext) -> dict[str, str]:
    """Hyperparameters of the training step that produced ``model_data_url`` (lineage)."""
    for props in ctx.resolver.steps.values():
        if (props.get("ModelArtifacts") or {}).get("S3ModelArtifacts") == model_data_url:
            return dict(props.get("HyperParameters") or {})
    return {}
