"""The CLI as a process: fast --help, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from gitops_testkit import TEMPLATE_DIR, write_model_repo

from ci_scripts.backends.aws.errors import describe_aws_error

HEAVY = ("boto3", "botocore", "sagemaker", "jsonschema", "pandas", "sklearn", "rich")


def ci(*args: str, cwd: Path = TEMPLATE_DIR, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_", "CI_"))}
    clean.update(
        PYTHONPATH=str(TEMPLATE_DIR),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "ci_scripts", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, start: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {start}"), lines[0]


def test_help_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ci_scripts", "--help"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert not imported & set(HEAVY)
    for command in (
        "validate",
        "run-pipeline",
        "propose",
        "deploy",
        "smoke-test",
        "promote",
        "rollback",
        "status",
        "image-tag",
        "image-exists",
        "local",
    ):
        assert command in proc.stdout


def test_missing_project_is_one_line(tmp_path: Path) -> None:
    proc = ci("--project-dir", str(tmp_path), "status")
    assert_one_line_error(proc, 1, f"{tmp_path}/pyproject.toml: not found")


def test_bad_manifest_is_one_line_naming_field(tmp_path: Path) -> None:
    repo = write_model_repo(tmp_path / "repo", pipeline="none")
    path = repo / "deploy" / "prod.json"
    path.write_text(
        path.read_text().replace('"initial_instance_count": 2', '"initial_instance_count": 0')
    )
    proc = ci("validate", cwd=repo)
    assert_one_line_error(
        proc, 1, "deploy/prod.json: $.endpoint.initial_instance_count: 0 is less than the minimum"
    )


def test_aws_failure_without_credentials_is_one_line(tmp_path: Path) -> None:
    repo = write_model_repo(tmp_path / "repo", pipeline="none")
    proc = ci("--backend", "aws", "status", cwd=repo)
    assert_one_line_error(proc, 1, "AWS: Unable to locate credentials")


def test_backend_from_environment_and_usage_errors(tmp_path: Path) -> None:
    repo = write_model_repo(tmp_path / "repo", pipeline="none")
    bogus = ci("status", cwd=repo, CI_SCRIPTS_BACKEND="azure")
    assert bogus.returncode == 2 and "CI_SCRIPTS_BACKEND" in bogus.stderr
    assert "Traceback" not in bogus.stderr
    no_creds = ci("status", cwd=repo, CI_SCRIPTS_BACKEND="aws")
    assert_one_line_error(no_creds, 1, "AWS: Unable to locate credentials")
    bad_env = ci("deploy", "--env", "qa", cwd=repo)
    assert bad_env.returncode == 2 and "Traceback" not in bad_env.stderr


def test_client_error_line_names_operation_and_code_and_hides_secrets() -> None:
    error = ClientError(
        {
            "Error": {
                "Code": "SignatureDoesNotMatch",
                "Message": "Signature mismatch for AKIAABCDEFGHIJKLMNOP; "
                "StringToSign=AWS4-HMAC-SHA256\n20250101 Signature=deadbeef",
            }
        },
        "DescribeEndpoint",
    )
    line = describe_aws_error(error, "endpoint churn-model-prod")
    assert line.startswith(
        "endpoint churn-model-prod: AWS DescribeEndpoint failed: SignatureDoesNotMatch: "
    )
    assert "AKIA" not in line and "deadbeef" not in line and "\n" not in line


@pytest.mark.parametrize("args", [["--version"], ["local", "--help"]])
def test_misc_entry_points(args: list[str]) -> None:
    proc = ci(*args)
    assert proc.returncode == 0, proc.stderr
