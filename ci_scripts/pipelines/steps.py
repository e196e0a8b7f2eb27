"""The training pipeline's step builders: what the team's ``pipelines/pipeline.py`` composes.

The default pipeline is Preprocess -> Train -> Evaluate -> CheckMetric -> RegisterModel | Fail.
Beside the main line: DataBaseline (``baseline``) describes Preprocess's ``baseline`` output (the
training features) and the trained model's answers on it in ``statistics.json`` +
``constraints.json``, the format the platform's own monitor reads (the monitoring pipeline is
ci_scripts/pipelines/monitoring.py); CheckBias and Explain score the trained model on the test
split. RegisterModel attaches them all: ModelMetrics (model quality from evaluation.json, the data
baseline, Bias and Explainability reports) and DriftCheckBaselines (the data baseline the monitor
of a deployed version compares traffic with), with the hyperparameters in
CustomerMetadataProperties.

Nothing here is SageMaker Model Monitor (closed to new customers) or a Clarify job: every step is
a Processing job of the project's own image. The bias report follows Clarify's documented
``analysis.json`` layout (DPL and DPPL, Clarify's definitions); the explainability report is
permutation importance in its own format (not Clarify's kernel SHAP). Why not a ClarifyCheckStep:
it uploads its analysis config to S3 while the definition is being *built* (building must stay
offline, see sdk.py), and its model checks need a shadow endpoint, which the local backend cannot
reproduce.

Every processing step runs the project's one image as ``python -m ci_scripts.runtime <command>``
(training runs the image's ENTRYPOINT with ``train``); data flows between steps only through step
properties (``Get`` expressions in the definition), so the same JSON runs on SageMaker and on the
local backend, which interprets it. The gate registers the model as PendingManualApproval only
when the model's primary metric (model.py: PRIMARY_METRIC, e.g. the test-set AUC, or RMSE with
HIGHER_IS_BETTER = False) is at least as good as MetricThreshold; approving it is the merge of the
deploy/staging.json pull request, never this pipeline.

Caching (30 days) keys on a step's arguments, not on the content behind an S3 URI: pass an image
tagged by content (ci_scripts does) and upload a changed dataset under a new key (InputDataUrl),
or a rerun reuses the old results.

Use: open a :func:`build` block, call the builders with its :class:`Build` and the steps they
depend on, and end with :func:`pipeline`; :func:`definition` turns a ``get_pipeline`` into the
definition JSON, built offline. Builders other than the default line's (a team's own
ProcessingStep) take :func:`processor`, :func:`processing_input`, :func:`processing_output`,
:func:`output_url`, :func:`cache` and :func:`job_retries`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_scripts.pipelines import sdk
from ci_scripts.pipelines.settings import PipelineSettings

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
        TuningStep,
    )
    from sagemaker.train.model_trainer import ModelTrainer

# Step and property-file names: the local backend, ci_scripts and the tests refer to them.
PREPROCESS = "Preprocess"
TRAIN = "Train"
TUNE = "Tune"
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
# A processing job's entry point in the project's image: the platform's runtime dispatcher.
RUNTIME_ENTRYPOINT = ("python", "-m", "ci_scripts.runtime")


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


@dataclass(frozen=True)
class Build:
    """What every builder takes: the settings, the SDK session, the pipeline's parameters."""

    settings: PipelineSettings
    session: PipelineSession
    params: Parameters


@contextmanager
def build(settings: PipelineSettings, boto_session: boto3.Session | None = None) -> Iterator[Build]:
    """The block a pipeline is built in; building it calls no AWS API.

    Without ``boto_session`` the pipeline gets an offline session: fine for a definition, while
    ``upsert``/``start`` on it raise OfflineBuildError. Pass a real session to use those.
    """
    with sdk.build_environment(settings.region, offline=boto_session is None):
        session = sdk.pipeline_session(
            boto_session or sdk.offline_boto_session(settings.region), settings.default_bucket
        )
        yield Build(settings, session, Parameters.for_settings(settings))


