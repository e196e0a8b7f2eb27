"""`make demo`, the project's main job, run end to end as a newcomer runs it.

The demo renders a fresh repo and drives the real CLI through the whole loop on the local
backend; these tests check what it leaves behind (git history of two merged proposals, manifests,
the registry, nothing left running), what ``make demo-shadow`` adds (a refit version through
staging, shadow-tested before prod switches: four merged proposals), and that a failing stage
stops it with a non-zero exit that names the stage.

The loop runs once per test session (:func:`finished_loop`, shared by the xdist workers): every
continuing scenario (shadow here, rollback, drift and quality in their modules) goes on from a
copy of the repo it left, as ``scripts.demo --from-loop`` does, instead of running it again.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from process_guard import patient, run_and_clean, stop_local_processes
from run_scope import session_dir

TEMPLATE_DIR = Path(__file__).resolve().parents[1]


# One generous ceiling for a whole demo (a quiet machine runs one in well under a minute),
# stretched by the machine's load (process_guard.patient): slowness is no failure, a hang is.
DEMO_CEILING_SECONDS = 600


def run_demo(
    work_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The demo as `make demo` runs it; on a timeout (or any interruption) its processes, the
    endpoints' included, are stopped before the test fails."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    ceiling = patient(DEMO_CEILING_SECONDS)
    command = [sys.executable, "-m", "scripts.demo", "--work-dir", str(work_dir), *args]
    try:
        return run_and_clean(command, work_dir, ceiling, cwd=TEMPLATE_DIR, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the demo ran past {ceiling:.0f} s; its processes were stopped")


# A short local canary window (the demo's own default is 2 s) for the loop and the shadow round:
# the checks are about what they leave behind, not how long a canary bakes (a window always runs
# one whole round of probes). The shadow window
# keeps the backend's default (1 s, going on until min_requests were mirrored): at 0.5 s a loaded
# machine mirrored too few requests for the shadow test to pass.
SHORT_WINDOWS = {"CI_SCRIPTS_LOCAL_CANARY_SECONDS": "0.1"}


@pytest.fixture(scope="session")
def finished_loop(tmp_path_factory) -> Iterator[tuple[subprocess.CompletedProcess[str], Path]]:
    """``make demo`` (the default loop) run once per test session, whichever xdist worker asks
    first; the others wait for it and read its result: (the run, the repo it left, every
    process stopped). Scenario tests continue from a copy of that repo (:func:`continue_demo`).

    A run that timed out is recorded as such, so a waiting worker fails too instead of running
    the loop again. Its folder is no worker's basetemp, so the session's end stops what may
    run there itself (nothing, unless the demo's own cleanup failed)."""
    shared = session_dir(tmp_path_factory)
    work, result = shared / "demo-loop", shared / "demo-loop.json"
    with (shared / "demo-loop.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not result.exists():
            try:
                proc = run_demo(work, env=SHORT_WINDOWS)
                outcome = {"returncode": proc.returncode, "stdout": proc.stdout}
                outcome["stderr"] = proc.stderr
            except pytest.fail.Exception as exc:
                outcome = {"failed": str(exc)}
            result.write_text(json.dumps(outcome))
        outcome = json.loads(result.read_text())
    try:
        if "failed" in outcome:
            pytest.fail(f"the shared demo loop: {outcome['failed']}")
        command = [sys.executable, "-m", "scripts.demo", "--work-dir", str(work)]
        proc = subprocess.CompletedProcess(
            command, outcome["returncode"], outcome["stdout"], outcome["stderr"]
        )
        yield proc, work / "churn-model"
    finally:
        stop_local_processes(work)


def continue_demo(
    finished_loop: tuple[subprocess.CompletedProcess[str], Path],
    work_dir: Path,
    scenario: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``make demo-<scenario>`` from the shared loop's end: ``scripts.demo --from-loop``."""
    loop, repo = finished_loop
    assert loop.returncode == 0, loop.stdout[-3000:] + loop.stderr[-3000:]
    return run_demo(work_dir, "--scenario", scenario, "--from-loop", str(repo), env=env)


def live_pids(repo: Path) -> list[int]:
    """Processes still running from the rendered repo (their cwd or command line is in it).

    Read from /proc rather than from the backend's own pid records, so a process the backend
    forgot to record is caught too.
    """
    root = str(repo.resolve())
    alive = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cwd = os.readlink(proc_dir / "cwd")
            cmdline = (
                (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
        if int(proc_dir.name) != os.getpid() and (cwd.startswith(root) or root in cmdline):
            alive.append(int(proc_dir.name))
    return alive


@pytest.fixture(scope="module")
def shadow(finished_loop, tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``make demo-shadow``'s own round, from the shared loop's end."""
    work = tmp_path_factory.mktemp("demo-shadow")
    return continue_demo(finished_loop, work, "shadow", SHORT_WINDOWS), work / "churn-model"


def test_the_happy_demo(finished_loop) -> None:
    """`make demo`: the one run of the loop this session makes (every scenario continues it)."""
    check_demo_runs_the_whole_loop(finished_loop)
    check_demo_leaves_git_history_and_manifests_of_a_gitops_flow(finished_loop)
    check_demo_stops_every_process_it_started(finished_loop)


def test_the_shadow_demo(shadow) -> None:
    """One test for the one run (pytest-xdist would run a module fixture once per worker that
    gets one of its tests: a whole scenario each time)."""
    check_shadow_round_runs(shadow)
    check_shadow_round_leaves_git_history_and_manifests(shadow)
    check_demo_stops_every_process_it_started(shadow)


def check_demo_runs_the_whole_loop(loop) -> None:
    proc, _ = loop
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (
        "render template",
        "run pipeline",
        "propose staging",
        "merge staging PR",
        "deploy staging",
        "smoke-test staging",
        "propose prod",
        "merge prod PR",
        "deploy prod",
        "smoke-test prod",
        "status",
    ):
        assert f"✓ {stage}" in proc.stdout, stage
    assert "register refit" not in proc.stdout  # the default run is the first release alone
    # The prod PR body says what prod's shadow test (turned on by the demo) will do.
    assert "**Shadow test** (`deployment.shadow`): before prod switches" in proc.stdout
    assert "pull request body: staging" in proc.stdout
    assert "The loop ran end to end" in proc.stdout
    assert "its git log shows the 2 merged proposals" in proc.stdout
    check_what_next_box_has_no_dead_urls(proc)


def check_what_next_box_has_no_dead_urls(proc: subprocess.CompletedProcess[str]) -> None:
    """Everything is stopped now: the box says how to keep it running instead of dead URLs."""
    box = proc.stdout[proc.stdout.index("what next") :]
    assert "make demo KEEP=1" in box and "cd " in box and "127.0.0.1" not in box


def check_demo_leaves_git_history_and_manifests_of_a_gitops_flow(loop) -> None:
    _, repo = loop
    assert merges(repo) == [
        "Merge pull request #2 from propose/prod-v1",
        "Merge pull request #1 from propose/staging-v1",
    ]
    check_manifests_name(repo, 1)
    check_status_says_drift(repo)


def merges(repo: Path) -> list[str]:
    return subprocess.run(
        ["git", "log", "--merges", "--format=%s"], cwd=repo, capture_output=True, text=True
    ).stdout.splitlines()


def check_manifests_name(repo: Path, version: int) -> None:
    for env in ("staging", "prod"):
        manifest = json.loads((repo / "deploy" / f"{env}.json").read_text())
        assert manifest["model_version"] == version, env
    assert manifest["deployment"]["shadow"]["enabled"] is True  # prod's, as the demo set it


def check_status_says_drift(repo: Path) -> None:
    """Everything was stopped at the end, so what runs no longer matches git: status says
    drift."""
    status = subprocess.run(
        [sys.executable, "-m", "ci_scripts", "--backend", "local", "status", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 3, status.stderr


def check_shadow_round_runs(shadow) -> None:
    proc, _ = shadow
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (
        "copy finished loop",
        "redeploy staging",
        "redeploy prod",
        "register refit v2",
        "propose staging v2",
        "merge staging v2 PR",
        "deploy staging v2",
        "smoke-test staging v2",
        "propose prod v2",
        "merge prod v2 PR",
        "deploy prod v2 (shadow)",
        "status after shadow",
    ):
        assert f"✓ {stage}" in proc.stdout, stage
    # prod's shadow test ran on v2 before the switch: a real report of the router's mirror.
    assert "shadow test report" in proc.stdout
    assert "Shadow test (prod): version 2 against live version 1: passed" in proc.stdout
    assert "smoke-test rows the deploy sent" in proc.stdout
    assert "prod last shadow test: passed" in proc.stdout
    assert "**Shadow test** (`deployment.shadow`): before prod switches" in proc.stdout
    assert "pull request body: staging" in proc.stdout
    assert "The loop ran end to end" in proc.stdout
    assert "its git log shows the 4 merged proposals" in proc.stdout
    check_what_next_box_has_no_dead_urls(proc)


def check_shadow_round_leaves_git_history_and_manifests(shadow) -> None:
    _, repo = shadow
    assert merges(repo) == [
        "Merge pull request #4 from propose/prod-v2",
        "Merge pull request #3 from propose/staging-v2",
        "Merge pull request #2 from propose/prod-v1",
        "Merge pull request #1 from propose/staging-v1",
    ]
    check_manifests_name(repo, 2)
    check_status_says_drift(repo)


def check_demo_stops_every_process_it_started(run) -> None:
    _, repo = run
    assert (repo / ".mlops").is_dir()  # endpoints did run from here
    assert live_pids(repo) == []


def test_a_failing_stage_stops_the_demo_and_is_named(tmp_path: Path) -> None:
    proc = run_demo(tmp_path, "--metric-threshold", "1.5")
    assert proc.returncode == 1
    assert "demo failed: stage 'run pipeline' failed" in proc.stdout
    assert "is below MetricThreshold 1.5" in proc.stdout
    assert "✓ deploy staging" not in proc.stdout
    assert live_pids(tmp_path / "churn-model") == []


def test_what_next_with_keep_running_names_live_urls_a_curl_and_make_down(tmp_path: Path) -> None:
    from rich.console import Console

    from scripts.demo import Demo, what_next

    demo = Demo(tmp_path)
    demo.repo = tmp_path / "churn-model"
    endpoints = demo.repo / ".mlops" / "endpoints"
    endpoints.mkdir(parents=True)
    (endpoints / "prod.router.json").write_text('{"url": "http://127.0.0.1:4321"}')
    console = Console(record=True, width=300)

    console.print(what_next(demo, keep_running=True))

    text = console.export_text()
    assert f"cd {demo.repo}" in text
    assert "# prod: http://127.0.0.1:4321" in text
    assert "curl -s -H 'Content-Type: text/csv' --data-binary" in text
    assert "http://127.0.0.1:4321/invocations" in text
    assert "-m ci_scripts status" in text and "make down" in text


def test_what_next_after_a_batch_demo_names_its_outputs_not_endpoints(tmp_path: Path) -> None:
    from rich.console import Console

    from scripts.demo import Demo, what_next

    demo = Demo(tmp_path, scenario="batch")
    demo.repo = tmp_path / "churn-model"
    console = Console(record=True, width=300)

    console.print(what_next(demo, keep_running=False))

    text = console.export_text()
    assert "batch/prod/output/" in text and "batch-run --env prod" in text
    assert "KEEP=1" not in text and "endpoint" not in text


def test_make_demo_is_the_first_release_and_demo_shadow_adds_the_second() -> None:
    """The newcomer's first run stays the one release; the shadow round is its own target."""
    from scripts.demo import Demo

    def plan(target: str) -> str:
        out = subprocess.run(
            ["make", "-n", target], cwd=TEMPLATE_DIR, capture_output=True, text=True, check=True
        ).stdout
        return next(line for line in out.splitlines() if "-m scripts.demo" in line)

    assert "--scenario" not in plan("demo")
    assert "--scenario shadow" in plan("demo-shadow")
    first = [stage.name for stage in Demo(Path("unused")).stages()]
    both = [stage.name for stage in Demo(Path("unused"), scenario="shadow").stages()]
    assert both[: len(first)] == first
    assert "deploy prod v2 (shadow)" in both and not any("v2" in name for name in first)


@pytest.mark.parametrize(
    "args",
    [
        ["--scenario", "batch"],  # another render: nothing to continue
        [],  # the default run is the loop itself
        ["--scenario", "drift", "--metric-threshold", "1.5"],  # no pipeline run to gate
    ],
)
def test_from_loop_continues_only_a_scenario_that_goes_on_after_the_loop(
    tmp_path: Path, args: list[str]
) -> None:
    from scripts.demo import main

    with pytest.raises(SystemExit) as refused:
        main(["--work-dir", str(tmp_path / "work"), "--from-loop", str(tmp_path), *args])

    assert refused.value.code == 2
    assert not (tmp_path / "work").exists()


def test_from_loop_refuses_a_loop_inside_the_work_dir_it_would_empty(tmp_path: Path) -> None:
    """`--from-loop .demo/churn-model` with the default work dir (.demo) would delete the very
    repo it continues."""
    from scripts.demo import Demo, StageFailed

    repo = tmp_path / "churn-model"
    (repo / ".mlops").mkdir(parents=True)
    (repo / ".git").mkdir()
    demo = Demo(tmp_path, scenario="drift", from_loop=repo)

    with pytest.raises(StageFailed, match="which this run starts afresh"):
        demo.copy_finished_loop()
    assert (repo / ".mlops").is_dir()


@pytest.mark.parametrize(("keep", "expected"), [("KEEP=1", True), ("KEEP=", False)])
def test_make_demo_keep_passes_keep_running(keep: str, expected: bool) -> None:
    plan = subprocess.run(
        ["make", "-n", "demo", keep], cwd=TEMPLATE_DIR, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in plan.splitlines() if "-m scripts.demo" in line)
    assert ("--keep-running" in line) is expected


def test_shipped_definition_is_what_the_sdk_builds_from_a_default_render(bake_once) -> None:
    """The first `make demo` runs scripts/demo_definition.json instead of installing the SDK:
    it must be exactly what the SDK builds from this template's default render."""
    from ci_scripts.definition_inputs import code_key
    from scripts.demo import SHIPPED_DEFINITION, build_shipped_definition

    shipped = json.loads(SHIPPED_DEFINITION.read_text())
    repo = bake_once()
    stale = "scripts/demo_definition.json is stale: run `make demo-definition`"

    assert shipped["code_key"] == code_key(repo), stale
    assert build_shipped_definition(repo)["definition"] == shipped["definition"], stale


def test_demo_without_the_sdk_runs_the_shipped_definition(
    bake_once, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import scripts.demo as demo_module
    from ci_scripts.backends.local.definition import PLACEHOLDER_TAG, load_definition
    from ci_scripts.backends.local.state import LocalState
    from ci_scripts.project import ProjectConfig

    repo = tmp_path / "churn-model"
    shutil.copytree(bake_once(), repo, symlinks=True)
    monkeypatch.setenv("CI_SCRIPTS_CACHE_DIR", str(tmp_path / "user-cache"))  # no shared hit
    monkeypatch.setattr(demo_module, "sdk_installed", lambda: False)
    demo = demo_module.Demo(tmp_path)
    demo.repo = repo

    assert "pipeline definition as sagemaker" in demo.seed_definition()
    definition, cached = load_definition(ProjectConfig.load(repo), LocalState(repo))
    shipped = json.loads(demo_module.SHIPPED_DEFINITION.read_text())["definition"]
    assert cached
    assert PLACEHOLDER_TAG in json.dumps(shipped)
    assert PLACEHOLDER_TAG not in json.dumps(definition)  # given the render's image tag
    assert [s["Name"] for s in definition["Steps"]] == [s["Name"] for s in shipped["Steps"]]

    (repo / "pipelines" / "pipeline.py").write_text("# changed\n")
    with pytest.raises(demo_module.StageFailed, match="run `make demo-definition`"):
        demo.seed_definition()


def test_make_keeps_a_bytecode_cache_in_the_venv_where_python_is_told_not_to() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set (containers, CI images), a venv without compiled
    bytecode recompiled scikit-learn, pandas and scipy on every demo run: the demo's own install
    took twice as long as make test's (issue 29, point 11). Every make command runs Python with a
    cache in .venv/pycache instead, filled as modules are first imported (the Makefile says why
    not uv's --compile-bytecode): a module imported under make is in it afterwards."""
    probe = (
        "import importlib.util, sys, ci_scripts.manifest as m; "
        "print(sys.pycache_prefix); print(importlib.util.cache_from_source(m.__file__))"
    )
    rule = f"probe-bytecode: ; @$(BIN)/python -c '{probe}'"
    done = subprocess.run(
        ["make", "-s", "--eval", rule, "probe-bytecode"],
        cwd=TEMPLATE_DIR,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    prefix, cached = (Path(line) for line in done.stdout.split())
    assert prefix == TEMPLATE_DIR / ".venv" / "pycache", done.stdout
    assert cached.is_relative_to(prefix) and cached.is_file(), cached


def test_ctrl_c_of_the_demo_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C during `make demo` printed a KeyboardInterrupt traceback (issue 29, point 6);
    cleanup itself is run()'s finally (tested by the demo runs above)."""
    import scripts.demo as demo_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_module, "run", interrupted)

    assert demo_module.main(["--work-dir", str(tmp_path)]) == 130
    out = capsys.readouterr().out
    assert "demo interrupted: every process it started was stopped" in " ".join(out.split())


def test_what_next_is_not_wrapped_when_output_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped or logged, rich assumes 80 columns: the box wrapped and split the curl command."""
    import io

    from rich.console import Console

    import scripts.demo as demo_module

    out = io.StringIO()
    monkeypatch.setattr(demo_module, "console", Console(file=out, width=80, highlight=False))
    demo = demo_module.Demo(tmp_path)
    demo.repo = tmp_path / "churn-model"
    endpoints = demo.repo / ".mlops" / "endpoints"
    endpoints.mkdir(parents=True)
    (endpoints / "prod.router.json").write_text('{"url": "http://127.0.0.1:4321"}')

    demo_module.print_what_next(demo, keep_running=True)

    curl = next(line for line in out.getvalue().splitlines() if "curl -s" in line)
    assert "http://127.0.0.1:4321/invocations" in curl
