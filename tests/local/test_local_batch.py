"""Local batch deployments: deploy records the version (a no-op when unchanged), ``batch-run``
checks every input file with the package's real batch_check, scores with the version's serve code
(tests/local/fake_batch_serve.py stands in for the model), keeps the ids and writes outputs only
when the whole run succeeded; status and prod's gate see the runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_harness import LocalHarness, local_harness

from ci_scripts.errors import CIError

N_FEATURES = 30  # the default (binary classification) render's features


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHarness]:
    """A batch repo: the package's real batch_check (and what it imports), the fake serve."""
    with local_harness(tmp_path, monkeypatch, deployment="batch") as harness:
        yield harness


def merge_version(harness: LocalHarness, env: str, version: int, pr: int) -> None:
    path = harness.project.manifest_path(env)
    data = json.loads(path.read_text())
    data["model_version"] = version
    path.write_text(json.dumps(data, indent=2) + "\n")
    harness.commit(f"Merge pull request #{pr} from propose/{env}")


def prefixes(harness: LocalHarness, env: str) -> tuple[Path, Path, str]:
    batch = json.loads(harness.project.manifest_path(env).read_text())["batch"]
    state = harness.backend.state
    return (
        state.s3_path(batch["input_prefix"]),
        state.s3_path(batch["output_prefix"]),
        batch["input_prefix"],
    )


def row(row_id: str, first: float) -> str:
    return ",".join([row_id, str(first), *["1.0"] * (N_FEATURES - 1)])


def write_input(folder: Path, key: str, *lines: str) -> None:
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def deployed(harness: LocalHarness, env: str = "staging") -> int:
    version = harness.seed_version()
    merge_version(harness, env, version.version, pr=1)
    result = harness.cli("deploy", "--env", env, "--commit", "abc1234def")
    assert result.exit_code == 0, result.output
    return version.version


def test_batch_run_keeps_ids_and_redeploy_is_a_no_op(harness: LocalHarness) -> None:
    version = deployed(harness)
    inputs, outputs, _ = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("c-3", 50), row("c-1", 5), row("c-2", 12))
    write_input(inputs, "2026/12/b.csv", row("c-1", 90))

    result = harness.cli("batch-run", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert "no scheduler locally" in result.stdout
    assert files_under(outputs) == ["2026/12/b.csv.out", "a.csv.out"]
    assert (outputs / "a.csv.out").read_text().splitlines() == [
        "c-3,1,0.5",
        "c-1,0,0.05",
        "c-2,1,0.12",
    ]
    assert (outputs / "2026/12/b.csv.out").read_text() == "c-1,1,0.9\n"
    last = harness.backend.last_batch_run("staging")
    assert last is not None and (last.status, last.rows, last.model_version) == (
        "Succeeded",
        4,
        version,
    )
    state = harness.backend.describe_endpoint("staging")
    assert state is not None and (state.status, state.model_version) == ("InService", version)
    assert state.name == "churn-model-staging-batch" and state.config["type"] == "batch"

    # monitoring=yes (data_capture.enabled): the rows are capture records the monitor reads
    capture = harness.backend.state.capture_dir("staging") / f"version-{version}" / "batch"
    records = [json.loads(line) for line in (capture / f"{last.id}.jsonl").read_text().splitlines()]
    assert [r["eventMetadata"]["inferenceId"] for r in records] == ["c-1", "c-3", "c-1", "c-2"]
    answer = json.loads(records[1]["captureData"]["endpointOutput"]["data"])
    assert answer == {"predictions": [{"label": 1, "probability": 0.5}]}

    harness.reset_mutations()
    again = harness.cli("deploy", "--env", "staging", "--commit", "abc1234def")
    assert again.exit_code == 0, again.output
    assert "no change" in again.stdout
    assert harness.mutations() == []


def test_a_bad_input_file_names_file_and_line_and_writes_nothing(harness: LocalHarness) -> None:
    deployed(harness)
    inputs, outputs, input_prefix = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("r1", 1), row("r2", 2))
    write_input(inputs, "b.csv", row("r1", 1), row("r2", 2), "r3,abc," + ",".join(["1"] * 29))

    result = harness.cli("batch-run", "--env", "staging")

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"{input_prefix}b.csv:3: column 'mean_radius': 'abc' is not a number" in result.stderr
    assert not outputs.exists() or files_under(outputs) == []
    status = harness.cli("status")
    assert "Failed" in status.stdout
    assert f"{input_prefix}b.csv:3" in " ".join(status.stdout.split())
    state = harness.backend.describe_endpoint("staging")
    assert state is not None and state.status == "Failed" and "b.csv:3" in state.failure_reason

    write_input(inputs, "b.csv", row("r1", 1))  # fixed: the next run succeeds, status follows
    assert harness.cli("batch-run", "--env", "staging").exit_code == 0
    assert harness.backend.describe_endpoint("staging").status == "InService"


