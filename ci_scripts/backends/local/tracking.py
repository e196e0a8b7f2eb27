"""MLflow tracking of local pipeline runs: one run per pipeline execution, one nested run per trial.

The store is ``.mlops/mlflow`` (a SQLite database and an artifact directory); ``make mlflow-ui``
in the model repo serves it on http://127.0.0.1:5000. Tracking is on when mlflow is importable:
it is an optional extra (``tracking``), because importing mlflow and creating its store costs
seconds the first ``make demo`` cannot spare (the template's README gives the measurement: about
2 s to import, 2 s more to create a new store). ``CI_SCRIPTS_LOCAL_TRACKING=0`` turns it off where
mlflow is installed. No network: the tracking URI is a local file.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

UI_URL = "http://127.0.0.1:5000"
SWITCH = "CI_SCRIPTS_LOCAL_TRACKING"


def enabled() -> bool:
    """Whether mlflow is installed (nothing is imported to find out) and not switched off."""
    return os.environ.get(SWITCH, "1") != "0" and importlib.util.find_spec("mlflow") is not None


def store(mlops: Path) -> tuple[str, Path]:
    """The tracking URI and artifact root under ``.mlops``."""
    root = mlops / "mlflow"
    return f"sqlite:///{(root / 'mlflow.db').resolve()}", root / "artifacts"


def record(
    mlops: Path,
    *,
    experiment: str,
    execution_id: str,
    status: str,
    parameters: dict[str, Any],
    steps: dict[str, dict[str, Any]],
    commit: str,
    model_path: Path | None,
) -> str:
    """Log the execution and its trials; return the run's URL in the MLflow UI ("" when off)."""
    if not enabled():
        return ""
    try:
        return _record(
            mlops, experiment, execution_id, status, parameters, steps, commit, model_path
        )
    except Exception as exc:  # tracking must never fail a pipeline run
        log.warning("MLflow tracking of %s failed: %s: %s", execution_id, type(exc).__name__, exc)
        return ""


def _record(
    mlops: Path,
    experiment: str,
    execution_id: str,
    status: str,
    parameters: dict[str, Any],
    steps: dict[str, dict[str, Any]],
    commit: str,
    model_path: Path | None,
) -> str:
    import mlflow

    uri, artifacts = store(mlops)
    artifacts.mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(experiment, artifact_location=artifacts.resolve().as_uri())
    )
    tags = {
        "pipeline_execution_id": execution_id,
        "status": status,
        "mlflow.source.git.commit": commit,
    }
    run = client.create_run(experiment_id, run_name=execution_id, tags=tags)
    run_id = run.info.run_id
    for name, value in parameters.items():
        client.log_param(run_id, f"parameter.{name}", str(value)[:500])
    for props in steps.values():
        for summary in props.get("TrainingJobSummaries") or []:
            trial = client.create_run(
                experiment_id,
                run_name=summary["TrainingJobName"],
                tags={
                    "mlflow.parentRunId": run_id,
                    "pipeline_execution_id": execution_id,
                    "status": summary.get("TrainingJobStatus", ""),
                },
            )
            for name, value in (summary.get("TunedHyperParameters") or {}).items():
                client.log_param(trial.info.run_id, name, value)
            for metric in (summary.get("FinalMetricDataList") or {}).values():
                client.log_metric(trial.info.run_id, metric["MetricName"], metric["Value"])
            client.set_terminated(
                trial.info.run_id, "FINISHED" if "ModelArtifacts" in summary else "FAILED"
            )
        if best := props.get("BestTrainingJob"):
            for name, value in (best.get("TunedHyperParameters") or {}).items():
                client.log_param(run_id, name, value)
            client.set_tag(run_id, "best_training_job", best["TrainingJobName"])
        for name, value in (props.get("HyperParameters") or {}).items():  # a plain Train
            client.log_param(run_id, name, value)
        for metric in (props.get("FinalMetricDataList") or {}).values():
            client.log_metric(run_id, metric["MetricName"], metric["Value"])
    for name, value in (steps.get("__evaluation__") or {}).items():
        client.log_metric(run_id, f"test.{name}", value)
    if model_path is not None and model_path.is_file():
        client.log_artifact(run_id, str(model_path), "model")
    client.set_terminated(run_id, "FINISHED" if status == "Succeeded" else "FAILED")
    return f"{UI_URL}/#/experiments/{experiment_id}/runs/{run_id}"
