"""The local Tuning step: SageMaker Automatic Model Tuning's semantics, Optuna's search.

A TuningStep's arguments are a CreateHyperParameterTuningJob request: the tuning config (strategy,
objective, ResourceLimits, ParameterRanges, RandomSeed) and the TrainingJobDefinition every trial
runs with its searched values added to StaticHyperParameters. Each trial here is the Training
step's own job (``steps._training_job``: the real ``train`` code as a subprocess, the objective
read from its log through the definition's MetricDefinitions), at most MaxParallelTrainingJobs at
a time. Optuna proposes the values (TPE for "Bayesian", its random sampler for "Random"), seeded
with RandomSeed; trials are asked for a batch of MaxParallelTrainingJobs at a time and told back
in trial order, so a rerun with the same data proposes the same values.

The step's properties are what the definition may read of a tuning job
(DescribeHyperParameterTuningJob + ListTrainingJobsForHyperParameterTuningJob):
``BestTrainingJob`` and ``TrainingJobSummaries`` best first, so the SDK's
``get_top_model_s3_uri(top_k=0, ...)`` (``TrainingJobSummaries[0].TrainingJobName``) names the
best trial, whose model lies at <S3OutputPath>/<its job name>/output/model.tar.gz as on SageMaker.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ci_scripts.backends.local.expressions import to_text
from ci_scripts.errors import CIError

log = logging.getLogger(__name__)

# SageMaker's tuning job names are at most 32 characters (CreateHyperParameterTuningJob):
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html
TUNING_JOB_NAME_MAX = 32


def run_tuning(step: dict[str, Any], ctx: Any) -> Any:
    """Run the trials of ``step`` and report the best as SageMaker does."""
    from ci_scripts.backends.local import steps as local_steps

    name = step["Name"]
    args = ctx.resolver.resolve(step.get("Arguments") or {})
    key = local_steps._cache_key(step, args, ctx)
    if key and (cached := ctx.cache.lookup(key)) is not None:
        return local_steps.StepOutcome(cached, cache_hit=True)
    config = args.get("HyperParameterTuningJobConfig") or {}
    definition = args.get("TrainingJobDefinition")
    if not definition:
        raise CIError(f"step {name}: TrainingJobDefinition is required (one definition only)")
    objective = config.get("HyperParameterTuningJobObjective") or {}
    metric, direction = objective.get("MetricName"), objective.get("Type", "Maximize")
    if not metric or direction not in ("Maximize", "Minimize"):
        raise CIError(f"step {name}: HyperParameterTuningJobObjective needs MetricName and Type")
    limits = config.get("ResourceLimits") or {}
    max_trials = int(limits.get("MaxNumberOfTrainingJobs") or 1)
    parallel = max(1, min(int(limits.get("MaxParallelTrainingJobs") or 1), max_trials))
    study = _study(config, direction)
    space = _space(config.get("ParameterRanges") or {}, name)
    static = {k: to_text(v) for k, v in (definition.get("StaticHyperParameters") or {}).items()}

    summaries: list[dict[str, Any]] = []
    with ThreadPoolExecutor(parallel, thread_name_prefix=f"{name}-trial") as pool:
        while len(summaries) < max_trials:
            batch = [study.ask() for _ in range(min(parallel, max_trials - len(summaries)))]
            tuned = [{k: _text(suggest(t)) for k, suggest in space.items()} for t in batch]
            jobs = [
                pool.submit(
                    _trial,
                    name,
                    f"{ctx.job_name(name)}-{len(summaries) + i + 1:03d}"[-63:],
                    definition,
                    static,
                    values,
                    metric,
                    ctx,
                )
                for i, values in enumerate(tuned)
            ]
            for trial, job in zip(batch, jobs, strict=True):
                summary = job.result()
                value = summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
                if value is None:
                    study.tell(trial, state=_failed_state())
                else:
                    study.tell(trial, value)
                summaries.append(summary)

    completed = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    if not completed:
        reasons = "; ".join(s.get("FailureReason", "") for s in summaries)[:800]
        raise local_steps.StepFailed(f"all {len(summaries)} trials failed: {reasons}")
    ranked = sorted(
        completed,
        key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
        reverse=direction == "Maximize",
    ) + [s for s in summaries if s not in completed]
    best = ranked[0]
    job_name = f"{ctx.execution_id}-{name}"[-TUNING_JOB_NAME_MAX:].strip("-").lower()
    properties = {
        "HyperParameterTuningJobName": job_name,
        "HyperParameterTuningJobArn": f"{ctx.arn_prefix}hyper-parameter-tuning-job/{job_name}",
        "HyperParameterTuningJobStatus": "Completed",
        "HyperParameterTuningJobConfig": config,
        "BestTrainingJob": best,
        "TrainingJobSummaries": ranked,
        "TrainingJobStatusCounters": {
            "Completed": len(completed),
            "NonRetryableError": len(summaries) - len(completed),
        },
        "ObjectiveStatusCounters": {
            "Succeeded": len(completed),
            "Failed": len(summaries) - len(completed),
        },
    }
    if key:
        uris = [s["ModelArtifacts"]["S3ModelArtifacts"] for s in completed]
        ctx.cache.store(key, name, ctx.execution_id, properties, uris)
    value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    return local_steps.StepOutcome(
        properties,
        detail=f"{len(summaries)} trials, best {metric}={value:.4f} ({best['TrainingJobName']})",
    )


def _trial(
    step: str,
    job_name: str,
    definition: dict[str, Any],
    static: dict[str, str],
    tuned: dict[str, str],
    metric: str,
    ctx: Any,
) -> dict[str, Any]:
    """One training job of the definition with ``tuned`` values: its HyperParameterTrainingJob
    summary (a failed one carries FailureReason and no objective)."""
    from ci_scripts.backends.local import steps as local_steps

    args = {
        "AlgorithmSpecification": definition.get("AlgorithmSpecification") or {},
        "HyperParameters": {**static, **tuned},
        "InputDataConfig": definition.get("InputDataConfig") or [],
        "OutputDataConfig": definition.get("OutputDataConfig") or {},
        "StoppingCondition": definition.get("StoppingCondition") or {},
        "Environment": definition.get("Environment") or {},
    }
    summary: dict[str, Any] = {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"{ctx.arn_prefix}training-job/{job_name.lower()}",
        "TunedHyperParameters": tuned,
    }
    work = f"{step}/{job_name.rsplit('-', 1)[-1]}"
    try:
        properties = local_steps._training_job(work, job_name, args, ctx)
    except (local_steps.StepFailed, CIError) as exc:
        log.warning("trial %s failed: %s", job_name, exc)
        return {**summary, "TrainingJobStatus": "Failed", "FailureReason": str(exc)[:1024]}
    summary.update(
        TrainingJobStatus="Completed",
        ModelArtifacts=properties["ModelArtifacts"],
        FinalMetricDataList=properties["FinalMetricDataList"],
    )
    found = properties["FinalMetricDataList"].get(metric)
    if found is None or not math.isfinite(found["Value"]):
        summary["FailureReason"] = f"objective metric {metric} not found in the training log"
        return summary
    summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
        "MetricName": metric,
        "Value": found["Value"],
    }
    summary["ObjectiveStatus"] = "Succeeded"
    return summary


def _study(config: dict[str, Any], direction: str) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = config.get("RandomSeed")
    seed = None if seed is None else int(seed)
    strategy = config.get("Strategy", "Bayesian")
    if strategy == "Bayesian":
        sampler: Any = optuna.samplers.TPESampler(seed=seed)
    elif strategy == "Random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        raise CIError(f"tuning strategy {strategy!r}: the local backend runs Bayesian and Random")
    return optuna.create_study(direction=direction.lower(), sampler=sampler)


def _failed_state() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL


def _space(ranges: dict[str, Any], step: str) -> dict[str, Any]:
    """ParameterRanges -> ``{name: trial -> value}`` (Optuna's suggest calls)."""
    space: dict[str, Any] = {}

    def scale(item: dict[str, Any]) -> bool:
        kind = item.get("ScalingType", "Auto")
        if kind == "ReverseLogarithmic":
            raise CIError(f"step {step}: {item['Name']}: ReverseLogarithmic runs on AWS only")
        return kind == "Logarithmic"

    for item in ranges.get("ContinuousParameterRanges") or []:
        low, high, log_ = float(item["MinValue"]), float(item["MaxValue"]), scale(item)
        space[item["Name"]] = lambda t, n=item["Name"], a=low, b=high, g=log_: t.suggest_float(
            n, a, b, log=g
        )
    for item in ranges.get("IntegerParameterRanges") or []:
        low, high, log_ = int(item["MinValue"]), int(item["MaxValue"]), scale(item)
        space[item["Name"]] = lambda t, n=item["Name"], a=low, b=high, g=log_: t.suggest_int(
            n, a, b, log=g
        )
    for item in ranges.get("CategoricalParameterRanges") or []:
        values = [to_text(v) for v in item["Values"]]
        space[item["Name"]] = lambda t, n=item["Name"], v=values: t.suggest_categorical(n, v)
    return space


def _text(value: Any) -> str:
    """A hyperparameter value as SageMaker passes it: a string."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
