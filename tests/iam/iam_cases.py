"""Recordings and renders shared by the IAM tests: each flow recorded once per run (the tests
that judge recordings run on one xdist worker: tests/conftest.py, RECORDING_GROUP)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cfn_stacks import KMS_KEY_ID, REGION, Stack, load, stacks
from github_jobs import Job, load_jobs
from iam_flows import run_loop
from iam_judge import LAYOUTS, job_role, roles
from iam_recorder import Request, recording_harness
from option_matrix import COMBINATIONS, combination_id
from pipeline_role import TRACKING_SERVER, pipeline_role_requests

CASES = [
    pytest.param(combo, layout, id=f"{combination_id(combo)}-{layout}")
    for combo in COMBINATIONS
    for layout in LAYOUTS
]
_RECORDED: dict[tuple, list[Request]] = {}


def rendered(bake_once: Callable[..., Path], combo: dict[str, str]) -> tuple[list[Job], dict]:
    project = bake_once(**combo)
    return load_jobs(project), load(project / "infra" / "bootstrap.yml")


# The three-accounts layout is judged with the project's customer-managed KMS key: the dev stack
# creates it (CreateKmsKey=true), staging and prod pass its ARN (KmsKeyArn), and the project sets
# it as [tool.sagemaker-gitops].kms_key_arn (infra/README.md, "Customer-managed KMS key"). The
# layout with the most cross-account grants exercises every KMS grant (key policy and role
# policies); the other layouts are judged without a key. No extra recording either way.
KMS_LAYOUT = "three-accounts"


def kms_key_arn(layout: str) -> str:
    if layout != KMS_LAYOUT:
        return ""
    return f"arn:aws:kms:{REGION}:{LAYOUTS[layout]['dev']}:key/{KMS_KEY_ID}"


def layout_stacks(template: dict, layout: str) -> list[Stack]:
    """The layout's stacks: the dev stack names a tracking server (the pipeline tracks runs), and
    the KMS layout's stacks create and pass the project key."""
    server = TRACKING_SERVER.format(account=LAYOUTS[layout]["dev"])
    key = kms_key_arn(layout)
    per_env = (
        {"dev": {"CreateKmsKey": "true"}, "staging": {"KmsKeyArn": key}, "prod": {"KmsKeyArn": key}}
        if key
        else None
    )
    return stacks(template, LAYOUTS[layout], {"MlflowTrackingServerArn": server}, per_env=per_env)


def recorded(
    combo: dict[str, str], layout: str, jobs: list[Job], all_stacks: list[Stack], tmp: Path
) -> list[Request]:
    """The loop's requests for this deployment/monitoring choice and layout (api_gateway does
    not change what ci_scripts calls, so renders that differ only there share a recording)."""
    key = (combo["deployment"], combo["monitoring"], layout)
    if key not in _RECORDED:
        accounts = LAYOUTS[layout]
        all_roles = roles(all_stacks)
        job_accounts = {
            command: job_role(job, all_roles).account for job in jobs for command in job.commands
        }
        answers = {
            "deployment": combo["deployment"],
            "monitoring": combo["monitoring"],
            "dev_account_id": accounts["dev"],
            "staging_account_id": accounts["staging"],
            "prod_account_id": accounts["prod"],
        }
        with (
            pytest.MonkeyPatch.context() as monkeypatch,
            recording_harness(
                tmp, monkeypatch, job_accounts, kms_key_arn=kms_key_arn(layout), **answers
            ) as harness,
        ):
            run_loop(harness, tmp)
        # ... and what the pipelines it ran and the endpoints it deployed do as their roles
        as_roles = pipeline_role_requests(harness.requests, tmp, kms_key_arn(layout), **answers)
        _RECORDED[key] = [*harness.requests, *as_roles]
    return _RECORDED[key]
