"""The training pipeline on SageMaker Pipelines: upsert, start, wait, find what it registered.

The definition comes from the model repo's ``pipelines/pipeline.py`` (``definition(settings)``,
the same JSON ``Pipeline.upsert`` sends). Sending it through our own boto3 client keeps adaptive
retries and lets an unchanged definition skip the update; unchanged inputs skip the build too
(the SDK import and the pipeline code: seconds), as the pipeline's stored fingerprint says. The
shipped dataset is uploaded under a key named by its content. SageMaker has no waiter for
pipeline executions, so one is declared below as a botocore WaiterModel.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from ci_scripts import gitinfo
from ci_scripts.backends.aws.errors import aws_errors, describe_aws_error, is_not_found
from ci_scripts.backends.aws.registry import split_s3_uri, version_of
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.aws.upserts import plan_pipeline, upsert_pipeline
from ci_scripts.backends.base import PipelineRun
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig

TRAINING_MODULE = "pipelines.pipeline"  # the model repo's own (ci_scripts.pipeline_module)
INPUT_DATA = "InputDataUrl"
SHIPPED_DATASET = Path("data") / "dataset.csv"
WAITER_NAME = "PipelineExecutionComplete"
PIPELINE_WAITERS: dict[str, Any] = {
    "version": 2,
    "waiters": {
        WAITER_NAME: {
            "operation": "DescribePipelineExecution",
            "delay": 30,
            # 110 minutes: inside train.yml's 120-minute job and the dev role's 7200 s session
            # (tests/iam/test_iam_oidc_trust.py keeps the three consistent).
            "maxAttempts": 220,
            "acceptors": [
                {
                    "matcher": "path",
                    "argument": "PipelineExecutionStatus",
                    "expected": "Succeeded",
                    "state": "success",
                },
                {
                    "matcher": "path",
                    "argument": "PipelineExecutionStatus",
                    "expected": "Failed",
                    "state": "failure",
                },
                {
                    "matcher": "path",
                    "argument": "PipelineExecutionStatus",
                    "expected": "Stopped",
                    "state": "failure",
                },
                {"matcher": "error", "expected": "ValidationException", "state": "failure"},
            ],
        }
    },
}


def execution_waiter(sagemaker: Any) -> Any:
    return create_waiter_with_client(WAITER_NAME, WaiterModel(PIPELINE_WAITERS), sagemaker)


class AwsPipelineRunner:
    def __init__(
        self, project: ProjectConfig, clients: AwsClients, waiter_delay: float | None = None
    ) -> None:
        self.project = project
        self.clients = clients
        self.waiter_delay = waiter_delay

    def run_pipeline(
        self, parameters: dict[str, Any] | None = None, wait: bool = False
    ) -> PipelineRun:
        name = self.project.pipeline_name
        definition = self.upsert()
        parameters = self.stage_dataset(definition, dict(parameters or {}))
        commit = gitinfo.current_commit(self.project.root)
        request: dict[str, Any] = {
            "PipelineName": name,
            "PipelineExecutionDescription": f"started by ci_scripts for commit {commit}"[:3072],
            "ClientRequestToken": str(uuid.uuid4()),
        }
        if parameters:
            request["PipelineParameters"] = [
                {"Name": key, "Value": str(value)} for key, value in parameters.items()
            ]
        with aws_errors(f"pipeline {name}"):
            arn = self.clients("sagemaker").start_pipeline_execution(**request)[
                "PipelineExecutionArn"
            ]
        if not wait:
            return PipelineRun(id=arn, status="Executing")
        return self.wait(arn)

    def stage_dataset(
        self, definition: dict[str, Any], parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """Upload data/dataset.csv under a key named by its content; point InputDataUrl at it.

        Pipeline step caching keys on arguments, not on what an S3 URI holds: a changed dataset
        must get a new URI or a rerun would reuse stale splits. The key sits next to the
        parameter's default (``.../data/<sha256[:16]>/dataset.csv``); an explicit
        ``--param InputDataUrl=...`` is used as given.
        """
        spec = next(
            (p for p in definition.get("Parameters") or [] if p.get("Name") == INPUT_DATA),
            None,
        )
        default = (spec or {}).get("DefaultValue")
        source = self.project.root / SHIPPED_DATASET
        if INPUT_DATA in parameters or not isinstance(default, str) or not source.is_file():
            return parameters
        if not default.startswith("s3://"):
            return parameters
        body = source.read_bytes()
        bucket, key = split_s3_uri(default)
        folder, _, filename = key.rpartition("/")
        if not filename.endswith(".csv"):
            folder, filename = key.rstrip("/"), SHIPPED_DATASET.name
        staged = f"{folder}/{hashlib.sha256(body).hexdigest()[:16]}/{filename}".lstrip("/")
        s3 = self.clients("s3")
        uri = f"s3://{bucket}/{staged}"
        try:
            s3.head_object(Bucket=bucket, Key=staged)  # same key, same content: uploaded already
        except ClientError as exc:
            if not is_not_found(exc):
                raise CIError(describe_aws_error(exc, uri)) from exc
            with aws_errors(uri):
                s3.put_object(Bucket=bucket, Key=staged, Body=body, ContentType="text/csv")
        return {**parameters, INPUT_DATA: uri}

    def upsert(self) -> dict[str, Any]:
        """Create the pipeline, or update it when the inputs its definition is built from or its
        role changed (built only then: aws.upserts.plan_pipeline); the definition it runs."""
        sagemaker = self.clients("sagemaker")
        plan = plan_pipeline(
            sagemaker,
            self.project,
            name=self.project.pipeline_name,
            module=TRAINING_MODULE,
            role=self.project.role_arn("dev"),
            description=f"Training pipeline of {self.project.project}",
        )
        tags = [{"Key": "sagemaker-gitops:project", "Value": self.project.project}]
        upsert_pipeline(sagemaker, plan, tags)
        return plan.definition

    def wait(self, arn: str) -> PipelineRun:
        sagemaker = self.clients("sagemaker")
        config = {"Delay": self.waiter_delay} if self.waiter_delay is not None else {}
        try:
            execution_waiter(sagemaker).wait(PipelineExecutionArn=arn, WaiterConfig=config)
        except WaiterError as exc:
            last = exc.last_response or {}
            if last.get("PipelineExecutionStatus") not in {"Failed", "Stopped"}:
                raise CIError(describe_aws_error(exc, f"pipeline execution {arn}")) from exc
        with aws_errors(f"pipeline execution {arn}"):
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
            steps = self.steps(arn)
        registered = next((s["registered_arn"] for s in steps if s.get("registered_arn")), None)
        return PipelineRun(
            id=arn,
            status=described["PipelineExecutionStatus"],
            failure_reason=described.get("FailureReason", "") or "",
            registered_version=version_of(registered) if registered else None,
            steps=steps,
        )

    def steps(self, arn: str) -> list[dict[str, Any]]:
        """Steps as ``{"name", "status", "failure_reason", "registered_arn"?}``, in run order."""
        found = []
        pages = self.clients("sagemaker").get_paginator("list_pipeline_execution_steps")
        for page in pages.paginate(PipelineExecutionArn=arn, SortOrder="Ascending"):
            for step in page.get("PipelineExecutionSteps", []):
                metadata = step.get("Metadata", {})
                reason = step.get("FailureReason") or metadata.get("Fail", {}).get("ErrorMessage")
                if not reason and step.get("StepStatus") == "Failed":
                    reason = self._job_failure(metadata)
                entry = {
                    "name": step.get("StepName", ""),
                    "status": step.get("StepStatus", ""),
                    "failure_reason": reason or "",
                }
                if "RegisterModel" in metadata:
                    entry["registered_arn"] = metadata["RegisterModel"].get("Arn", "")
                found.append(entry)
        return found

    def _job_failure(self, metadata: dict[str, Any]) -> str:
        """A failed job step's reason, from the job itself (steps often report none)."""
        for kind, (operation, parameter) in JOB_DESCRIBERS.items():
            arn = metadata.get(kind, {}).get("Arn")
            if arn:
                with aws_errors(arn):
                    job = getattr(self.clients("sagemaker"), operation)(
                        **{parameter: arn.rsplit("/", 1)[-1]}
                    )
                return str(job.get("FailureReason") or "")
        return ""


JOB_DESCRIBERS = {
    "TrainingJob": ("describe_training_job", "TrainingJobName"),
    "ProcessingJob": ("describe_processing_job", "ProcessingJobName"),
    "TransformJob": ("describe_transform_job", "TransformJobName"),  # the batch pipeline's
}