def pipeline(b: Build, steps: Sequence[Any], parameters: Sequence[Any] = ()) -> Pipeline:
    """The pipeline named ``settings.pipeline_name`` running ``steps``, with the default
    parameters and ``parameters`` (a team's own ParameterString etc.)."""
    from sagemaker.mlops.workflow import Pipeline

    mlflow = None
    if b.settings.mlflow_tracking_arn:
        # SageMaker tracks each execution (and its jobs) in the managed MLflow server itself:
        # https://docs.aws.amazon.com/sagemaker/latest/dg/mlflow-track-experiments.html
        from sagemaker.core.shapes import MlflowConfig

        mlflow = MlflowConfig(
            mlflow_resource_arn=b.settings.mlflow_tracking_arn,
            mlflow_experiment_name=b.settings.pipeline_name,
        )
    return Pipeline(
        name=b.settings.pipeline_name,
        parameters=[*b.params.all(), *parameters],
        steps=list(steps),
        sagemaker_session=b.session,
        # No SageMaker Experiments trial per run: MLflow (when configured) and the registry are
        # the record.
        pipeline_experiment_config=None,
        mlflow_config=mlflow,
    )


def definition(
    settings: PipelineSettings, get_pipeline: Callable[[PipelineSettings], Pipeline]
) -> dict[str, Any]:
    """``get_pipeline(settings)``'s definition (what CreatePipeline takes), parsed; offline."""
    with sdk.build_environment(settings.region, offline=True):
        return json.loads(get_pipeline(settings).definition())  # steps render their jobs here


def run_url(settings: PipelineSettings, step: str, name: str) -> Join:
    """s3://<bucket>/<prefix>/pipeline-runs/<execution id>/<step>/<name>: one place per run."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[settings.runs_url, ExecutionVariables.PIPELINE_EXECUTION_ID, step, name],
    )


def output_url(step: ProcessingStep, name: str) -> Any:
    """The S3 URI of ``step``'s output ``name`` (a property: the step runs first)."""
    return step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def cache(settings: PipelineSettings) -> Any:
    """Reuse a step's result for ``settings.cache_expire_after`` when its arguments match."""
    from sagemaker.mlops.workflow import CacheConfig

    return CacheConfig(enable_caching=True, expire_after=settings.cache_expire_after)


def job_retries() -> list[RetryPolicy]:
    """Retry what is not the code's fault: API throttling/faults, no capacity, internal errors."""
    from sagemaker.mlops.workflow import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
    )

    return [
        *api_retries(),
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


def api_retries() -> list[RetryPolicy]:
    """Retry SageMaker API faults and throttling (steps that start no job)."""
    from sagemaker.mlops.workflow import StepExceptionTypeEnum, StepRetryPolicy

    return [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
            interval_seconds=10,
            backoff_rate=2.0,
            max_attempts=5,
        )
    ]


def processor(
    settings: PipelineSettings,
    session: PipelineSession,
    params: Parameters | None,
    command: str,
    *,
    instance_type: Any = None,
    environment: dict[str, Any] | None = None,
    job_name: str | None = None,
) -> Any:
    """A processing job running ``python -m ci_scripts.runtime <command>`` in the project's image
    (``job_name``: the job name's part after the project, for commands a job name cannot spell,
    such as ``batch_check``: job names take no underscore). With ``params`` the instance type is
    the ProcessingInstanceType parameter, else ``instance_type``."""
    from sagemaker.core.processing import Processor

    return Processor(
        role=settings.role_arn,
        image_uri=settings.image_uri,
        entrypoint=[*RUNTIME_ENTRYPOINT, command],
        instance_count=1,
        instance_type=instance_type if params is None else params.processing_instance_type,
        env=environment,
        max_runtime_in_seconds=settings.max_runtime_seconds,
        base_job_name=f"{settings.project}-{job_name or command}",
        volume_kms_key=settings.volume_kms_key(
            instance_type if params is None else settings.processing_instance_type
        ),
        output_kms_key=settings.kms_key,
        sagemaker_session=session,
    )


