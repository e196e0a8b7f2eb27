"""The training pipeline: Preprocess -> Train -> Evaluate -> CheckMetric -> RegisterModel | Fail.

Beside the main line: DataBaseline (``python -m <package> baseline``) describes Preprocess's
``baseline`` output (the training features) and the trained model's answers on it in
``statistics.json`` + ``constraints.json``, the format the repo's own monitor reads
(src/<package>/drift.py; the monitoring pipeline is pipelines/monitoring.py); CheckBias and Explain
score the trained model on the test split. RegisterModel attaches them all: ModelMetrics (model
quality from evaluation.json, the data baseline, Bias and Explainability reports) and
DriftCheckBaselines (the data baseline the monitor of a deployed version compares traffic with),
with the hyperparameters in CustomerMetadataProperties.

Nothing here is SageMaker Model Monitor (closed to new customers) or a Clarify job: every step is
a Processing job of the project's own image. The bias report follows Clarify's documented
``analysis.json`` layout (src/<package>/bias.py: DPL and DPPL, Clarify's definitions); the
explainability report is permutation importance in its own format, documented in
src/<package>/explain.py (not Clarify's kernel SHAP). Why not a ClarifyCheckStep: it uploads its
analysis config to S3 while the definition is being *built* (building must stay offline, see
sdk.py), and its model checks need a shadow endpoint, which the local backend cannot reproduce.

Every step runs the project's one image (``python -m <package> <step>``); data flows between steps
only through step properties (``Get`` expressions in the definition), so the same JSON runs on
SageMaker and on the local backend, which interprets it. The gate registers the model as
PendingManualApproval only when the model's primary metric (model.py: PRIMARY_METRIC, e.g. the
test-set AUC, or RMSE with HIGHER_IS_BETTER = False) is at least as good as MetricThreshold;
approving it is the merge of the deploy/staging.json pull request, never this pipeline.

Caching (30 days) keys on a step's arguments, not on the content behind an S3 URI: pass an image
tagged by content (ci_scripts does) and upload a changed dataset under a new key (InputDataUrl),
or a rerun reuses the old results.

    python -m pipelines.pipeline [--root .] [--image-uri URI]   # print the definition JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import sdk
from pipelines.settings import PipelineConfigError, PipelineSettings

if TYPE_CHECKING:
    import boto3
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import (
        ConditionStep,
        ModelStep,
        Pipeline,
        ProcessingStep,
        RetryPolicy,
        TrainingStep,
    )

__all__ = ["PipelineConfigError", "PipelineSettings", "definition", "get_pipeline", "main"]

# Step and property-file names: the local backend, ci_scripts and the tests refer to them.
PREPROCESS = "Preprocess"
TRAIN = "Train"
EVALUATE = "Evaluate"
DATA_BASELINE = "DataBaseline"
CHECK_BIAS = "CheckBias"
EXPLAIN = "Explain"
CHECK_METRIC = "CheckMetric"
REGISTER_MODEL = "RegisterModel"
METRIC_BELOW_THRESHOLD = "MetricBelowThreshold"
EVALUATION_REPORT = "EvaluationReport"

# `train` prints validation:<name>=<value> (the value may be negative, e.g. a regression's r2);
# SageMaker turns lines matching this regex into job metrics.
METRIC_VALUE_REGEX = r"(-?[0-9]+(?:\.[0-9]+)?)"

PROCESSING = "/opt/ml/processing"
SPLITS = ("train", "validation", "test")
CONTENT_TYPES = ("text/csv", "application/json")  # what `serve` accepts on /invocations


@dataclass(frozen=True)
class Parameters:
    """The run-time knobs of one execution (start-pipeline-execution can override each)."""

    input_data_url: ParameterString
    processing_instance_type: ParameterString
    training_instance_type: ParameterString
    metric_threshold: ParameterFloat
    model_approval_status: ParameterString

    @classmethod
    def for_settings(cls, settings: PipelineSettings) -> Parameters:
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString

        return cls(
            input_data_url=ParameterString("InputDataUrl", default_value=settings.input_data_url),
            processing_instance_type=ParameterString(
                "ProcessingInstanceType", default_value=settings.processing_instance_type
            ),
            training_instance_type=ParameterString(
                "TrainingInstanceType", default_value=settings.training_instance_type
            ),
            metric_threshold=ParameterFloat(
                "MetricThreshold", default_value=settings.metric_threshold
            ),
            model_approval_status=ParameterString(
                "ModelApprovalStatus",
                default_value=settings.approval_status,
                enum_values=["PendingManualApproval", "Approved", "Rejected"],
            ),
        )

    def all(self) -> list[Any]:
        return [
            self.input_data_url,
            self.processing_instance_type,
            self.training_instance_type,
            self.metric_threshold,
            self.model_approval_status,
        ]


def get_pipeline(settings: PipelineSettings, boto_session: boto3.Session | None = None) -> Pipeline:
    """The pipeline object; building it calls no AWS API.

    Without ``boto_session`` the pipeline gets an offline session: fine for ``definition()``,
    while ``upsert``/``start`` on it raise OfflineBuildError. Pass a real session to use those.
    """
    with sdk.build_environment(settings.region, offline=boto_session is None):
        return _build(settings, boto_session or sdk.offline_boto_session(settings.region))


def definition(settings: PipelineSettings) -> dict[str, Any]:
    """The pipeline definition (what CreatePipeline takes as PipelineDefinition), parsed."""
    with sdk.build_environment(settings.region, offline=True):
        pipeline = _build(settings, sdk.offline_boto_session(settings.region))
        return json.loads(pipeline.definition())  # steps render their job requests here


def _build(settings: PipelineSettings, boto_session: boto3.Session) -> Pipeline:
    from sagemaker.mlops.workflow import Pipeline

    session = sdk.pipeline_session(boto_session, settings.default_bucket)
    params = Parameters.for_settings(settings)
    preprocess = _preprocess_step(settings, session, params)
    train = _train_step(settings, session, params, preprocess)
    evaluate, report = _evaluate_step(settings, session, params, preprocess, train)
    data_baseline = _data_baseline_step(settings, session, params, preprocess, train)
    bias = _model_report_step(settings, session, params, preprocess, train, CHECK_BIAS, "bias")
    explain = _model_report_step(
        settings, session, params, preprocess, train, EXPLAIN, "explainability"
    )
    register = _register_step(
        settings, session, params, train, evaluate, data_baseline, bias, explain
    )
    return Pipeline(
        name=settings.pipeline_name,
        parameters=params.all(),
        steps=[
            preprocess,
            train,
            data_baseline,
            evaluate,
            bias,
            explain,
            _check_metric_step(settings, params, evaluate, report, register),
        ],
        sagemaker_session=session,
        # No SageMaker Experiments trial per run: the model registry is the record.
        pipeline_experiment_config=None,
    )


def _run_url(settings: PipelineSettings, step: str, name: str) -> Join:
    """s3://<bucket>/<prefix>/pipeline-runs/<execution id>/<step>/<name>: one place per run."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[settings.runs_url, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name],
    )


