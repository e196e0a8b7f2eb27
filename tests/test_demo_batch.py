"""`make demo-batch`: the loop for deployment=batch, from the first proposal to prod's batch run.

Cheap by design (the demo tests are the suite's most expensive): the batch render is the matrix's
shared one (bake_once), and the training pipeline, which `make demo` and tests/test_demo.py
already cover, is replaced by the package's own preprocess and train steps (seconds) with the
model registered as the RegisterModel step registers it (its src/ copy kept). Every stage after
that is the demo's own (but two, see SKIPPED): propose -> merge -> deploy staging -> batch-run
staging on the shipped data/batch/sample.csv (the real serve code scoring it) -> promote -> merge
-> deploy prod -> status.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from option_matrix import BATCH_COMBINATION
from test_demo import live_pids

from ci_scripts.backends.local import image
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.backends.local.state import keep_code
from ci_scripts.project import ProjectConfig
from scripts.demo import Demo

# Covered elsewhere on the same backend (tests/local/test_local_batch.py: the smoke test; the
# staging batch run here is the same code as prod's): about 4 s saved.
SKIPPED = ("smoke-test staging", "batch-run prod")


def train_and_register(repo: Path) -> int:
    """preprocess + train of the repo's package (as the pipeline's steps run them), registered."""
    project = ProjectConfig.load(repo)
    root = repo / ".mlops" / "test-training"
    data = root / "processing" / "input" / "data"
    data.mkdir(parents=True)
    shutil.copy(repo / "data" / "dataset.csv", data)
    env = image.environment(repo / "src", project.package, os.environ)
    env["OPT_ML_ROOT"] = str(root)
    for step in ("preprocess", "train"):
        subprocess.run(image.command(sys.executable, step), env=env, check=True)
        for channel in ("train", "validation"):
            split = root / "processing" / channel / f"{channel}.csv"
            if split.is_file():
                (root / "input" / "data" / channel).mkdir(parents=True, exist_ok=True)
                shutil.copy(split, root / "input" / "data" / channel)
    backend = LocalBackend(project)
    url = f"s3://{project.artifact_bucket}/test/model.tar.gz"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted((root / "model").iterdir()):
            tar.add(path, arcname=path.name)
    target = backend.state.s3_path(url)
    target.parent.mkdir(parents=True)
    target.write_bytes(archive.getvalue())
    version = backend.registry.register(
        project.model_package_group,
        model_data_url=url,
        image_uri=f"{project.ecr_repository}:test",
        metrics={"auc": 0.99, "accuracy": 0.95, "f1": 0.95, "precision": 0.95, "recall": 0.95},
    )
    src = repo / "src"
    keep_code(backend.state, src, image.code_hash(src), version.group, version.version)
    return version.version


def test_batch_loop_from_proposal_to_prod_batch_run(bake_once, tmp_path: Path) -> None:
    repo = tmp_path / "churn-model"
    shutil.copytree(bake_once(**BATCH_COMBINATION), repo, symlinks=True)
    version = train_and_register(repo)
    demo = Demo(tmp_path, scenario="batch")
    demo.repo = repo
    stages = demo.batch_stages()
    assert [s.name for s in stages[:2]] == ["render (batch)", "run pipeline"]
    details = {}
    try:
        for stage in stages[2:]:
            if stage.name not in SKIPPED:
                details[stage.name] = stage.run()
    finally:
        demo.down()

    assert "batch churn-model-staging-batch InService" in details["deploy staging"]
    assert f"Succeeded (version {version}, 57 rows" in details["batch-run staging"]
    manifest = json.loads((repo / "deploy" / "staging.json").read_text())
    outputs = demo_path(repo, manifest["batch"]["output_prefix"]) / "sample.csv.out"
    lines = outputs.read_text().splitlines()
    assert len(lines) == 57 and lines[0].startswith("row-2,")  # ids kept, in input order
    assert (
        f"batch churn-model-prod-batch InService, scores with version {version}"
        in details["deploy prod"]
    )  # promoted: staging ran it healthily
    # monitoring=yes: the run's rows wait for the monitor as captured traffic, ids as inference ids
    captured = sorted((repo / ".mlops" / "datacapture" / "staging").rglob("*.jsonl"))
    records = [json.loads(line) for line in captured[-1].read_text().splitlines()]
    assert len(records) == 57 and records[0]["eventMetadata"]["inferenceId"] == "row-2"
    assert details["status"] == "desired state == running state"
    assert git_log(repo).count("Merge pull request") == 2
    assert live_pids(repo) == []


def demo_path(repo: Path, uri: str) -> Path:
    from ci_scripts.backends.local.state import LocalState

    return LocalState(repo).s3_path(uri)


def git_log(repo: Path) -> str:
    return subprocess.run(
        ["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
