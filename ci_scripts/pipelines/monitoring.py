"""The monitoring pipeline: one Processing step (``python -m ci_scripts.runtime monitor``) per run.

One definition serves every environment: ci_scripts upserts it as ``<project>-<env>-monitor``
when ``deploy --env E`` changes what E serves, and EventBridge Scheduler starts it on the
manifest's ``monitoring.schedule`` with that environment's parameter values (the served version's
baseline, reports and model, the capture and label prefixes, the configuration JSON). Locally
``ci_scripts monitor`` runs the same definition through the local pipeline interpreter.

The step is never cached (every run must look at new traffic) and has no retries beyond
SageMaker's own capacity errors: a failed run is reported and the next scheduled one tries again.
The instance type is the project's ``processing_instance_type`` (parameter
ProcessingInstanceType). Reports land under ``<ReportsUrl>/<execution id>/``; the state the next
run reads is written back to ``StateUrl``.

It is the platform's alone: ci_scripts builds it from the project's settings (no file of the
model repo takes part).

    python -m ci_scripts.pipelines.monitoring [--root .] [--image-uri URI]   # print the JSON
"""

from __future__ import annotations

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

MONITOR = "Monitor"
# Parameter name -> the monitor input it feeds (the runtime's monitor INPUTS)
INPUT_PARAMETERS = {
    "CaptureUrl": "capture",
    "GroundTruthUrl": "groundtruth",
    "BaselineUrl": "baseline",
    "BiasReportUrl": "bias",
    "ExplainabilityReportUrl": "explainability",
    "ModelDataUrl": "model",
    "StateUrl": "state",
}
CONFIG_PARAMETER = "MonitorConfig"
REPORTS_PARAMETER = "ReportsUrl"


def get_pipeline(
    settings: PipelineSettings, name: str = "", boto_session: boto3.Session | None = None
) -> Pipeline:
    """The monitoring pipeline object (named ``name``); building it calls no AWS API."""
    with sdk.build_environment(settings.region, offline=boto_session is None):
        return _build(settings, name, boto_session or sdk.offline_boto_session(settings.region))


def definition(settings: PipelineSettings) -> dict[str, Any]:
    """The monitoring pipeline's definition, parsed (the same for every environment)."""
    with sdk.build_environment(settings.region, offline=True):
        pipeline = _build(settings, "", sdk.offline_boto_session(settings.region))
        return json.loads(pipeline.definition())


def _build(settings: PipelineSettings, name: str, boto_session: boto3.Session) -> Pipeline:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow import CacheConfig, Pipeline, ProcessingStep

    session = sdk.pipeline_session(boto_session, settings.default_bucket)
    instance_type = ParameterString(
        "ProcessingInstanceType", default_value=settings.processing_instance_type
    )
    config = ParameterString(CONFIG_PARAMETER, default_value="{}")
    reports = ParameterString(REPORTS_PARAMETER, default_value="")
    inputs = {p: ParameterString(p, default_value="") for p in INPUT_PARAMETERS}

    def output(output_name: str, uri: Any) -> Any:
        return ProcessingOutput(
            output_name=output_name,
            s3_output=ProcessingS3Output(
                s3_uri=uri,
                local_path=f"{PROCESSING}/output/{output_name}",
                s3_upload_mode="EndOfJob",
            ),
        )

    monitor = processor(
        settings,
        session,
        None,
        "monitor",
        instance_type=instance_type,
        environment={"MONITOR_CONFIG": config},
    )
    step_args = monitor.run(
        inputs=[
            processing_input(folder, inputs[parameter], f"{PROCESSING}/input/{folder}")
            for parameter, folder in INPUT_PARAMETERS.items()
        ],
        outputs=[
            output(
                "report",
                Join(on="/", values=[reports, ExecutionVariables.PIPELINE_EXECUTION_ID]),
            ),
            output("state", inputs["StateUrl"]),
        ],
    )
    step = ProcessingStep(
        name=MONITOR,
        step_args=step_args,
        cache_config=CacheConfig(enable_caching=False),  # every run must see the new traffic
        retry_policies=job_retries(),
    )
    return Pipeline(
        name=name or f"{settings.project}-monitor",
        parameters=[instance_type, config, reports, *inputs.values()],
        steps=[step],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )


def main(argv: list[str] | None = None) -> int:
    """Print the monitoring definition JSON, built offline from ``<root>/pyproject.toml``."""
    return print_definition(argv, "ci_scripts.pipelines.monitoring", definition)


if __name__ == "__main__":
    sys.exit(main())