def _output_url(step: ProcessingStep, name: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def _cache(settings: PipelineSettings) -> Any:
    from sagemaker.mlops.workflow import CacheConfig

    return CacheConfig(enable_caching=True, expire_after=settings.cache_expire_after)


def _job_retries() -> list[RetryPolicy]:
    """Retry what is not the code's fault: API throttling/faults, no capacity, internal errors."""
    from sagemaker.mlops.workflow import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
    )

    return [
        *_api_retries(),
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
            ],
            interval_seconds=60,
            backoff_rate=2.0,
            max_attempts=3,
        ),
    ]


def _api_retries() -> list[RetryPolicy]:
    from sagemaker.mlops.workflow import StepExceptionTypeEnum, StepRetryPolicy

    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        )
    ]


def _processor(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters | None,
    command: str,
    *,
    instance_type: Any = None,
    environment: dict[str, Any] | None = None,
    job_name: str | None = None,
) -> Any:
    """A processing job running ``python -m <package> <command>`` in the project's image
    (``job_name``: the job name's part after the project, for commands a job name cannot spell,
    such as ``batch_check``: job names take no underscore)."""
    from sagemaker.core.processing import Processor

    return Processor(
        role=settings.role_arn,
        image_uri=settings.image_uri,
        entrypoint=["python", "-m", "ci_scripts.runtime", command],
        instance_count=1,
        instance_type=instance_type if params is None else params.processing_instance_type,
        env=environment,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name=f"{settings.project}-{job_name or command}",
        volume_kms_key=settings.kms_key,
        output_kms_key=settings.kms_key,
        sagemaker_session=session,
    )


def _input(name: str, s3_uri: Any, local_path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=s3_uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"
        ),
    )


def _output(settings: PipelineSettings, step: str, name: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=_run_url(settings, step, name),
            local_path=f"{PROCESSING}/{name}",
            s3_upload_mode="EndOfJob",
        ),
    )


