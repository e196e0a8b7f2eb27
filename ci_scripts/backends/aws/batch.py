"""Batch scoring on AWS (``deployment=batch``): a SageMaker Pipeline per environment, started by
EventBridge Scheduler, scoring with the SageMaker Model of the version the manifest names.

``deploy --env E`` (E's deploy role, in the account that hosts E) keeps three things in step with
deploy/E.json, each written only when it differs from what is there (the same manifest again
makes reads only):

- the SageMaker Model ``<project>-<E>-v<version>-<hash>`` created from the approved model package
  (CreateTransformJob takes a model name, not a package: API_CreateTransformJob, ModelName), named
  like an endpoint's models so teardown and prune find them the same way;
- the pipeline ``<project>-<E>-batch`` (ci_scripts.pipelines.batch: CheckInput -> Transform),
  run as the account's SageMaker execution role, tagged with the version it scores with, the
  commit and pull request that asked for it and the version before (what a restore puts back);
- the EventBridge Scheduler schedule ``<project>-<E>-batch`` on ``batch.schedule`` (UTC), whose
  target starts the pipeline with E's parameters (SageMakerPipelineParameters) through the role
  ``<project>-<E>-batch-scheduler``, which may start only that pipeline (infra/bootstrap.yml).

``batch-run`` starts the pipeline with the schedule's parameters (what E runs now), optionally on
another input, and waits with the pipeline-execution waiter (aws.pipeline). ``status`` reads the
newest execution (ListPipelineExecutions, DescribePipelineExecution, its parameters and steps): a
failed one is reported with the failing step's reason, the transform or processing job's own
FailureReason when the step gives none.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from ci_scripts.backends.aws.endpoints import MAX_NAME, TAG, AwsEndpointHost
from ci_scripts.backends.aws.errors import (
    aws_errors,
    describe_aws_error,
    error_code,
    is_not_found,
)
from ci_scripts.backends.aws.pipeline import JOB_DESCRIBERS, execution_waiter
from ci_scripts.backends.aws.progress import DONE, DeployProgress
from ci_scripts.backends.aws.registry import split_s3_uri
from ci_scripts.backends.aws.session import AwsClients
from ci_scripts.backends.aws.teardown import LONGEST_SUFFIX, resource_version
from ci_scripts.backends.aws.upserts import (
    check_request,
    pipeline_schedule_request,
    plan_pipeline,
    put_schedule,
    same_schedule,
    schedule_parameters,
    upsert_pipeline,
)
from ci_scripts.backends.base import BatchRun, EndpointState, ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.manifest import spec
from ci_scripts.project import ProjectConfig

# SageMaker refuses DeletePipeline while an execution runs (API_DeletePipeline).
RUNNING = frozenset({"Executing", "Stopping"})
# run_batch reads the inputs and outputs back to check the join (every id once, in order, with a
# valid prediction) up to this many input bytes; a bigger run reports rows unknown (None).
MAX_CHECKED_BYTES = 64 * 1024 * 1024
# Scheduler and SageMaker limit a pipeline parameter value to 1024 characters (botocore:
# SageMakerPipelineParameterValue, String1024).
MAX_PARAMETER_LENGTH = 1024


def pipeline_name(project: ProjectConfig, env: str) -> str:
    return project.batch_pipeline_name(env)


def schedule_name(project: ProjectConfig, env: str) -> str:
    """The EventBridge Scheduler schedule (default group) that starts the pipeline."""
    return f"{project.project}-{env}-batch"


def scheduler_role_arn(project: ProjectConfig, env: str) -> str:
    """The role Scheduler assumes to start the pipeline (infra/bootstrap.yml BatchSchedulerRole)."""
    return f"arn:aws:iam::{project.accounts[env]}:role/{project.project}-{env}-batch-scheduler"


def pipeline_arn_of(project: ProjectConfig, env: str) -> str:
    """The ARN the batch pipeline has (or will have) in the account hosting ``env``."""
    return (
        f"arn:aws:sagemaker:{project.region}:{project.accounts[env]}:pipeline/"
        f"{pipeline_name(project, env)}"
    )


def check_prefix(project: ProjectConfig, env: str) -> str:
    """Where CheckInput writes each run's summary.json (``<prefix>/<execution id>/``)."""
    return f"s3://{project.artifact_bucket}/batch/{env}/checks"