def processing_input(name: str, s3_uri: Any, local_path: str) -> Any:
    """S3 prefix ``s3_uri`` copied to ``local_path`` before the job starts."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=s3_uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"
        ),
    )


def processing_output(settings: PipelineSettings, step: str, name: str) -> Any:
    """/opt/ml/processing/<name> uploaded to this run's place for ``step`` (:func:`run_url`)."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=run_url(settings, step, name),
            local_path=f"{PROCESSING}/{name}",
            s3_upload_mode="EndOfJob",
        ),
    )


def model_input(train: TrainingStep | TuningStep, settings: PipelineSettings) -> Any:
    """The trained (best) model.tar.gz at /opt/ml/processing/model (:func:`model_data`)."""
    return processing_input("model", model_data(train, settings), f"{PROCESSING}/model")


def preprocess_step(b: Build) -> ProcessingStep:
    """dataset.csv -> 80/10/10 stratified train/validation/test splits + baseline (features)."""
    from sagemaker.mlops.workflow import ProcessingStep

    settings, params = b.settings, b.params
    step_args = processor(settings, b.session, params, "preprocess").run(
        inputs=[processing_input("data", params.input_data_url, f"{PROCESSING}/input/data")],
        outputs=[processing_output(settings, PREPROCESS, name) for name in (*SPLITS, "baseline")],
    )
    return ProcessingStep(
        name=PREPROCESS,
        step_args=step_args,
        cache_config=cache(settings),
        retry_policies=job_retries(),
    )


def _trainer(b: Build, step: str) -> ModelTrainer:
    """``<image> train`` with the declared hyperparameters, its model under ``step``'s run URL."""
    from sagemaker.core.training.configs import Compute, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    settings, session = b.settings, b.session
    with sdk.role_validation_skipped():
        return ModelTrainer(
            training_image=settings.image_uri,
            role=settings.role_arn,
            base_job_name=f"{settings.project}-train",
            compute=Compute(
                instance_type=b.params.training_instance_type,
                instance_count=1,
                volume_size_in_gb=30,
                volume_kms_key_id=settings.volume_kms_key(settings.training_instance_type),
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=settings.max_runtime_seconds
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=(
                    tuning_models_url(settings)
                    if step == TUNE
                    else run_url(settings, step, "model")
                ),
                compression_type="GZIP",
                kms_key_id=settings.kms_key,
            ),
            hyperparameters=dict(settings.hyperparameters),
            sagemaker_session=session,
        )


def metric_definitions(settings: PipelineSettings) -> list[dict[str, str]]:
    """``validation:<metric>`` for each of the model's metrics, read from train's log lines."""
    return [
        {"Name": f"validation:{name}", "Regex": f"validation:{name}={METRIC_VALUE_REGEX}"}
        for name in settings.metrics
    ]


def _channels(preprocess: ProcessingStep) -> list[Any]:
    from sagemaker.core.training.configs import InputData

    return [
        InputData(
            channel_name=split, data_source=output_url(preprocess, split), content_type="text/csv"
        )
        for split in ("train", "validation")
    ]


def train_step(b: Build, preprocess: ProcessingStep) -> TrainingStep:
    """``<image> train`` on the train and validation splits; SageMaker packs /opt/ml/model."""
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.mlops.workflow import TrainingStep

    trainer = _trainer(b, TRAIN).with_metric_definitions(
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in metric_definitions(b.settings)]
    )
    with sdk.telemetry_opted_out(b.session):
        step_args = trainer.train(input_data_config=_channels(preprocess))
    return TrainingStep(
        name=TRAIN,
        step_args=step_args,
        cache_config=cache(b.settings),
        retry_policies=job_retries(),
    )