def _preprocess_step(
    settings: PipelineSettings, session: PipelineSession, params: Parameters
) -> ProcessingStep:
    """dataset.csv -> 80/10/10 stratified train/validation/test splits + baseline (features)."""
    from sagemaker.mlops.workflow import ProcessingStep

    step_args = _processor(settings, session, params, "preprocess").run(
        inputs=[_input("data", params.input_data_url, f"{PROCESSING}/input/data")],
        outputs=[_output(settings, PREPROCESS, name) for name in (*SPLITS, "baseline")],
    )
    return ProcessingStep(
        name=PREPROCESS,
        step_args=step_args,
        cache_config=_cache(settings),
        retry_policies=_job_retries(),
    )


def _train_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters,
    preprocess: ProcessingStep,
) -> TrainingStep:
    """``<image> train`` on the train and validation splits; SageMaker packs /opt/ml/model."""
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.core.training.configs import (
        Compute,
        InputData,
        OutputDataConfig,
        StoppingCondition,
    )
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    with sdk.role_validation_skipped():
        trainer = ModelTrainer(
            training_image=settings.image_uri,
            role=settings.role_arn,
            base_job_name=f"{settings.project}-train",
            compute=Compute(
                instance_type=params.training_instance_type,
                instance_count=1,
                volume_size_in_gb=30,
                volume_kms_key_id=settings.kms_key,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=settings.max_runtime_seconds
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=_run_url(settings, TRAIN, "model"),
                compression_type="GZIP",
                kms_key_id=settings.kms_key,
            ),
            hyperparameters=dict(settings.hyperparameters),
            sagemaker_session=session,
        ).with_metric_definitions(
            [
                MetricDefinition(
                    name=f"validation:{name}", regex=f"validation:{name}={METRIC_VALUE_REGEX}"
                )
                for name in settings.metrics
            ]
        )
    with sdk.telemetry_opted_out(session):
        step_args = trainer.train(
            input_data_config=[
                InputData(
                    channel_name=split,
                    data_source=_output_url(preprocess, split),
                    content_type="text/csv",
                )
                for split in ("train", "validation")
            ]
        )
    return TrainingStep(
        name=TRAIN,
        step_args=step_args,
        cache_config=_cache(settings),
        retry_policies=_job_retries(),
    )


def _evaluate_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters,
    preprocess: ProcessingStep,
    train: TrainingStep,
) -> tuple[ProcessingStep, PropertyFile]:
    """The trained model on the test split -> evaluation.json, read by the gate as a property."""
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path="evaluation.json")
    step_args = _processor(settings, session, params, "evaluate").run(
        inputs=[
            _input(
                "model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"
            ),
            _input("test", _output_url(preprocess, "test"), f"{PROCESSING}/test"),
        ],
        outputs=[_output(settings, EVALUATE, "evaluation")],
    )
    step = ProcessingStep(
        name=EVALUATE,
        step_args=step_args,
        property_files=[report],
        cache_config=_cache(settings),
        retry_policies=_job_retries(),
    )
    return step, report


# The commands of the model-report steps, by their output name (see the module docstring).
REPORT_COMMANDS = {"bias": "bias", "explainability": "explain"}


def _data_baseline_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters,
    preprocess: ProcessingStep,
    train: TrainingStep,
) -> ProcessingStep:
    """``python -m <package> baseline``: the training features and the model's answers on them
    -> statistics.json + constraints.json (the monitor's baseline format)."""
    from sagemaker.mlops.workflow import ProcessingStep

    step_args = _processor(settings, session, params, "baseline").run(
        inputs=[
            _input(
                "model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"
            ),
            _input(
                "baseline_dataset",
                _output_url(preprocess, "baseline"),
                f"{PROCESSING}/baseline_dataset",
            ),
        ],
        outputs=[_output(settings, DATA_BASELINE, "baseline")],
    )
    return ProcessingStep(
        name=DATA_BASELINE,
        step_args=step_args,
        cache_config=_cache(settings),
        retry_policies=_job_retries(),
    )


def _model_report_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters,
    preprocess: ProcessingStep,
    train: TrainingStep,
    name: str,
    output: str,
) -> ProcessingStep:
    """``python -m <package> bias|explain``: the model on the test split -> analysis.json."""
    from sagemaker.mlops.workflow import ProcessingStep

    arguments = None
    if output == "bias" and settings.bias_facet:
        arguments = ["--facet", settings.bias_facet]
        arguments += ["--positive-outcome", settings.bias_positive_outcome]
    step_args = _processor(settings, session, params, REPORT_COMMANDS[output]).run(
        arguments=arguments,
        inputs=[
            _input(
                "model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"
            ),
            _input("test", _output_url(preprocess, "test"), f"{PROCESSING}/test"),
        ],
        outputs=[_output(settings, name, output)],
    )
    return ProcessingStep(
        name=name,
        step_args=step_args,
        cache_config=_cache(settings),
        retry_policies=_job_retries(),
    )


