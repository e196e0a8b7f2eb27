"""`make demo`, the project's main job, run end to end as a newcomer runs it.

The demo renders a fresh repo and drives the real CLI through the whole loop on the local
backend; these tests check what it leaves behind (git history of four merged proposals: the
loop, then, as ``make demo-shadow`` goes on, a refit version shadow-tested before prod switches;
the default ``make demo`` is the same run without that round; manifests,
the registry, nothing left running) and that a failing stage stops it with a non-zero exit that
names the stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from process_guard import patient, run_and_clean

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
def happy(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("demo")
    # Short local canary and shadow windows (the demo's own default is 2 s): the checks here
    # are about what the loop leaves behind, not how long a canary bakes.
    # The shadow scenario is the default loop and then a second release: one run checks both.
    proc = run_demo(
        work,
        "--scenario",
        "shadow",
        env={"CI_SCRIPTS_LOCAL_CANARY_SECONDS": "0.5", "CI_SCRIPTS_LOCAL_SHADOW_SECONDS": "0.5"},
    )
    return proc, work / "churn-model"


def test_the_happy_demo(happy) -> None:
    """One test for the one run (pytest-xdist would run a module fixture once per worker that
    gets one of its tests: a whole demo each time)."""
    check_demo_runs_the_whole_loop(happy)
    check_demo_leaves_git_history_and_manifests_of_a_gitops_flow(happy)
    check_demo_stops_every_process_it_started(happy)


def check_demo_runs_the_whole_loop(happy) -> None:
    proc, _ = happy
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (
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
        "register refit v2",
        "deploy staging v2",
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
    # Everything is stopped now: the box says how to keep it running instead of dead URLs.
    box = proc.stdout[proc.stdout.index("what next") :]
    assert "make demo KEEP=1" in box and "cd " in box and "127.0.0.1" not in box


def check_demo_leaves_git_history_and_manifests_of_a_gitops_flow(happy) -> None:
    _, repo = happy
    merges = subprocess.run(
        ["git", "log", "--merges", "--format=%s"], cwd=repo, capture_output=True, text=True
    ).stdout.splitlines()
    assert merges == [
        "Merge pull request #4 from propose/prod-v2",
        "Merge pull request #3 from propose/staging-v2",
        "Merge pull request #2 from propose/prod-v1",
        "Merge pull request #1 from propose/staging-v1",
    ]
    for env in ("staging", "prod"):
        manifest = json.loads((repo / "deploy" / f"{env}.json").read_text())
        assert manifest["model_version"] == 2, env
    assert manifest["deployment"]["shadow"]["enabled"] is True  # prod's, as the demo set it
    status = subprocess.run(
        [sys.executable, "-m", "ci_scripts", "--backend", "local", "status", "--format", "json"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    # Everything was stopped at the end, so what runs no longer matches git: status says drift.
    assert status.returncode == 3, status.stderr


def check_demo_stops_every_process_it_started(happy) -> None:
    _, repo = happy
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


def test_every_install_of_the_demo_compiles_bytecode() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set (containers, CI images), a venv installed without
    compiled bytecode recompiles scikit-learn, pandas and scipy on every run: the demo's own
    install took twice as long as make test's (issue 29, point 11)."""
    plan = subprocess.run(
        ["make", "-n", "-B", ".venv/.installed-demo", ".venv/.installed"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [
        line
        for line in plan.splitlines()
        if ".venv/bin/uv " in line and (" install " in line or " sync" in line)
    ]
    assert len(installs) >= 2, plan
    for line in installs:
        assert "--compile-bytecode" in line, line


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