def tuning_step(b: Build, preprocess: ProcessingStep) -> TuningStep | TrainingStep:
    """Tune: SageMaker Automatic Model Tuning over model.py's search space (``search=``) with
    the primary metric on the validation split as the objective, in its direction; trials are
    the Train job's definition with the searched values. The budget is
    [tool.sagemaker-gitops.tuning]; one trial (or no search space) is the plain :func:`train_step`.

    Names and limits as AWS documents them: strategies Bayesian and Random, ParameterRanges'
    ScalingType Linear/Logarithmic
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html),
    ResourceLimits (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceLimits.html),
    the objective a metric definition of the training job
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-metrics-variables.html),
    and the step (https://docs.aws.amazon.com/sagemaker/latest/dg/build-and-manage-steps-types.html#step-type-tuning).
    """
    from sagemaker.mlops.workflow import TuningStep

    settings = b.settings
    if not settings.tunes:
        return train_step(b, preprocess)
    tuner = _tuner_class()(
        model_trainer=_trainer(b, TUNE),
        objective_metric_name=f"validation:{settings.primary_metric}",
        objective_type="Maximize" if settings.higher_is_better else "Minimize",
        hyperparameter_ranges=parameter_ranges(settings),
        metric_definitions=metric_definitions(settings),
        strategy=settings.tuning.strategy,
        max_jobs=settings.tuning.max_trials,
        max_parallel_jobs=settings.tuning.max_parallel,
        random_seed=settings.tuning.seed,
        base_tuning_job_name=f"{settings.project}-tune",
    )
    tuner.volume_kms_key = settings.kms_key
    with sdk.telemetry_opted_out(b.session):
        step_args = tuner.tune(inputs=_channels(preprocess))
    return TuningStep(
        name=TUNE,
        step_args=step_args,
        cache_config=cache(settings),
        retry_policies=job_retries(),
    )


def parameter_ranges(settings: PipelineSettings) -> dict[str, Any]:
    """model.py's ``search=`` declarations as the SDK's parameter ranges."""
    from sagemaker.core.parameter import (
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
    )

    from ci_scripts.hyperparameters import Categorical, Continuous

    ranges: dict[str, Any] = {}
    for name, search in settings.search_space.items():
        if isinstance(search, Categorical):
            ranges[name] = CategoricalParameter(list(search.choices))
            continue
        kind = ContinuousParameter if isinstance(search, Continuous) else IntegerParameter
        scaling = "Logarithmic" if search.scale == "log" else "Linear"
        ranges[name] = kind(search.low, search.high, scaling_type=scaling)
    return ranges


def _tuner_class() -> type:
    """The SDK's HyperparameterTuner, passing the project KMS key to the trials' volumes (its
    training job definition leaves ResourceConfig.VolumeKmsKeyId out)."""
    from sagemaker.train.tuner import HyperparameterTuner

    class Tuner(HyperparameterTuner):
        volume_kms_key: str | None = None

        def _build_training_job_definition(self, inputs: Any) -> Any:
            definition = super()._build_training_job_definition(inputs)
            if self.volume_kms_key:
                definition.resource_config.volume_kms_key_id = self.volume_kms_key
            return definition

    return Tuner


def tuning_models_url(settings: PipelineSettings) -> str:
    """Where Tune's trials write their models: one place for every execution, not under the
    execution id as a Train step's model is. A cached Tune step hands on the properties of the
    execution that ran it (its best trial's job name), while ``get_top_model_s3_uri`` joins that
    name onto the prefix given here: a prefix holding the current execution id would name a model
    nobody wrote. Trial job names are unique (SageMaker derives them from the tuning job's)."""
    return f"s3://{settings.default_bucket}/{settings.prefix}/tuning/model"