def _register_step(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters,
    train: TrainingStep,
    evaluate: ProcessingStep,
    data_baseline: ProcessingStep,
    bias: ProcessingStep,
    explain: ProcessingStep,
) -> ModelStep:
    """A new version in the model package group: the image serving Train's model.tar.gz, with
    every report as ModelMetrics, the data baseline as DriftCheckBaselines, and what a reviewer
    needs as metadata."""
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    def json_source(uri: Any) -> MetricsSource:
        return MetricsSource(content_type="application/json", s3_uri=uri)

    def report(step: ProcessingStep, output: str, file: str) -> MetricsSource:
        return json_source(Join(on="/", values=[_output_url(step, output), file]))

    builder = ModelBuilder(
        image_uri=settings.image_uri,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=settings.role_arn,
        sagemaker_session=session,
        # Only keeps ModelBuilder from looking a default up; the package pins no instance type,
        # the deploy manifests choose one.
        instance_type=settings.processing_instance_type,
        # The image already holds the serving code: no source upload (which would need a bucket
        # lookup) and no repack step.
        dependencies={},
        # Its default (DEBUG) would be set on an SDK logger for the rest of the process.
        log_level=None,
    )
    metadata: dict[str, Any] = {
        "project": settings.project,
        "problem_type": settings.problem_type,
        "primary_metric": settings.primary_metric,
        **{f"hyperparameter:{k}": v for k, v in settings.hyperparameters.items()},
    }
    with sdk.telemetry_opted_out(session):
        step_args = builder.register(
            model_package_group_name=settings.model_package_group,
            content_types=list(CONTENT_TYPES),
            response_types=["application/json"],
            model_metrics=ModelMetrics(
                model_statistics=report(evaluate, "evaluation", "evaluation.json"),
                model_data_statistics=report(data_baseline, "baseline", "statistics.json"),
                model_data_constraints=report(data_baseline, "baseline", "constraints.json"),
                bias=report(bias, "bias", "analysis.json"),
                explainability=report(explain, "explainability", "analysis.json"),
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=report(data_baseline, "baseline", "statistics.json"),
                model_data_constraints=report(data_baseline, "baseline", "constraints.json"),
            ),
            approval_status=params.model_approval_status,
            customer_metadata_properties=metadata,
        )
    return ModelStep(name=REGISTER_MODEL, step_args=step_args, retry_policies=_api_retries())


def quality_metric_path(settings: PipelineSettings) -> str:
    """Where the gate reads the primary metric in evaluation.json (SageMaker's layout)."""
    return f"{settings.problem_type}_metrics.{settings.primary_metric}.value"


def _check_metric_step(
    settings: PipelineSettings,
    params: Parameters,
    evaluate: ProcessingStep,
    report: PropertyFile,
    register: ModelStep,
) -> ConditionStep:
    """The quality gate: register when the primary metric is at least as good as
    MetricThreshold (>= when higher is better, <= when lower is), else fail naming both."""
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    path = quality_metric_path(settings)
    value = JsonGet(step_name=evaluate.name, property_file=report, json_path=path)
    if settings.higher_is_better:
        condition, worse = ConditionGreaterThanOrEqualTo, "below"
    else:
        condition, worse = ConditionLessThanOrEqualTo, "above"
    fail = FailStep(
        name=METRIC_BELOW_THRESHOLD,
        error_message=Join(
            on=" ",
            values=[
                f"{path} =",
                value,
                f"is {worse} MetricThreshold",
                params.metric_threshold,
                "- model not registered",
            ],
        ),
    )
    return ConditionStep(
        name=CHECK_METRIC,
        conditions=[condition(left=value, right=params.metric_threshold)],
        if_steps=[register],
        else_steps=[fail],
    )


def print_definition(
    argv: list[str] | None,
    module: str,
    build: Callable[[PipelineSettings], dict[str, Any]],
) -> int:
    """``python -m <module> [--root .] [--image-uri URI]``: print ``build(settings)`` as JSON,
    settings read from ``<root>/pyproject.toml`` (this pipeline's and the monitoring one's)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description="Print the SageMaker Pipeline definition JSON (no AWS call is made).",
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="the model repo root")
    parser.add_argument("--image-uri", help="image for every step (default: <ecr repo>:latest)")
    args = parser.parse_args(argv)
    overrides = {"image_uri": args.image_uri} if args.image_uri else {}
    try:
        settings = PipelineSettings.from_pyproject(args.root, **overrides)
    except PipelineConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json.dump(build(settings), sys.stdout, indent=2)
    print()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the definition JSON, built offline from ``<root>/pyproject.toml``."""
    return print_definition(argv, "pipelines.pipeline", definition)


if __name__ == "__main__":
    sys.exit(main())
