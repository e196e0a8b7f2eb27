"""The training pipeline: Preprocess -> Tune -> Evaluate -> CheckMetric -> RegisterModel | Fail.

Tune searches model.py's search space (``search=``) within [tool.sagemaker-gitops.tuning]'s
budget and hands its best trial's model on; with a budget of one trial it is a single Train.

Beside the main line, DataBaseline (the monitor's baseline), CheckBias and Explain describe the
trained model; RegisterModel attaches their reports and registers it as PendingManualApproval when
the gate passes. The steps are the platform's (``ci_scripts.pipelines.steps``: each processing
step runs ``python -m ci_scripts.runtime <command>`` in this repo's image); this file is yours:
it chooses and orders them, and you add your own. ci_scripts calls ``definition(settings)`` (CI,
the local backend) and ``get_pipeline(settings, boto_session)``; ``settings`` come from
``[tool.sagemaker-gitops]`` in pyproject.toml and src/<package>/model.py.

Adding a step (see README.md, "Add your own step"): build it with the SDK in ``get_pipeline``
and put it in the list. Any SageMaker Pipelines step works (LambdaStep, EMRStep, a Glue job
through a LambdaStep or CallbackStep, another ProcessingStep); data flows between steps through
step properties, e.g. ``steps.output_url(preprocess, "test")``. For example, a Lambda that is
told about each registered model::

    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.mlops.workflow import LambdaStep

    notify = LambdaStep(
        name="Notify",
        lambda_func=Lambda(function_arn="arn:aws:lambda:...:function:notify-team"),
        inputs={"model_package_group": settings.model_package_group},
        depends_on=[register],
    )

and ``steps.pipeline(b, [..., check, notify])``. The local backend runs Processing, Training,
Tuning, Condition, Fail and Model steps; a step of another type runs on AWS only.

    python -m pipelines.pipeline [--root .] [--image-uri URI]   # print the definition JSON
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ci_scripts.pipelines import steps
from ci_scripts.pipelines.settings import PipelineSettings

if TYPE_CHECKING:
    import boto3
    from sagemaker.mlops.workflow import Pipeline

__all__ = ["PipelineSettings", "definition", "get_pipeline"]


def get_pipeline(settings: PipelineSettings, boto_session: boto3.Session | None = None) -> Pipeline:
    """The pipeline object; building it calls no AWS API (offline without ``boto_session``)."""
    with steps.build(settings, boto_session) as b:
        preprocess = steps.preprocess_step(b)
        train = steps.tuning_step(b, preprocess)  # Tune (or one Train: a budget of one trial)
        evaluate, report = steps.evaluate_step(b, preprocess, train)
        data_baseline = steps.data_baseline_step(b, preprocess, train)
        bias = steps.bias_step(b, preprocess, train)
        explain = steps.explain_step(b, preprocess, train)
        register = steps.register_step(b, train, evaluate, data_baseline, bias, explain)
        check = steps.check_metric_step(b, evaluate, report, register)
        return steps.pipeline(b, [preprocess, train, data_baseline, evaluate, bias, explain, check])


def definition(settings: PipelineSettings) -> dict[str, Any]:
    """The pipeline definition (what CreatePipeline takes as PipelineDefinition), parsed."""
    return steps.definition(settings, get_pipeline)


if __name__ == "__main__":
    sys.exit(steps.print_definition(None, "pipelines.pipeline", definition))
