"""What SageMaker does *as* a job's or a model's execution role, as requests for the IAM judge.

No CLI command and no workflow job makes these calls: SageMaker makes them with the role a job
(RoleArn) or a model (ExecutionRoleArn) is given, while the job runs or the endpoint serves. Each
is derived from the job's or model's own arguments (the resolved step arguments of a real
pipeline definition, or the CLI's recorded CreateModel / CreateEndpointConfig), never from a
hand-written list of buckets:

- the image, pulled from ECR: ecr:GetAuthorizationToken (no resource), then
  BatchCheckLayerAvailability, GetDownloadUrlForLayer and BatchGetImage on the repository the
  image URI names (the registry is the URI's account);
- S3: every input read (ListBucket on the bucket with the input's prefix, GetObject on the
  objects under it, or the one object), every output written (PutObject under the prefix, with
  the output's KmsKeyId as SSE-KMS key when one is given);
- CloudWatch Logs in the job's account under /aws/sagemaker/<kind> (CreateLogGroup,
  CreateLogStream, PutLogEvents, DescribeLogStreams) and cloudwatch:PutMetricData in the
  /aws/sagemaker/<kind> namespace (the instance metrics);
- with the project's KMS key: kms:CreateGrant for the ML storage volume key (a grant for
  SageMaker, an AWS resource), kms:Encrypt for the output key, and the SSE-KMS calls S3 makes as
  the role for each object (iam_judge.kms_checks: GenerateDataKey to write, Decrypt to read).

Sources, one per kind of job: "CreateProcessingJob API: Execution Role Permissions",
"CreateTrainingJob API: Execution Role Permissions", "CreateHyperParameterTuningJob API:
Execution Role Permissions" and "CreateModel API: Execution Role Permissions" in
https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html (each lists the logs,
cloudwatch, s3 and ecr actions, scoped to the request's S3 URIs and image, and the KMS actions:
kms:Decrypt for SSE-KMS inputs, kms:Encrypt for an output key, kms:CreateGrant for a volume key);
the API reference says the same of each output key ("the SageMaker execution role must include
permissions to call kms:Encrypt": API_ProcessingOutputConfig, API_OutputDataConfig,
API_TransformOutput, https://docs.aws.amazon.com/sagemaker/latest/APIReference/).
A transform job runs as its model's role (CreateTransformJob takes no role: ModelName).
Endpoint data capture is written as the model's role under DataCaptureConfig.DestinationS3Uri,
encrypted with DataCaptureConfig.KmsKeyId ("the AWS KMS key that SageMaker uses to encrypt the
captured data at rest using Amazon S3 server-side encryption",
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from iam_recorder import Request

SAGEMAKER = "sagemaker"  # the service that makes these calls as the role (kms:ViaService)
IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/([^:@]+)")
DIGEST = "sha256:" + "0" * 64


@dataclass
class Use:
    """The requests one job or model makes as ``role``, recorded under ``command``."""

    command: str
    role: str
    why: str  # the job or endpoint, for the verdict line
    requests: list[Request] = field(default_factory=list)

    def call(self, service: str, operation: str, **params: Any) -> None:
        self.requests.append(
            Request(self.command, self.role, service, operation, params, f"{SAGEMAKER}: {self.why}")
        )

    def image(self, uri: str) -> None:
        found = IMAGE.match(str(uri))
        assert found, f"{self.why}: {uri!r} is not an ECR image URI"
        registry, repository = found.groups()
        self.call("ecr", "GetAuthorizationToken")
        repo = {"registryId": registry, "repositoryName": repository}
        self.call("ecr", "BatchCheckLayerAvailability", **repo, layerDigests=[DIGEST])
        self.call("ecr", "GetDownloadUrlForLayer", **repo, layerDigest=DIGEST)
        self.call("ecr", "BatchGetImage", **repo, imageIds=[{"imageTag": _tag(uri)}])

    def read(self, uri: str, data_type: str = "S3Prefix") -> None:
        """An input: the one object (S3Object), or every object whose key starts with the
        URI's key (S3Prefix: SageMaker lists the bucket by that prefix, then gets each)."""
        bucket, key = split(uri, self.why)
        if data_type == "S3Object":
            self.call("s3", "GetObject", Bucket=bucket, Key=key)
            return
        self.call("s3", "ListObjectsV2", Bucket=bucket, Prefix=key)
        self.call("s3", "GetObject", Bucket=bucket, Key=key + "*")

    def write(self, uri: str, kms_key: str | None) -> None:
        """An output: objects under the URI's key, SSE-KMS under ``kms_key`` when given."""
        bucket, key = split(uri, self.why)
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
        self.call("s3", "PutObject", Bucket=bucket, Key=key.rstrip("/") + "/*", **sse)

    def telemetry(self, kind: str, stream: str) -> None:
        """Logs under /aws/sagemaker/<kind> and instance metrics in that namespace."""
        group = f"/aws/sagemaker/{kind}"
        self.call("logs", "CreateLogGroup", logGroupName=group)
        self.call("logs", "CreateLogStream", logGroupName=group, logStreamName=stream)
        self.call("logs", "DescribeLogStreams", logGroupName=group, logStreamNamePrefix=stream)
        self.call("logs", "PutLogEvents", logGroupName=group, logStreamName=stream, logEvents=[])
        self.metrics(f"/aws/sagemaker/{kind.split('/')[0]}")

    def metrics(self, namespace: str) -> None:
        self.call("cloudwatch", "PutMetricData", Namespace=namespace, MetricData=[])

    def volume_key(self, key: str | None) -> None:
        if key:
            self.call("kms", "CreateGrant", KeyId=key, GranteePrincipal=SAGEMAKER)

    def output_key(self, key: str | None) -> None:
        if key:
            self.call("kms", "Encrypt", KeyId=key)