def model_data(train: TrainingStep | TuningStep, settings: PipelineSettings) -> Any:
    """The model.tar.gz the rest of the pipeline uses: Train's, or the best trial's of Tune
    (the SDK's get_top_model_s3_uri: index 0 of TrainingJobSummaries is the best job, whose
    model lies at <S3OutputPath>/<training job name>/output/model.tar.gz)."""
    if train.name != TUNE:
        return train.properties.ModelArtifacts.S3ModelArtifacts
    prefix = tuning_models_url(settings).removeprefix(f"s3://{settings.default_bucket}/")
    return train.get_top_model_s3_uri(top_k=0, s3_bucket=settings.default_bucket, prefix=prefix)


def tuning_metadata(train: TrainingStep | TuningStep, settings: PipelineSettings) -> dict[str, Any]:
    """What the registered version says about how it was trained: the hyperparameters (the best
    trial's searched values, as properties of Tune) and, when tuned, the tuning job, the best
    trial and its objective (the trials themselves: ListTrainingJobsForHyperParameterTuningJob
    of that job, or the local run's record)."""
    from sagemaker.core.workflow.functions import Join

    values: dict[str, Any] = {f"hyperparameter:{k}": v for k, v in settings.hyperparameters.items()}
    if train.name != TUNE:
        return values
    best = train.properties.BestTrainingJob
    for name in settings.search_space:
        values[f"hyperparameter:{name}"] = best.TunedHyperParameters[name]
    values["tuning_job"] = train.properties.HyperParameterTuningJobName
    values["best_training_job"] = best.TrainingJobName
    values["tuning_objective"] = f"validation:{settings.primary_metric}"
    objective = best.FinalHyperParameterTuningJobObjectiveMetric.Value
    values["best_objective"] = Join(on="", values=[objective])  # metadata values are strings
    values["tuning_trials"] = str(settings.tuning.max_trials)
    return values


def evaluate_step(
    b: Build, preprocess: ProcessingStep, train: TrainingStep | TuningStep
) -> tuple[ProcessingStep, PropertyFile]:
    """The trained model on the test split -> evaluation.json, read by the gate as a property."""
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep

    report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path="evaluation.json")
    step_args = processor(b.settings, b.session, b.params, "evaluate").run(
        inputs=[
            model_input(train, b.settings),
            processing_input("test", output_url(preprocess, "test"), f"{PROCESSING}/test"),
        ],
        outputs=[processing_output(b.settings, EVALUATE, "evaluation")],
    )
    step = ProcessingStep(
        name=EVALUATE,
        step_args=step_args,
        property_files=[report],
        cache_config=cache(b.settings),
        retry_policies=job_retries(),
    )
    return step, report


def data_baseline_step(
    b: Build, preprocess: ProcessingStep, train: TrainingStep | TuningStep
) -> ProcessingStep:
    """``baseline``: the training features and the model's answers on them -> statistics.json +
    constraints.json (the monitor's baseline format)."""
    from sagemaker.mlops.workflow import ProcessingStep

    step_args = processor(b.settings, b.session, b.params, "baseline").run(
        inputs=[
            model_input(train, b.settings),
            processing_input(
                "baseline_dataset",
                output_url(preprocess, "baseline"),
                f"{PROCESSING}/baseline_dataset",
            ),
        ],
        outputs=[processing_output(b.settings, DATA_BASELINE, "baseline")],
    )
    return ProcessingStep(
        name=DATA_BASELINE,
        step_args=step_args,
        cache_config=cache(b.settings),
        retry_policies=job_retries(),
    )


def bias_step(
    b: Build, preprocess: ProcessingStep, train: TrainingStep | TuningStep
) -> ProcessingStep:
    """CheckBias (``bias``): the model on the test split -> analysis.json, for the facet of
    [tool.sagemaker-gitops.bias] when one is set."""
    arguments = None
    if b.settings.bias_facet:
        arguments = ["--facet", b.settings.bias_facet]
        if b.settings.bias_group:  # a category against the rest; without it, above the median
            arguments += ["--facet-group", b.settings.bias_group]
        arguments += ["--positive-outcome", b.settings.bias_positive_outcome]
    return _model_report_step(b, preprocess, train, CHECK_BIAS, "bias", "bias", arguments)


