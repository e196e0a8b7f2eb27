"""The execution roles through the IAM judge (tests/iam/pipeline_role.py, execution_role.py):
what SageMaker does as the dev pipeline's role and as the hosting roles of staging and prod
(endpoints, transform jobs, monitoring jobs), derived from the real definitions and the loop's
requests, is judged against the rendered bootstrap.yml, for each account layout, with the
project KMS key, and for batch; and removing one of those grants fails the judge naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfn_stacks import KMS_KEY_ID
from iam_cases import KMS_LAYOUT, layout_stacks, recorded, rendered
from iam_judge import LAYOUTS, Verdict, World, decide_check, judge, without
from option_matrix import BATCH_COMBINATION, DEFAULT_COMBINATION
from pipeline_role import COMMAND, TRAINING_MODULE, definition, execution_requests

from ci_scripts.project import TuningBudget

ROLE = "churn-model-sagemaker-execution"
ECR = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
}
TELEMETRY = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "cloudwatch:PutMetricData",
}
JOB_USE = ECR | TELEMETRY | {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
# an endpoint reads its one model artifact (no listing) and writes its data capture
ENDPOINT_USE = ECR | TELEMETRY | {"s3:GetObject", "s3:PutObject"}
KMS_USE = {"kms:CreateGrant", "kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"}


_JUDGED: dict[tuple, tuple] = {}


def _judged(bake_once, tmp: Path, combo: dict[str, str], layout: str) -> tuple:
    """(jobs, stacks, requests, verdicts) of the loop for ``combo`` in ``layout``, judged once
    per session (the removal tests share one judgement)."""
    key = (*sorted(combo.items()), layout)
    if key not in _JUDGED:
        jobs, template = rendered(bake_once, combo)
        stacks = layout_stacks(template, layout)
        requests = recorded(combo, layout, jobs, stacks, tmp)
        verdicts, _ = judge(requests, jobs, stacks)
        _JUDGED[key] = (jobs, stacks, requests, verdicts)
    return _JUDGED[key]


def _by_sagemaker(verdicts: list[Verdict], account: str, what: str = "") -> list[Verdict]:
    """The checks of what SageMaker does as ``account``'s execution role (for ``what``: a
    processing job, an endpoint, ...)."""
    return [
        v
        for v in verdicts
        if v.caller == f"arn:aws:iam::{account}:role/{ROLE}"
        and f"by sagemaker: {what}" in v.check.why
    ]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_execution_roles_are_judged_on_their_own_use(layout, bake_once, tmp_path) -> None:
    _, _, _, verdicts = _judged(bake_once, tmp_path, DEFAULT_COMBINATION, layout)
    accounts = LAYOUTS[layout]
    dev = accounts["dev"]
    repository = f"arn:aws:ecr:eu-west-1:{dev}:repository/churn-model"
    for env, what, wanted in (
        ("dev", "processing job", JOB_USE),
        ("dev", "training job", JOB_USE),
        ("staging", "endpoint", ENDPOINT_USE),
        ("prod", "endpoint", ENDPOINT_USE),
        ("staging", "processing job pipelines-a1b2c3d4e5f6-Monitor", JOB_USE),
    ):
        found = _by_sagemaker(verdicts, accounts[env], what)
        assert {v.check.action for v in found} >= wanted, (
            env,
            what,
            wanted - {v.check.action for v in found},
        )
        assert all(v.allowed for v in found), [v.line() for v in found if not v.allowed]
        # the one image, in the dev registry: another account's role pulls it through the
        # repository policy as well as its own
        pulls = [v for v in found if v.check.action == "ecr:BatchGetImage"]
        assert pulls and {v.check.resource for v in pulls} == {repository}
        if accounts[env] != dev:
            assert all(any("repository policy" in g for g in v.grants) for v in pulls)
    # the monitor job's container publishes its metrics in the project's namespace
    monitor = _by_sagemaker(
        verdicts, accounts["staging"], "processing job pipelines-a1b2c3d4e5f6-Monitor"
    )
    namespaces = {v.check.context.get("cloudwatch:namespace") for v in monitor}
    assert "churn-model/Monitoring" in namespaces, namespaces
    # the endpoints read the artifact the training pipeline registers (its RegisterModel step)
    artifacts = {
        v.check.resource
        for v in _by_sagemaker(verdicts, accounts["prod"], "endpoint")
        if v.check.action == "s3:GetObject"
    }
    assert artifacts == {
        f"arn:aws:s3:::churn-model-artifacts-{dev}-eu-west-1/churn-model/tuning/model/"
        "a1b2c3d4e5f6-Tune-0A1b2C3d4E-001-0a1b2c3d/output/model.tar.gz"
    }


def test_with_the_project_key_the_execution_roles_kms_use_is_judged(bake_once, tmp_path) -> None:
    _, _, _, verdicts = _judged(bake_once, tmp_path, DEFAULT_COMBINATION, KMS_LAYOUT)
    key = f"arn:aws:kms:eu-west-1:{LAYOUTS[KMS_LAYOUT]['dev']}:key/{KMS_KEY_ID}"
    for env, what in (("dev", "processing job"), ("dev", "training job"), ("staging", "endpoint")):
        found = [
            v
            for v in _by_sagemaker(verdicts, LAYOUTS[KMS_LAYOUT][env], what)
            if v.check.action.startswith("kms:")
        ]
        wanted = KMS_USE - {"kms:CreateGrant"} if what == "endpoint" else KMS_USE
        assert {v.check.action for v in found} >= wanted, (env, what)
        assert {v.check.resource for v in found} == {key}
        assert all(v.allowed for v in found), [v.line() for v in found if not v.allowed]
        for grant in (v for v in found if v.check.action == "kms:CreateGrant"):
            assert grant.check.context["kms:GrantIsForAWSResource"] == "true"
            assert grant.check.context["kms:ViaService"] == "sagemaker.eu-west-1.amazonaws.com"


def test_a_batch_transform_reads_and_writes_what_its_schedule_names(bake_once, tmp_path) -> None:
    _, _, requests, verdicts = _judged(bake_once, tmp_path, BATCH_COMBINATION, KMS_LAYOUT)
    staging = LAYOUTS[KMS_LAYOUT]["staging"]
    (schedule,) = [
        r
        for r in requests
        if r.operation == "CreateSchedule" and r.params["Name"] == "churn-model-staging-batch"
    ]
    parameters = {
        p["Name"]: p["Value"]
        for p in schedule.params["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
    }
    transform = _by_sagemaker(verdicts, staging, "transform job")
    resources = {(v.check.action, v.check.resource) for v in transform}
    source = parameters["InputUri"].removeprefix("s3://")
    target = parameters["OutputUri"].removeprefix("s3://").rstrip("/")
    assert ("s3:GetObject", f"arn:aws:s3:::{source}*") in resources
    assert ("s3:PutObject", f"arn:aws:s3:::{target}/*") in resources
    assert {a for a, _ in resources} >= JOB_USE | {"kms:CreateGrant", "kms:Encrypt"}
    assert all(v.allowed for v in transform), [v.line() for v in transform if not v.allowed]
    created = [
        v
        for v in verdicts
        if v.check.action == "sagemaker:CreateTransformJob"
        and v.caller == f"arn:aws:iam::{staging}:role/{ROLE}"
    ]
    assert created and all(v.allowed for v in created)


def test_every_step_of_the_real_definitions_becomes_its_requests(bake_once, tmp_path) -> None:
    _, _, requests, _ = _judged(bake_once, tmp_path, BATCH_COMBINATION, KMS_LAYOUT)
    made = {
        (r.operation, _step_of(r.params))
        for r in requests
        if r.operation.startswith("Create") and r.identity and r.identity.endswith(ROLE)
    }
    processing = {"Preprocess", "DataBaseline", "Evaluate", "CheckBias", "Explain", "Monitor"}
    processing |= {"CheckInput", "Capture"}
    assert {name for op, name in made if op == "CreateProcessingJob"} == processing
    assert {op for op, _ in made} >= {
        "CreateHyperParameterTuningJob",
        "CreateModelPackage",
        "CreateTransformJob",
    }


def _step_of(params: dict) -> str:
    """The step a job was created for: pipelines-<execution id>-<step>-<suffix>."""
    name = next((v for k, v in params.items() if k.endswith("JobName")), "")
    return name.split("-")[2] if name.startswith("pipelines-") else ""


def test_a_pipeline_that_trains_once_is_judged_as_a_training_step(bake_once, tmp_path) -> None:
    """One trial (no [tool.sagemaker-gitops.tuning] table) is a Training step: its
    CreateTrainingJob and the training job's own use, as the dev execution role."""
    jobs, template = rendered(bake_once, DEFAULT_COMBINATION)
    stacks = layout_stacks(template, KMS_LAYOUT)
    accounts = LAYOUTS[KMS_LAYOUT]
    answers = {f"{env}_account_id": account for env, account in accounts.items()}
    key = f"arn:aws:kms:eu-west-1:{accounts['dev']}:key/{KMS_KEY_ID}"
    once = definition(tmp_path, TRAINING_MODULE, key, {"tuning": TuningBudget()}, **answers)
    assert "Training" in {s["Type"] for s in once["Steps"]}
    role = f"arn:aws:iam::{accounts['dev']}:role/{ROLE}"
    verdicts, _ = judge(execution_requests(COMMAND, role, once, {}), jobs, stacks)
    actions = {v.check.action for v in verdicts}
    assert actions >= {"sagemaker:CreateTrainingJob", "iam:PassRole"} | JOB_USE | KMS_USE
    assert all(v.allowed for v in verdicts), [v.line() for v in verdicts if not v.allowed]


