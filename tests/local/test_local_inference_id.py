"""The smoke test sends a fresh InferenceId with every request; the local capture records it.

The id is the key ground-truth labels are joined on (ci_scripts.model_quality), so it must reach
the capture of each request the smoke test makes: the rows one by one and the batch.
"""

from __future__ import annotations

import json
from pathlib import Path

from local_testkit import MANIFEST
from typer.testing import CliRunner

from ci_scripts.backends.local.backend import LocalBackend
from ci_scripts.cli import State, app


def _captures(backend: LocalBackend, env: str) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(backend.state.capture_dir(env).rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def test_invoke_sends_the_inference_id_into_the_capture(backend: LocalBackend, registered) -> None:
    backend.deploy("staging", MANIFEST, registered())

    assert backend.invoke("staging", b"0.5,2.0\n", inference_id="req-42")[0] == 200
    assert backend.invoke("staging", b"0.5,2.0\n")[0] == 200

    first, second = _captures(backend, "staging")
    assert first["eventMetadata"]["inferenceId"] == "req-42"
    assert "inferenceId" not in second["eventMetadata"]


def test_smoke_test_sends_a_fresh_id_per_request(
    repo: Path, backend: LocalBackend, registered
) -> None:
    backend.deploy("staging", MANIFEST, registered())
    (repo / "deploy").mkdir(exist_ok=True)
    (repo / "deploy" / "staging.json").write_text(json.dumps(MANIFEST))

    state = State(project_dir=repo, backend_instance=backend)
    result = CliRunner().invoke(
        app, ["smoke-test", "--env", "staging"], obj=state, catch_exceptions=False
    )

    assert result.exit_code == 0, result.output
    captured = _captures(backend, "staging")
    rows = len((repo / "data" / "dataset.csv").read_text().splitlines()) - 1
    assert len(captured) == rows + 1  # each row alone, then the batch
    ids = [c["eventMetadata"].get("inferenceId") for c in captured]
    assert all(ids) and len(set(ids)) == len(ids)
    answer = json.loads(captured[-1]["captureData"]["endpointOutput"]["data"])
    assert len(answer["predictions"]) == rows
