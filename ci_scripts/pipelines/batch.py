"""The batch scoring pipeline: CheckInput (``batch_check``) -> Transform -> Capture
(``batch_capture``, when the monitor watches the environment), the processing steps run as
``python -m ci_scripts.runtime <command>`` in the project's image.

One definition serves every environment: with ``deployment=batch``, ``deploy --env E`` upserts it
as ``<project>-<env>-batch`` in the account that hosts E, next to the SageMaker Model it created
from the approved package, and EventBridge Scheduler starts it on the manifest's
``batch.schedule`` with E's parameter values (``ci_scripts batch-run`` starts it by hand):

- **CheckInput** (``batch_check``) reads every object under ``InputUri``
  (at /opt/ml/processing/input/batch/) and fails on the first bad line with
  ``<InputUri><key>:<line>: <reason>`` (also the job's ExitMessage); it writes only its
  ``summary.json`` (rows per file), under ``<CheckUri>/<execution id>/``, never under
  ``OutputUri``. Transform depends on it, so a bad file fails the run before the transform starts
  and nothing is written under ``OutputUri``.
- **Transform** is a batch transform job of ``ModelName`` (the SageMaker Model: CreateTransformJob
  takes a model name, not a model package; the Model runs the package's image and artifact). Each
  input line is ``<id>,<feature 1>,...,<feature n>``: ``InputFilter`` ``$[1:]`` drops the id before
  the container sees the row, ``JoinSource`` ``Input`` appends the answer to the input row, and
  ``OutputFilter`` ``$[0,<n+1>:]`` keeps the id and every answer column (serve's ``text/csv``
  answer may be more than one value, e.g. label and probability). The output of ``<key>`` is
  ``<OutputUri><key>.out``, one line per input line, in input order (SplitType Line, AssembleWith
  Line). See "Associate Prediction Results with Input Records",
  https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform-data-processing.html, and
  CreateTransformJob,
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html.

- **Capture** (only when ``CaptureUri`` is not empty: ``data_capture.enabled``) pairs each input
  line with its output line and writes them as data capture records (the row's id as
  ``inferenceId``) under ``<CaptureUri>/<execution id>/``, below the environment's capture prefix:
  the monitoring pipeline then reads batch traffic exactly as it reads an endpoint's captures.

No step is cached: a run must read the input as it is now. The transform's instance type and
count, its payload size and concurrency are parameters (the manifest's), so a manifest change is a
schedule update, never a new definition.

It is the platform's alone: ci_scripts builds it from the project's settings (no file of the
model repo takes part but the feature list, for the output filter).

    python -m ci_scripts.pipelines.batch [--root .] [--image-uri URI]   # print the JSON
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import TYPE_CHECKING, Any

from ci_scripts.pipelines import sdk
from ci_scripts.pipelines.settings import PipelineSettings
from ci_scripts.pipelines.steps import (
    PROCESSING,
    job_retries,
    print_definition,
    processing_input,
    processor,
)

if TYPE_CHECKING:
    import boto3
    from sagemaker.mlops.workflow import Pipeline

CHECK_INPUT = "CheckInput"
TRANSFORM = "Transform"
CONTENT_TYPE = "text/csv"  # the manifest's batch.content_type (the only one: SplitType Line)
# Parameter name -> default. ci_scripts (backends/aws/batch.py) sends every one of them.
PARAMETERS: dict[str, Any] = {
    "ModelName": "",
    "InputUri": "",
    "OutputUri": "",
    "InstanceType": "ml.m5.large",
    "InstanceCount": 1,
    "MaxPayloadInMB": 6,
    "MaxConcurrentTransforms": 1,
    "CheckUri": "",
    "CaptureUri": "",  # empty: no capture records (smoke runs, data_capture.enabled false)
}
CAPTURE = "Capture"
CAPTURE_ENABLED = "CaptureEnabled"
CHECK_OUTPUT = "batch_check"  # summary.json: {"files": {key: rows}, "rows": n}
INPUT_FILTER = "$[1:]"  # drop the id column: the model sees the features only
JOIN_SOURCE = "Input"


def output_filter(feature_count: int) -> str:
    """Keep the id (column 0) and every answer column after the ``feature_count`` features."""
    return f"$[0,{feature_count + 1}:]"


def feature_count(settings: PipelineSettings) -> int:
    """How many features a row has (``<package>.schema.FEATURES``: the training order)."""
    return len(importlib.import_module(f"{settings.package}.schema").FEATURES)


def definition(settings: PipelineSettings) -> dict[str, Any]:
    """The batch pipeline's definition, parsed (the same for every environment, but for the
    execution role: ci_scripts passes that of the account hosting the environment)."""
    with sdk.build_environment(settings.region, offline=True):
        pipeline = _build(settings, "", sdk.offline_boto_session(settings.region))
        return with_instance_count_parameter(json.loads(pipeline.definition()))


def with_instance_count_parameter(parsed: dict[str, Any]) -> dict[str, Any]:
    """Point the transform's InstanceCount at the InstanceCount parameter.

    SDK v3's Transformer validates ``instance_count`` with a pydantic ``int`` field
    (sagemaker.core.shapes.TransformResources), so a ParameterInteger cannot be passed where the
    pipeline definition itself takes one: ``{"Get": "Parameters.InstanceCount"}`` is what any
    integer parameter renders to (as MaxPayloadInMB does in the same request).
    """
    for step in parsed["Steps"]:
        if step["Name"] == TRANSFORM:
            step["Arguments"]["TransformResources"]["InstanceCount"] = {
                "Get": "Parameters.InstanceCount"
            }
    return parsed


def _build(settings: PipelineSettings, name: str, boto_session: boto3.Session) -> Pipeline:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.mlops.workflow import CacheConfig, Pipeline, ProcessingStep, TransformStep

    session = sdk.pipeline_session(boto_session, settings.default_bucket)
    params: dict[str, Any] = {
        key: (ParameterInteger if isinstance(default, int) else ParameterString)(
            key, default_value=default
        )
        for key, default in PARAMETERS.items()
    }
    # through the runtime's dispatcher: a bad file's line becomes the job's ExitMessage
    checker = processor(
        settings,
        session,
        None,
        "batch_check",
        instance_type=settings.processing_instance_type,
        job_name="batch-check",
    )
    summary = ProcessingOutput(
        output_name=CHECK_OUTPUT,
        s3_output=ProcessingS3Output(
            s3_uri=Join(
                on="/", values=[params["CheckUri"], ExecutionVariables.PIPELINE_EXECUTION_ID]
            ),
            local_path=f"{PROCESSING}/output/{CHECK_OUTPUT}",
            s3_upload_mode="EndOfJob",
        ),
    )
    check = ProcessingStep(
        name=CHECK_INPUT,
        step_args=checker.run(
            inputs=[processing_input("batch", params["InputUri"], f"{PROCESSING}/input/batch")],
            outputs=[summary],
            arguments=["--label", params["InputUri"]],  # errors name s3://.../<key>:<line>
        ),
        cache_config=CacheConfig(enable_caching=False),
        retry_policies=job_retries(),
    )
    transformer = Transformer(
        model_name=params["ModelName"],
        instance_count=1,  # the parameter is set below: the SDK's shape refuses a variable here
        instance_type=params["InstanceType"],
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=params["OutputUri"],
        accept=CONTENT_TYPE,
        max_payload=params["MaxPayloadInMB"],
        max_concurrent_transforms=params["MaxConcurrentTransforms"],
        base_transform_job_name=f"{settings.project}-batch",
        volume_kms_key=settings.volume_kms_key(settings.transform_instance_type),
        output_kms_key=settings.kms_key,
        sagemaker_session=session,
    )
    transform = TransformStep(
        name=TRANSFORM,
        step_args=transformer.transform(
            data=params["InputUri"],
            data_type="S3Prefix",
            content_type=CONTENT_TYPE,
            split_type="Line",
            input_filter=INPUT_FILTER,
            join_source=JOIN_SOURCE,
            output_filter=output_filter(feature_count(settings)),
        ),
        depends_on=[check],  # a bad input file fails the run before any output is written
        cache_config=CacheConfig(enable_caching=False),
        retry_policies=job_retries(),
    )
    capture = _capture_step(settings, session, params, transform)
    return Pipeline(
        name=name or f"{settings.project}-batch",
        parameters=list(params.values()),
        steps=[check, transform, capture],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )


def _capture_step(
    settings: PipelineSettings, session: Any, params: dict[str, Any], transform: Any
) -> Any:
    """CaptureEnabled: ``CaptureUri`` set -> Capture (the run's rows as capture records)."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.conditions import ConditionEquals, ConditionNot
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import CacheConfig, ConditionStep, ProcessingStep

    capturer = processor(
        settings,
        session,
        None,
        "batch_capture",
        instance_type=settings.processing_instance_type,
        job_name="batch-capture",
    )
    records = ProcessingOutput(
        output_name="capture",
        s3_output=ProcessingS3Output(
            s3_uri=Join(
                on="/", values=[params["CaptureUri"], ExecutionVariables.PIPELINE_EXECUTION_ID]
            ),
            local_path=f"{PROCESSING}/output/capture",
            s3_upload_mode="EndOfJob",
        ),
    )
    capture = ProcessingStep(
        name=CAPTURE,
        step_args=capturer.run(
            inputs=[
                processing_input(
                    "batch_input", params["InputUri"], f"{PROCESSING}/input/batch_input"
                ),
                processing_input(
                    "batch_output", params["OutputUri"], f"{PROCESSING}/input/batch_output"
                ),
            ],
            outputs=[records],
        ),
        cache_config=CacheConfig(enable_caching=False),
        retry_policies=job_retries(),
    )
    return ConditionStep(
        name=CAPTURE_ENABLED,
        conditions=[ConditionNot(expression=ConditionEquals(left=params["CaptureUri"], right=""))],
        if_steps=[capture],
        else_steps=[],
        depends_on=[transform],
    )


def main(argv: list[str] | None = None) -> int:
    """Print the batch definition JSON, built offline from ``<root>/pyproject.toml``."""
    return print_definition(argv, "ci_scripts.pipelines.batch", definition)


if __name__ == "__main__":
    sys.exit(main())
