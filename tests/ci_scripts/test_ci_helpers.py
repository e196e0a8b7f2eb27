"""image-tag / image-exists, git facts for approvals, PR body tables, step outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aws_harness import AwsHarness, admin_client
from gitops_testkit import git, run_cli, write_model_repo

from ci_scripts import gitinfo
from ci_scripts.backends.base import ModelVersion
from ci_scripts.errors import CIError
from ci_scripts.github import write_outputs
from ci_scripts.imagetag import image_input_files, image_tag
from ci_scripts.model_contract import ModelContract
from ci_scripts.report import metrics_table


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_model_repo(tmp_path / "repo", pipeline="none")


def test_image_tag_hashes_exactly_the_image_inputs(repo: Path, tmp_path: Path) -> None:
    tag = image_tag(repo)
    assert len(tag) == 16 and int(tag, 16) >= 0
    assert image_input_files(repo) == [
        "Dockerfile",
        "pyproject.toml",
        "src/churn_model/__init__.py",
    ]  # the stand-in repo vendors no ci_scripts/; a render's image hashes it too

    cache = repo / "src" / "churn_model" / "__pycache__"
    cache.mkdir()
    (cache / "x.cpython-311.pyc").write_bytes(b"\0")
    (repo / "deploy" / "prod.json").write_text("{}")  # not an image input
    assert image_tag(repo) == tag

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(repo), str(copy)], check=True)
    assert image_tag(copy) == tag  # content, not location or mtimes

    (repo / "src" / "churn_model" / "serve.py").write_text("print('hi')\n")
    assert image_tag(repo) != tag


def test_image_tag_needs_a_dockerfile(repo: Path) -> None:
    (repo / "Dockerfile").unlink()
    with pytest.raises(CIError, match="Dockerfile: not found"):
        image_tag(repo)


def test_image_tag_command_prints_and_sets_output(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    result = run_cli(repo, None, "image-tag")
    assert result.exit_code == 0
    assert result.stdout.strip() == image_tag(repo)
    assert out.read_text() == f"tag={image_tag(repo)}\n"


def test_image_exists_prints_true_or_false(aws: AwsHarness) -> None:
    tag = image_tag(aws.project.root)
    absent = aws.cli("image-exists")
    assert (absent.exit_code, absent.stdout.strip()) == (0, "false")

    admin_client("ecr").put_image(
        repositoryName=aws.project.ecr_repository,
        imageManifest='{"schemaVersion": 2, "layers": []}',
        imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
        imageTag=tag,
    )
    present = aws.cli("image-exists", "--tag", tag)
    assert (present.exit_code, present.stdout.strip()) == (0, "true")

    admin_client("ecr").delete_repository(repositoryName=aws.project.ecr_repository, force=True)
    missing_repo = aws.cli("image-exists", "--tag", tag)
    assert missing_repo.exit_code == 1
    assert missing_repo.stderr.startswith(
        "error: ECR repository churn-model: AWS DescribeImages failed: RepositoryNotFoundException"
    )


def test_pull_request_number_from_merge_commits(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_REF", raising=False)
    git(
        repo,
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "Merge pull request #42 from org/propose/staging-v3",
    )
    merge = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "Deploy model version 4 to staging (#43)")
    squash = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "Tidy README")
    plain = git(repo, "rev-parse", "HEAD")

    assert gitinfo.pull_request_number(repo, merge) == 42
    assert gitinfo.pull_request_number(repo, squash) == 43
    assert gitinfo.pull_request_number(repo, plain) is None
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    assert gitinfo.pull_request_number(repo, plain) == 7


def test_current_commit_prefers_github_sha(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert gitinfo.current_commit(repo) == git(repo, "rev-parse", "HEAD")
    monkeypatch.setenv("GITHUB_SHA", "feedface")
    assert gitinfo.current_commit(repo) == "feedface"


def test_metrics_table_deltas() -> None:
    def version(n: int, **metrics: float) -> ModelVersion:
        return ModelVersion("g", n, f"arn/{n}", "Approved", "", "", metrics=metrics)

    table = metrics_table(version(2, auc=0.95, extra=1.0), version(1, auc=0.97, f1=0.5))
    assert table.splitlines()[2:] == [
        "| **auc** (primary, higher is better) | 0.9500 | 0.9700 | -0.0200 |",
        "| f1 | - | 0.5000 | - |",
        "| extra | 1.0000 | - | - |",
    ]


def test_metrics_table_puts_the_models_primary_metric_first() -> None:
    def version(n: int, **metrics: float) -> ModelVersion:
        return ModelVersion("g", n, f"arn/{n}", "Approved", "", "", metrics=metrics)

    contract = ModelContract(
        source="model.py",
        problem_type="regression",
        metrics=("mae", "rmse", "r2"),
        primary_metric="rmse",
        higher_is_better=False,
    )
    table = metrics_table(version(2, r2=0.4, rmse=55.0, mae=44.0), None, contract)
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == [
        "| **rmse** (primary, lower is better)",
        "| mae",
        "| r2",
    ]


def test_step_outputs_single_and_multiline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    write_outputs(proposed=True, version=3, body="a\nb")
    lines = out.read_text().splitlines()
    assert lines[:2] == ["proposed=true", "version=3"]
    assert lines[2].startswith("body<<ghadelim_") and lines[3:5] == ["a", "b"]
    assert lines[5] == lines[2].split("<<", 1)[1]
    monkeypatch.delenv("GITHUB_OUTPUT")
    write_outputs(ignored=1)  # outside a workflow: nothing to do, no error


def test_proposal_body_never_denies_the_baseline_it_links() -> None:
    from ci_scripts.backends.base import ModelVersion
    from ci_scripts.report import proposal_body

    candidate = ModelVersion(
        group="g",
        version=2,
        arn="arn:aws:sagemaker:eu-west-1:1:model-package/g/2",
        approval_status="PendingManualApproval",
        model_data_url="s3://b/model.tar.gz",
        image_uri="img",
        baseline_uri="s3://b/baseline/train.csv",
    )
    body = proposal_body(
        env="staging",
        manifest_label="deploy/staging.json",
        candidate=candidate,
        baseline=None,
        baseline_note="",
        next_step="",
    )

    assert "No data baseline" not in body
    assert "- Data baseline: `s3://b/baseline/train.csv`" in body