def split(uri: str, why: str) -> tuple[str, str]:
    found = re.match(r"^s3://([^/]+)/?(.*)$", str(uri))
    assert found, f"{why}: {uri!r} is not an s3:// URI"
    return found[1], found[2]


def _tag(uri: str) -> str:
    return uri.rsplit(":", 1)[1] if ":" in uri.rsplit("/", 1)[-1] else "latest"


def processing_job(command: str, name: str, args: dict[str, Any]) -> list[Request]:
    """A processing job's own use of its RoleArn (CreateProcessingJob's arguments)."""
    use = Use(command, args["RoleArn"], f"processing job {name}")
    use.image(args["AppSpecification"]["ImageUri"])
    for item in args.get("ProcessingInputs", []):
        source = item.get("S3Input")
        if source:
            use.read(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
    outputs = args.get("ProcessingOutputConfig") or {}
    for item in outputs.get("Outputs", []):
        if item.get("S3Output"):
            use.write(item["S3Output"]["S3Uri"], outputs.get("KmsKeyId"))
    use.output_key(outputs.get("KmsKeyId"))
    use.volume_key(args["ProcessingResources"]["ClusterConfig"].get("VolumeKmsKeyId"))
    use.telemetry("ProcessingJobs", f"{name}/algo-1-0000000000")
    monitor = _monitor_config(args.get("Environment") or {})
    if monitor.get("publish_metrics") and monitor.get("namespace"):
        # the monitor's own PutMetricData (ci_scripts/runtime/monitor.py, publish): its
        # container's boto3 call, with the job's role as credentials
        use.metrics(str(monitor["namespace"]))
    return use.requests


def _monitor_config(environment: dict[str, Any]) -> dict[str, Any]:
    """The monitor job's MONITOR_CONFIG (the monitoring pipeline's MonitorConfig parameter)."""
    try:
        config = json.loads(str(environment.get("MONITOR_CONFIG") or "{}"))
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def training_job(command: str, name: str, args: dict[str, Any]) -> list[Request]:
    """A training job's (or a tuning job's trial's) own use of its RoleArn."""
    use = Use(command, args["RoleArn"], f"training job {name}")
    use.image(args["AlgorithmSpecification"]["TrainingImage"])
    for channel in args.get("InputDataConfig", []):
        source = channel["DataSource"].get("S3DataSource")
        if source:
            use.read(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
    output = args["OutputDataConfig"]
    use.write(f"{output['S3OutputPath'].rstrip('/')}/{name}", output.get("KmsKeyId"))
    use.output_key(output.get("KmsKeyId"))
    use.volume_key(args["ResourceConfig"].get("VolumeKmsKeyId"))
    use.telemetry("TrainingJobs", f"{name}/algo-1-0000000000")
    return use.requests


@dataclass(frozen=True)
class Model:
    """A SageMaker Model as it serves: its role, image and artifact."""

    name: str
    role: str
    image: str
    model_data: str


def model_use(use: Use, model: Model) -> None:
    """What serving ``model`` (an endpoint's variant, a transform job) reads as its role."""
    use.image(model.image)
    use.read(model.model_data, "S3Object")


def transform_job(command: str, name: str, args: dict[str, Any], model: Model) -> list[Request]:
    """A transform job's use of its model's role: the model, the input, the output."""
    use = Use(command, model.role, f"transform job {name}")
    model_use(use, model)
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    use.read(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
    output = args["TransformOutput"]
    use.write(output["S3OutputPath"], output.get("KmsKeyId"))
    use.output_key(output.get("KmsKeyId"))
    use.volume_key(args["TransformResources"].get("VolumeKmsKeyId"))
    use.telemetry("TransformJobs", f"{name}/i-0000000000")
    return use.requests


def endpoint(command: str, name: str, config: dict[str, Any], models: dict[str, Model]) -> list:
    """An endpoint serving ``config`` (a CreateEndpointConfig request's parameters): each
    variant's model as its role, its logs and metrics, and data capture."""
    requests: list[Request] = []
    capture = config.get("DataCaptureConfig") or {}
    variants = [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]
    for variant in variants:
        model = models.get(variant["ModelName"])
        if model is None:
            continue  # a model an earlier release created: judged where it was created
        use = Use(command, model.role, f"endpoint {name} variant {variant['VariantName']}")
        model_use(use, model)
        use.telemetry(f"Endpoints/{name}", f"{variant['VariantName']}/i-0000000000")
        if capture.get("EnableCapture", True) and capture.get("DestinationS3Uri"):
            use.write(capture["DestinationS3Uri"], capture.get("KmsKeyId"))
            use.output_key(capture.get("KmsKeyId"))
        requests += use.requests
    return requests
