"""``ground-truth --env E FILE``: a labelling feed's CSV becomes ground truth that the monitor's
own reader (src/<package>/live_quality.py) reads; a bad line is refused naming file and line,
nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_testkit import template_step_module
from local_testkit import BUCKET
from typer.testing import CliRunner

from ci_scripts import model_quality as mq
from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.cli import State, app


def _cli(backend: LocalBackend, *args: str):
    state = State(project_dir=backend.project.root, backend_instance=backend)
    return CliRunner().invoke(app, list(args), obj=state, catch_exceptions=False)


def _written(backend: LocalBackend) -> list[Path]:
    folder = backend.state.s3_path(mq.ground_truth_prefix(BUCKET, "prod"))
    return sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []


def test_labels_become_ground_truth_records(tmp_path: Path, backend: LocalBackend) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,label\nreq-1,1\n\nreq-2,0\nbatch-3,1,0,1\n")

    result = _cli(backend, "ground-truth", "--env", "prod", str(labels))

    assert result.exit_code == 0, result.output
    assert "3 requests (5 rows) labelled" in result.output
    (path,) = _written(backend)
    assert backend.state.s3_uri(path) in result.output
    read = template_step_module("live_quality").read_ground_truth
    assert read([path]) == {"req-1": ["1"], "req-2": ["0"], "batch-3": ["1", "0", "1"]}
    assert json.loads(path.read_text().splitlines()[0])["groundTruthData"]["encoding"] == "CSV"


def test_a_bad_line_is_named_and_nothing_is_written(tmp_path: Path, backend: LocalBackend) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("req-1,1\nreq-2,yes\n")

    result = _cli(backend, "ground-truth", "--env", "prod", str(labels))

    assert result.exit_code == 1
    assert f"{labels}:2: labels must be one of 0, 1, got ['yes']" in result.stderr
    assert _written(backend) == []