@dataclass
class DesiredBatch:
    """Everything a batch deploy writes, derived from (env, manifest, version) alone."""

    env: str
    version: ModelVersion
    model_name: str
    parameters: dict[str, str]
    schedule: str
    tags: list[dict[str, str]] = field(default_factory=list)


def desired_batch(
    project: ProjectConfig, env: str, manifest: dict[str, Any], version: ModelVersion
) -> DesiredBatch:
    """The Model, the pipeline's parameters and the schedule ``env`` should have.

    ``manifest`` is the effective one (schema defaults filled in): ``batch`` holds the prefixes,
    the schedule and the transform's limits, ``endpoint`` the instance type and count.
    """
    view = spec(manifest)
    endpoint, batch = view.endpoint, view.batch
    if batch is None:
        raise KeyError("batch")  # the schema requires it on endpoint.type batch
    content = {"model_package": version.arn, "role": project.role_arn(env)}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    suffix = f"-v{version.version}-{digest}"
    model_name = project.endpoint_name(env)[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    parameters = {
        "ModelName": model_name,
        "InputUri": str(batch.input_prefix),
        "OutputUri": str(batch.output_prefix),
        "InstanceType": str(endpoint.instance_type),
        "InstanceCount": str(endpoint.initial_instance_count),
        "MaxPayloadInMB": str(batch.max_payload_mb),
        "MaxConcurrentTransforms": str(batch.max_concurrent_transforms),
        "CheckUri": check_prefix(project, env),
        "CaptureUri": capture_uri(project, env, manifest),
    }
    # Scheduler takes no empty value (botocore SageMakerPipelineParameterValue: min 1;
    # https://docs.aws.amazon.com/scheduler/latest/APIReference/API_SageMakerPipelineParameter.html):
    # an empty one is left out and the pipeline's default ("" for CaptureUri: no Capture) applies.
    parameters = {key: value for key, value in parameters.items() if value}
    for key, value in parameters.items():
        if len(value) > MAX_PARAMETER_LENGTH:
            raise CIError(
                f"deploy/{env}.json: pipeline parameter {key} is {len(value)} characters; "
                f"SageMaker takes at most {MAX_PARAMETER_LENGTH}"
            )
    source = manifest.get("_source") or {}
    tags = {
        "project": project.project,
        "environment": env,
        "model-version": str(version.version),
        "model-package": version.arn,
        "git-commit": str(source.get("commit") or "unknown"),
        "pull-request": str(source.get("pull_request") or "none"),
    }
    return DesiredBatch(
        env=env,
        version=version,
        model_name=model_name,
        parameters=parameters,
        schedule=str(batch.schedule),
        tags=[{"Key": TAG + k, "Value": v} for k, v in tags.items()],
    )


def capture_uri(project: ProjectConfig, env: str, manifest: dict[str, Any]) -> str:
    """Where the pipeline's Capture step writes each run's rows as capture records: under the
    environment's capture prefix, where the monitor reads (``batch/<execution id>/``); empty
    (no Capture step) unless the monitor watches the environment."""
    from ci_scripts import monitoring

    if not (project.monitoring and spec(manifest).data_capture.enabled):
        return ""
    return f"{monitoring.capture_prefix(project, env)}/batch"


def _tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"][len(TAG) :]: t["Value"] for t in tags if t["Key"].startswith(TAG)}


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


class AwsBatchHost:
    """One project's batch pipelines, schedules and models, one set per environment."""

    def __init__(
        self,
        project: ProjectConfig,
        clients: AwsClients,
        endpoints: AwsEndpointHost,
        waiter_delay: float | None = None,
    ) -> None:
        self.project = project
        self.clients = clients
        self.endpoints = endpoints  # accounts: require_account, the reader of another account
        self.waiter_delay = waiter_delay

    # -- reads ------------------------------------------------------------------------------
    def _pipeline(self, env: str, clients: AwsClients | None = None) -> dict[str, Any] | None:
        name = pipeline_name(self.project, env)
        try:
            return (clients or self.clients)("sagemaker").describe_pipeline(PipelineName=name)
        except ClientError as exc:
            if is_not_found(exc) or error_code(exc) == "ResourceNotFound":
                return None
            raise CIError(describe_aws_error(exc, f"batch pipeline {name}")) from exc

    def _schedule(self, env: str, clients: AwsClients | None = None) -> dict[str, Any] | None:
        name = schedule_name(self.project, env)
        try:
            return (clients or self.clients)("scheduler").get_schedule(Name=name)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, f"schedule {name}")) from exc

    def _model_exists(self, name: str) -> bool:
        try:
            self.clients("sagemaker").describe_model(ModelName=name)
            return True
        except ClientError as exc:
            if is_not_found(exc) or "could not find" in str(exc).lower():
                return False
            raise CIError(describe_aws_error(exc, f"model {name}")) from exc

    def _pipeline_tags(self, described: dict[str, Any], clients: AwsClients) -> dict[str, str]:
        with aws_errors(f"batch pipeline {described['PipelineName']}"):
            tags = clients("sagemaker").list_tags(ResourceArn=described["PipelineArn"])
        return _tag_map(tags.get("Tags", []))

    def describe_endpoint(self, env: str) -> EndpointState | None:
        """``env``'s batch job as an EndpointState (the prod gate and status read it so):
        InService when deployed and its newest run (of the version deployed) did not fail,
        Failed with that run's reason."""
        clients = self.endpoints._reader(env)
        described = self._pipeline(env, clients)
        if described is None:
            return None
        tags = self._pipeline_tags(described, clients)
        schedule = self._schedule(env, clients)
        parameters = schedule_parameters(schedule)
        last = self.last_batch_run(env, clients)
        version = tags.get("model-version", "")
        # A failed run counts against the version it scored with: once another version is
        # deployed (a fix, a restore) the job is healthy until one of its own runs fails.
        failed = (
            last is not None
            and last.status == "Failed"
            and (last.model_version is None or str(last.model_version) == version)
        )
        previous = tags.get("previous-model-version", "")
        settings: dict[str, Any] = {"endpoint.type": "batch"}
        if parameters:
            settings.update(
                {
                    "endpoint.instance_type": parameters.get("InstanceType"),
                    "endpoint.initial_instance_count": int(parameters.get("InstanceCount", 1)),
                    "batch.input_prefix": parameters.get("InputUri"),
                    "batch.output_prefix": parameters.get("OutputUri"),
                    "batch.max_payload_mb": int(parameters.get("MaxPayloadInMB", 0)),
                    "batch.max_concurrent_transforms": int(
                        parameters.get("MaxConcurrentTransforms", 0)
                    ),
                    "batch.schedule": (schedule or {}).get("ScheduleExpression"),
                }
            )
        return EndpointState(
            name=described["PipelineName"],
            status="Failed" if failed else "InService",
            model_version=int(version) if version.isdigit() else None,
            url="",
            failure_reason=last.failure_reason if failed and last else "",
            config={
                "type": "batch",
                "pipeline": described["PipelineName"],
                "model_name": parameters.get("ModelName", ""),
                "model_package": tags.get("model-package"),
                "git_commit": tags.get("git-commit"),
                "previous_version": int(previous) if previous.isdigit() else None,
                "schedule": (schedule or {}).get("ScheduleExpression"),
                "settings": settings,
                "last_run": asdict(last) if last else None,
            },
        )

    # -- deploy -----------------------------------------------------------------------------
    def deploy(
        self,
        env: str,
        manifest: dict[str, Any],
        version: ModelVersion,
        progress: DeployProgress | None = None,
    ) -> EndpointState:
        """Make ``env``'s batch job score with ``version``; reads only when nothing changed.
        Every write is recorded in ``progress`` (what an interrupt at that point leaves)."""
        progress = progress or DeployProgress(env)
        self.endpoints.require_account(env)
        desired = desired_batch(self.project, env, manifest, version)
        from ci_scripts import batch as batching

        # Planned before any change: a definition that cannot be built changes nothing, and one
        # whose inputs did not change is not built at all (aws.upserts.plan_pipeline).
        role = self.project.role_arn(env)
        plan = plan_pipeline(
            self.clients("sagemaker"),
            self.project,
            name=pipeline_name(self.project, env),
            module=batching.BATCH_MODULE,
            role=role,
            description=f"Batch scoring of {self.project.project} in {env}",
            role_arn=role,
            transform_instance_type=desired.parameters["InstanceType"],
        )
        name = pipeline_name(self.project, env)
        current = plan.current
        schedule = self._schedule(env)
        request = self._schedule_request(env, desired, pipeline_arn_of(self.project, env))
        # The schedule is the last write: a request botocore would refuse is refused here,
        # before the model and the pipeline change.
        check_request(self.clients("scheduler"), "CreateSchedule", request)
        running_tags = self._pipeline_tags(current, self.clients) if current else {}
        before = running_tags.get("model-version") or "unknown"
        wanted = f"version {version.version}"
        progress.start(
            f"batch pipeline {name} scores with version {before}"
            if current
            else f"batch pipeline {name} does not exist yet"
        )
        if not self._model_exists(desired.model_name):
            with (
                aws_errors(f"model {desired.model_name}"),
                progress.preparing("CreateModel", f"model {desired.model_name} exists"),
            ):
                self.clients("sagemaker").create_model(
                    ModelName=desired.model_name,
                    ExecutionRoleArn=self.project.role_arn(env),
                    PrimaryContainer={"ModelPackageName": version.arn},
                    Tags=desired.tags,
                )
        writing: AbstractContextManager[Any] = nullcontext()
        if plan.write == "CreatePipeline":
            writing = progress.sending(
                "CreatePipeline",
                f"batch pipeline {name} exists, tagged with {wanted}; its schedule is not set yet",
                "rerun deploy to create its schedule",
            )
        elif plan.write == "UpdatePipeline":
            writing = progress.preparing("UpdatePipeline", "its definition is updated")
        with writing:
            arn = upsert_pipeline(self.clients("sagemaker"), plan, desired.tags)
        if running_tags.get("model-version") != str(version.version) and current is not None:
            tags = [*desired.tags, {"Key": TAG + "previous-model-version", "Value": before}]
            with (
                aws_errors(f"batch pipeline {name}"),
                progress.sending(
                    "AddTags",
                    f"batch pipeline {name}'s tags name {wanted}, but its schedule still starts "
                    f"it with version {before}'s model",
                    f"rerun deploy to point the schedule at {wanted}",
                ),
            ):
                self.clients("sagemaker").add_tags(ResourceArn=arn, Tags=tags)
        request = self._schedule_request(env, desired, arn)
        writing = nullcontext()
        if schedule is None or not same_schedule(schedule, request):
            writing = progress.sending(
                "UpdateSchedule" if schedule else "CreateSchedule",
                f"batch pipeline {name} scores with {wanted} on its schedule",
                DONE,
            )
        with writing:
            put_schedule(self.clients("scheduler"), request, schedule)
        progress.reached(f"batch pipeline {name} scores with {wanted} as asked", DONE)
        state = self.describe_endpoint(env)
        if state is None:
            raise CIError(f"batch pipeline {name}: gone after deploy")
        return state

    def _schedule_request(self, env: str, desired: DesiredBatch, arn: str) -> dict[str, Any]:
        # a missed run is not retried: the next one scores what the prefix holds then
        return pipeline_schedule_request(
            name=schedule_name(self.project, env),
            description=f"Starts {pipeline_name(self.project, env)}",
            expression=desired.schedule,
            pipeline_arn=arn,
            role_arn=scheduler_role_arn(self.project, env),
            parameters=desired.parameters,
        )

    # -- runs -------------------------------------------------------------------------------
    def run_batch(
        self,
        env: str,
        manifest: dict[str, Any],
        *,
        input_uri: str | None = None,
        output_uri: str | None = None,
        wait: bool = True,
    ) -> BatchRun:
        """Start ``env``'s pipeline with the parameters its schedule sends (the version it runs
        now), scoring ``input_uri`` into ``output_uri`` when given; wait unless told not to."""
        name = pipeline_name(self.project, env)
        parameters = schedule_parameters(self._schedule(env))
        if not parameters or self._pipeline(env) is None:
            raise CIError(
                f"batch pipeline {name}: not deployed in {env}; run deploy --env {env} first"
            )
        for flag, uri in (("--input", input_uri), ("--output", output_uri)):
            if uri is not None and not (uri.startswith("s3://") and uri.endswith("/")):
                raise CIError(f"batch-run {flag} {uri}: expected an s3://bucket/prefix/ URI")
        if input_uri:
            parameters["InputUri"] = input_uri
        if output_uri:
            parameters["OutputUri"] = output_uri
            parameters["CaptureUri"] = ""  # a scratch run (the smoke test) is not traffic
        source, target = parameters["InputUri"], parameters["OutputUri"]
        if source.startswith(target) or target.startswith(source):
            raise CIError(f"batch-run --input {source}: overlaps the output prefix {target}")
        version = resource_version(self.project.endpoint_name(env), parameters["ModelName"])
        with aws_errors(f"batch pipeline {name}"):
            arn = self.clients("sagemaker").start_pipeline_execution(
                PipelineName=name,
                PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
                PipelineExecutionDescription=f"batch-run of version {version} by ci_scripts",
                ClientRequestToken=str(uuid.uuid4()),
            )["PipelineExecutionArn"]
        if not wait:
            return BatchRun(
                env=env,
                id=arn,
                status="Executing",
                model_version=version,
                input_uri=parameters["InputUri"],
                output_uri=parameters["OutputUri"],
            )
        config = {"Delay": self.waiter_delay} if self.waiter_delay is not None else {}
        try:
            execution_waiter(self.clients("sagemaker")).wait(
                PipelineExecutionArn=arn, WaiterConfig=config
            )
        except WaiterError as exc:
            last = exc.last_response or {}
            if last.get("PipelineExecutionStatus") not in {"Failed", "Stopped"}:
                raise CIError(describe_aws_error(exc, f"batch run {arn}")) from exc
        run = self._run(env, arn, self.clients)
        if run.status == "Succeeded":
            self._check_outputs(run)
        return run

    def _check_outputs(self, run: BatchRun) -> None:
        """Read the run's inputs and outputs back and check the join (ci_scripts.batch); set
        ``rows``, or mark the run Failed with the first problem (file and line)."""
        from ci_scripts import batch as batching
        from ci_scripts.model_contract import load as load_contract

        try:
            inputs = self._read_prefix(run.input_uri)
            if inputs is None:
                return  # too big to read back here: rows stay unknown
            outputs = {
                key: self._read_object(run.output_uri + batching.output_key(key)) for key in inputs
            }
            run.rows = batching.check_outputs(
                inputs, outputs, load_contract(self.project), run.output_uri
            )
        except CIError as exc:
            run.status, run.failure_reason, run.rows = "Failed", str(exc), None

    def _read_prefix(self, uri: str) -> dict[str, str] | None:
        """Every object under ``uri`` (key relative to it -> text); None past the size cap."""

        bucket, prefix = split_s3_uri(uri)
        s3 = self.clients("s3")
        keys, size = [], 0
        with aws_errors(uri):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    keys.append(item["Key"])
                    size += int(item.get("Size", 0))
        if size > MAX_CHECKED_BYTES:
            return None
        found = {}
        for key in keys:
            text = self._read_object(f"s3://{bucket}/{key}")
            if text is not None:
                found[key[len(prefix) :]] = text
        return found

    def _read_object(self, uri: str) -> str | None:

        bucket, key = split_s3_uri(uri)
        try:
            body = self.clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, uri)) from exc
        return body.decode("utf-8", errors="replace")

    def last_batch_run(self, env: str, clients: AwsClients | None = None) -> BatchRun | None:
        """The newest execution of ``env``'s pipeline (scheduled or not), or None."""
        clients = clients or self.clients
        name = pipeline_name(self.project, env)
        with aws_errors(f"batch pipeline {name}"):
            try:
                listed = clients("sagemaker").list_pipeline_executions(
                    PipelineName=name,
                    SortBy="CreationTime",
                    SortOrder="Descending",
                    MaxResults=1,
                )["PipelineExecutionSummaries"]
            except ClientError as exc:
                if is_not_found(exc) or error_code(exc) == "ResourceNotFound":
                    return None
                raise
        if not listed:
            return None
        return self._run(env, listed[0]["PipelineExecutionArn"], clients)

    def _run(self, env: str, arn: str, clients: AwsClients) -> BatchRun:
        sagemaker = clients("sagemaker")
        with aws_errors(f"batch run {arn}"):
            described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
            parameters = {
                p["Name"]: p["Value"]
                for page in sagemaker.get_paginator(
                    "list_pipeline_parameters_for_execution"
                ).paginate(PipelineExecutionArn=arn)
                for p in page.get("PipelineParameters", [])
            }
        status = described["PipelineExecutionStatus"]
        reason = described.get("FailureReason") or ""
        if status == "Failed":
            step_reason = self._failed_step(arn, clients)
            reason = step_reason or reason or "the pipeline execution failed (no reason given)"
        return BatchRun(
            env=env,
            id=arn,
            status=status,
            model_version=resource_version(
                self.project.endpoint_name(env), parameters.get("ModelName", "")
            ),
            input_uri=parameters.get("InputUri", ""),
            output_uri=parameters.get("OutputUri", ""),
            failure_reason=reason,
            started=_iso(described.get("CreationTime")),
            ended=_iso(described.get("LastModifiedTime")) if status not in RUNNING else "",
            rows=self._checked_rows(arn, parameters.get("CheckUri", ""), clients)
            if status == "Succeeded"
            else None,
        )

    def _checked_rows(self, arn: str, check_uri: str, clients: AwsClients) -> int | None:
        """The rows CheckInput counted (its ``summary.json`` under ``<CheckUri>/<execution
        id>/``): what the transform then scored. None when there is no summary."""
        if not check_uri.startswith("s3://"):
            return None
        uri = f"{check_uri}/{arn.rsplit('/', 1)[-1]}/summary.json"
        bucket, key = split_s3_uri(uri)
        try:
            body = clients("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise CIError(describe_aws_error(exc, uri)) from exc
        try:
            rows = json.loads(body).get("rows")
        except (ValueError, AttributeError):
            return None
        return rows if isinstance(rows, int) and not isinstance(rows, bool) else None

    def _failed_step(self, arn: str, clients: AwsClients) -> str:
        """``step <name>: <reason>`` of the first failed step; the job's FailureReason when the
        step reports none (a failed transform job's reason is on the job)."""
        sagemaker = clients("sagemaker")
        with aws_errors(f"batch run {arn}"):
            pages = sagemaker.get_paginator("list_pipeline_execution_steps")
            for page in pages.paginate(PipelineExecutionArn=arn, SortOrder="Ascending"):
                for step in page.get("PipelineExecutionSteps", []):
                    if step.get("StepStatus") != "Failed":
                        continue
                    reason = step.get("FailureReason") or ""
                    metadata = step.get("Metadata") or {}
                    for kind, (operation, parameter) in JOB_DESCRIBERS.items():
                        job_arn = (metadata.get(kind) or {}).get("Arn")
                        if job_arn and not reason:
                            job = getattr(sagemaker, operation)(
                                **{parameter: job_arn.rsplit("/", 1)[-1]}
                            )
                            # A processing step's own line (batch_check: <file>:<line>: ...)
                            # is its ExitMessage; FailureReason only says the container failed.
                            reason = " ".join(
                                str(
                                    job.get("ExitMessage") or job.get("FailureReason") or ""
                                ).split()
                            )
                    return f"step {step.get('StepName', '?')}: {reason or 'failed'}"
        return ""

    # -- teardown ---------------------------------------------------------------------------
    def _models(self, env: str) -> dict[str, int]:
        """Models deploys made for ``env`` (``<project>-<env>-v<n>-<hash>``): name -> version."""
        prefix = self.project.endpoint_name(env)
        found: dict[str, int] = {}
        with aws_errors(f"models of {pipeline_name(self.project, env)}"):
            pages = self.clients("sagemaker").get_paginator("list_models")
            for page in pages.paginate(NameContains=prefix[: MAX_NAME - LONGEST_SUFFIX]):
                for item in page.get("Models", []):
                    version = resource_version(prefix, item["ModelName"])
                    if version is not None:
                        found[item["ModelName"]] = version
        return found

    def inventory(self, env: str) -> list[str]:
        """What ``env``'s batch job leaves in the account, one line each (reads only)."""
        found = []
        if self._schedule(env) is not None:
            found.append(f"schedule {schedule_name(self.project, env)}")
        if self._pipeline(env) is not None:
            found.append(f"batch pipeline {pipeline_name(self.project, env)}")
        found += [f"model {name}" for name in sorted(self._models(env))]
        return found

    def destroy(self, env: str) -> list[str]:
        """Delete the schedule (nothing starts a run any more), the pipeline, then the models;
        refuse before any change while a run executes. Outputs in S3 stay (they are the
        results). Idempotent: run again, it finds nothing."""
        self.endpoints.require_account(env)
        found = self.inventory(env)
        name = pipeline_name(self.project, env)
        if f"batch pipeline {name}" in found:
            with aws_errors(f"batch pipeline {name}"):
                recent = self.clients("sagemaker").list_pipeline_executions(
                    PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=50
                )["PipelineExecutionSummaries"]
            for run in recent:  # a run still going is one of the newest
                if run.get("PipelineExecutionStatus") in RUNNING:
                    raise CIError(
                        f"batch pipeline {name}: run {run['PipelineExecutionArn']} is "
                        f"{run['PipelineExecutionStatus']}; wait for it (or stop it) before "
                        "destroying (nothing was removed)"
                    )
        removed: list[str] = []
        if f"schedule {schedule_name(self.project, env)}" in found:
            with aws_errors(f"schedule {schedule_name(self.project, env)}"):
                self.clients("scheduler").delete_schedule(Name=schedule_name(self.project, env))
            removed.append(f"schedule {schedule_name(self.project, env)}")
        if f"batch pipeline {name}" in found:
            with aws_errors(f"batch pipeline {name}"):
                self.clients("sagemaker").delete_pipeline(
                    PipelineName=name, ClientRequestToken=str(uuid.uuid4())
                )
            removed.append(f"batch pipeline {name}")
        models = [line.split(" ", 1)[1] for line in found if line.startswith("model ")]
        removed += self._delete_models(models)
        return removed

    def prune(self, env: str, keep_versions: set[int]) -> list[str]:
        """Delete the models of versions outside ``keep_versions``; never the one the schedule
        scores with, whatever its version."""
        running = schedule_parameters(self._schedule(env)).get("ModelName")
        doomed = [
            name
            for name, version in self._models(env).items()
            if version not in keep_versions and name != running
        ]
        return self._delete_models(doomed)

    def _delete_models(self, names: list[str]) -> list[str]:
        removed = []
        for name in sorted(names):
            try:
                self.clients("sagemaker").delete_model(ModelName=name)
            except ClientError as exc:
                if not (is_not_found(exc) or "could not find" in str(exc).lower()):
                    raise CIError(describe_aws_error(exc, f"model {name}")) from exc
                continue
            removed.append(f"model {name}")
        return removed