def explain_step(
    b: Build, preprocess: ProcessingStep, train: TrainingStep | TuningStep
) -> ProcessingStep:
    """Explain (``explain``): permutation importance on the test split -> analysis.json."""
    return _model_report_step(b, preprocess, train, EXPLAIN, "explainability", "explain", None)


def _model_report_step(
    b: Build,
    preprocess: ProcessingStep,
    train: TrainingStep | TuningStep,
    name: str,
    output: str,
    command: str,
    arguments: list[str] | None,
) -> ProcessingStep:
    from sagemaker.mlops.workflow import ProcessingStep

    step_args = processor(b.settings, b.session, b.params, command).run(
        arguments=arguments,
        inputs=[
            model_input(train, b.settings),
            processing_input("test", output_url(preprocess, "test"), f"{PROCESSING}/test"),
        ],
        outputs=[processing_output(b.settings, name, output)],
    )
    return ProcessingStep(
        name=name,
        step_args=step_args,
        cache_config=cache(b.settings),
        retry_policies=job_retries(),
    )


def register_step(
    b: Build,
    train: TrainingStep | TuningStep,
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

    settings, session = b.settings, b.session

    def report(step: ProcessingStep, output: str, file: str) -> MetricsSource:
        uri = Join(on="/", values=[output_url(step, output), file])
        return MetricsSource(content_type="application/json", s3_uri=uri)

    builder = ModelBuilder(
        image_uri=settings.image_uri,
        s3_model_data_url=model_data(train, settings),
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
        **tuning_metadata(train, settings),
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
            approval_status=b.params.model_approval_status,
            customer_metadata_properties=metadata,
        )
    return ModelStep(name=REGISTER_MODEL, step_args=step_args, retry_policies=api_retries())


def quality_metric_path(settings: PipelineSettings) -> str:
    """Where the gate reads the primary metric in evaluation.json (SageMaker's layout)."""
    return f"{settings.problem_type}_metrics.{settings.primary_metric}.value"


def check_metric_step(
    b: Build, evaluate: ProcessingStep, report: PropertyFile, register: ModelStep
) -> ConditionStep:
    """The quality gate: ``register`` when the primary metric is at least as good as
    MetricThreshold (>= when higher is better, <= when lower is), else fail naming both."""
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.mlops.workflow import ConditionStep, FailStep

    path = quality_metric_path(b.settings)
    value = JsonGet(step_name=evaluate.name, property_file=report, json_path=path)
    if b.settings.higher_is_better:
        condition, worse = ConditionGreaterThanOrEqualTo, "below"
    else:
        condition, worse = ConditionLessThanOrEqualTo, "above"
    threshold = b.params.metric_threshold
    fail = FailStep(
        name=METRIC_BELOW_THRESHOLD,
        error_message=Join(
            on=" ",
            values=[
                f"{path} =",
                value,
                f"is {worse} MetricThreshold",
                threshold,
                "- model not registered",
            ],
        ),
    )
    return ConditionStep(
        name=CHECK_METRIC,
        conditions=[condition(left=value, right=threshold)],
        if_steps=[register],
        else_steps=[fail],
    )


def print_definition(
    argv: list[str] | None,
    module: str,
    build_definition: Callable[[PipelineSettings], dict[str, Any]],
) -> int:
    """``python -m <module> [--root .] [--image-uri URI]``: print ``build_definition(settings)``
    as JSON, settings of the model repo at ``--root``."""
    import argparse
    import sys
    from pathlib import Path

    from ci_scripts.errors import CIError
    from ci_scripts.pipeline_module import repo_on_path

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
    except CIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with repo_on_path(args.root.resolve()):  # the batch pipeline counts the package's features
        json.dump(build_definition(settings), sys.stdout, indent=2)
    print()
    return 0
