"""`make bench`'s aws figures: what a command that changes nothing costs (#27).

A default render (one account: moto's) runs the CLI as the workflows do, one process per command,
against a moto server in this process (``AWS_ENDPOINT_URL``). After a first deploy and a first
run-pipeline have created everything, it times, in the same run:

- ``deploy --env staging`` of the same manifest (a no-op: reads only, no definition built),
- ``run-pipeline`` with unchanged code (the definition is not built; the start is its one write),
- ``status``, the plain command both are measured against.

The figures are medians of a few runs and their ratios to ``status`` (budget 2.5 each: before
#27 the no-op deploy cost 8.1 s against 1.2 s, mostly the sagemaker SDK building a definition
that had not changed).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"  # moto's
BUDGET = 2.5


def _seed_account(repo: Path, endpoint: str) -> None:
    """What infra/bootstrap.yml creates, and version 1 as the pipeline registers it (metrics
    report and the monitor's baseline, bias and explainability reports attached)."""
    import boto3
    from moto.sagemaker.models import sagemaker_backends

    from ci_scripts.project import ProjectConfig

    p = ProjectConfig.load(repo)
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": p.region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    s3 = boto3.client("s3", **kwargs)
    s3.create_bucket(
        Bucket=p.artifact_bucket, CreateBucketConfiguration={"LocationConstraint": p.region}
    )
    boto3.client("ecr", **kwargs).create_repository(repositoryName=p.ecr_repository)
    sagemaker = boto3.client("sagemaker", **kwargs)
    sagemaker.create_model_package_group(ModelPackageGroupName=p.model_package_group)
    report = {"binary_classification_metrics": {"auc": {"value": 0.95}}}
    s3.put_object(Bucket=p.artifact_bucket, Key="evaluation.json", Body=json.dumps(report))
    image = f"{ACCOUNT}.dkr.ecr.{p.region}.amazonaws.com/{p.ecr_repository}:bench"
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=p.model_package_group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": image, "ModelDataUrl": f"s3://{p.artifact_bucket}/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{p.artifact_bucket}/evaluation.json",
                }
            }
        },
    )["ModelPackageArn"]
    # moto keeps only ModelQuality of ModelMetrics: attach the rest on its own record.
    package = sagemaker_backends[ACCOUNT][p.region].model_packages[arn]
    run = f"s3://{p.artifact_bucket}/pipeline-runs/r1"
    package.model_metrics = {
        **(package.model_metrics or {}),
        "ModelDataQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": f"{run}/DataBaseline/baseline/statistics.json",
            }
        },
        "Bias": {
            "Report": {"ContentType": "application/json", "S3Uri": f"{run}/bias/analysis.json"}
        },
        "Explainability": {
            "Report": {"ContentType": "application/json", "S3Uri": f"{run}/explain/analysis.json"}
        },
    }
    manifest = p.manifest_path("staging")
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["model_version"] = 1
    manifest.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _seconds(repo: Path, env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ci_scripts", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def aws_noop_figures(work: Path, runs: int = 3) -> dict[str, Any]:
    """Render, serve moto, set up, and time the three commands (medians of ``runs``)."""
    from cookiecutter.main import cookiecutter
    from moto.server import ThreadedMotoServer

    template = Path(__file__).resolve().parent.parent
    repo = Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(work / "aws"),
            extra_context={"dev_account_id": ACCOUNT},
        )
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        config = work / "aws-config"
        config.write_text("[default]\ns3 =\n  addressing_style = path\n", encoding="utf-8")
        env = {
            **os.environ,
            "CI_SCRIPTS_BACKEND": "aws",
            "CI_SCRIPTS_CACHE_DIR": str(work / "aws-cache"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": str(config),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": json.loads((template / "cookiecutter.json").read_text())[
                "aws_region"
            ],
        }
        for key in ("AWS_PROFILE", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
            env.pop(key, None)
        _seed_account(repo, endpoint)
        deploy = ("deploy", "--env", "staging", "--commit", "bench", "--pr", "1")
        first = {"deploy": _seconds(repo, env, *deploy)}  # creates everything, builds
        first["run-pipeline"] = _seconds(repo, env, "run-pipeline")
        timed: dict[str, list[float]] = {"status": [], "deploy": [], "run-pipeline": []}
        for _ in range(runs):  # interleaved: a slower moment of the machine hits all three
            timed["status"].append(_seconds(repo, env, "status"))
            timed["deploy"].append(_seconds(repo, env, *deploy))
            timed["run-pipeline"].append(_seconds(repo, env, "run-pipeline"))
    finally:
        server.stop()
    median = {name: statistics.median(samples) for name, samples in timed.items()}
    return {
        "first_seconds": {k: round(v, 2) for k, v in first.items()},
        "status_seconds": round(median["status"], 2),
        "noop_deploy_seconds": round(median["deploy"], 2),
        "unchanged_run_pipeline_seconds": round(median["run-pipeline"], 2),
        "noop_deploy_ratio": round(median["deploy"] / median["status"], 2),
        "unchanged_run_pipeline_ratio": round(median["run-pipeline"] / median["status"], 2),
        "budget_ratio": BUDGET,
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-aws-") as tmp:
        print(json.dumps(aws_noop_figures(Path(tmp)), indent=2))