def test_a_failure_in_the_middle_leaves_no_partial_outputs(harness: LocalHarness) -> None:
    deployed(harness)
    inputs, outputs, input_prefix = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("r1", 1))  # scored first, then b.csv fails
    write_input(inputs, "b.csv", row("r1", 1), row("r2", 999))

    result = harness.cli("batch-run", "--env", "staging")

    assert result.exit_code == 1
    assert f"{input_prefix}b.csv:1: /invocations answered 500" in result.stderr
    assert not outputs.exists() or files_under(outputs) == []
    leftovers = [p.name for p in harness.backend.state.home.joinpath("batch").iterdir()]
    assert all(not name.startswith(".") for name in leftovers), leftovers  # work dir removed


def test_outputs_appear_together_or_not_at_all(
    harness: LocalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while the outputs are renamed into place (disk full, a signal) takes back the
    ones already placed: readers never see part of a run."""
    deployed(harness)
    inputs, outputs, _ = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("r1", 1))
    write_input(inputs, "b.csv", row("r1", 2))
    real_replace, calls = os.replace, []

    def replace(src, dst):  # the second output's rename fails; everything else goes through
        if str(dst).endswith(".csv.out"):
            calls.append(dst)
            if len(calls) == 2:
                raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    result = harness.cli("batch-run", "--env", "staging")

    assert result.exit_code == 1
    assert "outputs not published ([Errno 28] No space left on device); none were kept" in (
        result.stderr
    )
    assert len(calls) == 2 and files_under(outputs) == []  # a.csv.out was placed, then removed
    assert harness.backend.last_batch_run("staging").status == "Failed"


def test_prod_takes_only_what_staging_ran_healthily(harness: LocalHarness) -> None:
    first = deployed(harness)
    inputs, _, _ = prefixes(harness, "staging")
    write_input(inputs, "bad.csv", "only-an-id")
    assert harness.cli("batch-run", "--env", "staging").exit_code == 1  # staging's run failed

    merge_version(harness, "prod", first, pr=2)
    refused = harness.cli("deploy", "--env", "prod", "--commit", "abc1234def")
    assert refused.exit_code == 1
    assert "not serving healthy in staging" in refused.stderr and "Failed" in refused.stderr

    never = harness.seed_version()
    harness.backend.set_approval(never.group, never.version, "Approved", "approved by hand")
    merge_version(harness, "prod", never.version, pr=3)
    assert harness.cli("deploy", "--env", "prod", "--commit", "abc").exit_code == 1
    assert harness.backend.describe_endpoint("prod") is None


def test_batch_run_needs_a_deploy_and_a_batch_env_has_no_endpoint(harness: LocalHarness) -> None:
    result = harness.cli("batch-run", "--env", "staging")
    assert result.exit_code == 1
    assert "nothing deployed for staging" in result.stderr
    deployed(harness)
    with pytest.raises(CIError, match="batch deployment, there is no endpoint to invoke"):
        harness.backend.invoke("staging", b"1,2\n")


def test_smoke_test_scores_a_scratch_batch_and_restores_on_failure(harness: LocalHarness) -> None:
    good = deployed(harness)
    _, outputs, _ = prefixes(harness, "staging")
    passed = harness.cli("smoke-test", "--env", "staging")
    assert passed.exit_code == 0, passed.output
    assert "scored 20 rows into s3://" in passed.stdout and "_smoke/" in passed.stdout
    assert not outputs.exists()  # the scratch prefix is beside the output prefix, not in it
    assert harness.backend.last_batch_run("staging") is None  # a smoke run is not a batch run

    broken = harness.seed_version(serve="errors")
    merge_version(harness, "staging", broken.version, pr=2)
    assert harness.cli("deploy", "--env", "staging", "--commit", "abc").exit_code == 0
    failed = harness.cli("smoke-test", "--env", "staging", "--rollback-on-failure")

    assert failed.exit_code == 1
    line = failed.stderr.strip()
    assert "\n" not in line and "/invocations answered 500" in line
    assert line.endswith(
        f"rolled back: batch churn-model-staging-batch scores with version {good} again and its "
        "smoke test passed (revert the change to deploy/staging.json so git names what runs)"
    )
    assert harness.backend.describe_endpoint("staging").model_version == good


def test_destroy_removes_the_batch_job_and_keeps_its_outputs(harness: LocalHarness) -> None:
    deployed(harness)
    inputs, outputs, _ = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("r1", 1))
    assert harness.cli("batch-run", "--env", "staging").exit_code == 0

    result = harness.cli("destroy", "--env", "staging", "--yes")

    assert result.exit_code == 0, result.output
    assert "removed batch pipeline churn-model-staging-batch (scoring version 1" in result.stdout
    assert harness.backend.describe_endpoint("staging") is None
    assert files_under(outputs) == ["a.csv.out"]  # S3 data stays, as buckets do on AWS
    again = harness.cli("destroy", "--env", "staging", "--yes")
    assert again.exit_code == 0 and "nothing to destroy" in again.stdout


def test_sigterm_during_a_batch_run_stops_its_transform_and_records_the_run(
    harness: LocalHarness,
) -> None:
    """SIGTERM of `batch-run` (issue 29, point 7): before, the transform ran on after the CLI
    died, its scratch folder stayed under .mlops/batch/ and the run was recorded nowhere."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from process_guard import patient

    deployed(harness)
    serve = harness.project.root / "src" / harness.project.package / "serve.py"
    slow = "        if any(float(row[0]) == 777 for row in rows):\n            time.sleep(300)\n"
    text = serve.read_text().replace(
        "        if self.model.meta.get", slow + "        if self.model.meta.get", 1
    )
    serve.write_text(text.replace("import json\n", "import json\nimport time\n", 1))
    inputs, outputs, _ = prefixes(harness, "staging")
    write_input(inputs, "a.csv", row("c-1", 777))
    root = Path(__file__).resolve().parents[2]
    cli = subprocess.Popen(
        [sys.executable, "-m", "ci_scripts", "--backend", "local", "batch-run", "--env", "staging"],
        cwd=harness.project.root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        transform = None
        deadline = time.monotonic() + patient(60)
        while transform is None and time.monotonic() < deadline:
            for entry in Path("/proc").glob("[0-9]*"):
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if (
                    b"transform.py" in cmdline
                    and str(harness.project.root).encode() in (entry / "environ").read_bytes()
                ):
                    transform = int(entry.name)
            time.sleep(0.1)
        assert transform is not None, "the transform never started"
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=patient(30))
    finally:
        cli.kill()

    assert cli.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: batch churn-model-staging-batch: run staging-"), line
    assert "interrupted by SIGTERM; recorded as Stopped, no outputs published" in line
    deadline = time.monotonic() + 5
    while Path(f"/proc/{transform}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{transform}/stat").read_text(errors="replace")
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{transform}").exists() or " Z " in Path(
        f"/proc/{transform}/stat"
    ).read_text(errors="replace")
    batch_dir = harness.backend.state.home / "batch"
    assert [p.name for p in batch_dir.iterdir() if p.name.startswith(".")] == []  # no scratch
    last = harness.backend.last_batch_run("staging")
    assert last is not None and last.status == "Stopped"
    assert files_under(outputs) == []