# (statement, action, what is denied without it): an S3, an ECR (the dev repository's policy,
# for another account's role), a logs and a KMS grant of the execution roles.
REMOVED = [
    (f"role {ROLE} policy artifacts#ReadArtifacts", "s3:GetObject", "processing job"),
    (f"role {ROLE} policy artifacts#WriteArtifacts", "s3:PutObject", "processing job"),
    ("repository policy of churn-model#PullFromServingAccounts", "ecr:BatchGetImage", "transform"),
    (f"role {ROLE} policy image#PullProjectImage", "ecr:GetDownloadUrlForLayer", "training job"),
    (f"role {ROLE} policy telemetry#SageMakerLogs", "logs:PutLogEvents", "transform job"),
    (f"role {ROLE} policy kms#KmsGrantVolumesToSageMaker", "kms:CreateGrant", "processing job"),
    ("key policy of dev's project key#ProjectRolesEncrypt", "kms:Encrypt", "processing job"),
]


@pytest.mark.parametrize(("grant", "action", "what"), REMOVED, ids=[r[1] for r in REMOVED])
def test_removing_an_execution_role_grant_fails_naming_it(
    grant, action, what, bake_once, tmp_path
) -> None:
    _, stacks, _, verdicts = _judged(bake_once, tmp_path, BATCH_COMBINATION, KMS_LAYOUT)
    mutated = without(World.of(stacks), grant, action)
    affected = [v for v in verdicts if v.allowed and grant in v.grants and v.check.action == action]
    assert affected, f"{grant} grants no {action} the judge saw"
    lines = [decide_check(v.job, v.caller, v.check, mutated) for v in affected]
    denied = [v.line() for v in lines if not v.allowed]
    assert any(f"by sagemaker: {what}" in line for line in denied), denied
    assert all(action in line for line in denied), denied


def test_a_model_step_creates_its_model_and_an_unknown_step_type_is_refused() -> None:
    """No real definition has a Model step yet: its CreateModel (passing the model's role) is
    derived all the same; a step type the judge does not know fails instead of calling
    nothing."""
    role = "arn:aws:iam::123456789012:role/churn-model-sagemaker-execution"
    container = {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-model:t"}
    model = {"ExecutionRoleArn": role, "PrimaryContainer": container}
    steps = [{"Name": "Model", "Type": "Model", "Arguments": model}]
    (request,) = execution_requests(COMMAND, role, {"Steps": steps}, {})
    assert (str(request), request.params["ExecutionRoleArn"]) == ("sagemaker:CreateModel", role)
    emr = [{"Name": "Cluster", "Type": "EMR", "Arguments": {}}]
    with pytest.raises(AssertionError, match="type EMR is not known"):
        execution_requests(COMMAND, role, {"Steps": emr}, {})
