"""`make bench`: the performance figures of the local loop, printed as one JSON document.

Figures, and the budgets they are read against (budgets are reported, never asserted in tests):
- ``demo_seconds``: wall time of the whole ``make demo`` loop with the venv present (budget 20 s).
- ``pipeline_overhead_ratio``: wall time of ``run-pipeline --wait`` / the time during which at
  least one of its steps was computing (budget 1.5); both the cold figure (first run of a fresh
  repo with an empty definition cache, so the sagemaker SDK is imported) and the warm one (second
  run, definition cached, steps re-run after a code change) are given, and beside them the ratio
  to the plain sum of step times, which concurrent steps make look better than it is.
- ``help_seconds`` vs ``import_boto3_seconds``: median start-up of ``python -m ci_scripts --help``
  and of ``python -c "import boto3"`` (budget: help no slower).
- ``cli_start_cpu_seconds``: median CPU (user + sys) of one ``python -m ci_scripts --help``,
  ``--version`` and ``status`` (table, local backend, nothing deployed) in a rendered repo, and
  of the local router's imports (``python -m ci_scripts.backends.local.router --help``): every
  command and endpoint start pays it again (budget 0.35 s for help and status). CPU, not wall
  time, because the test suite runs hundreds of these on a shared pair of cores.
- ``aws_noop``: on a moto server, a no-op ``deploy`` and ``run-pipeline`` with unchanged code
  against ``status`` in the same run, as ratios (budget 2.5 each; scripts/bench_aws.py).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent.parent


def _median_seconds(cmd: list[str], runs: int = 7, cwd: Path | None = None) -> float:
    """Median wall time of ``cmd`` over ``runs`` runs (after one warm-up for the page cache)."""
    subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
        samples.append(time.perf_counter() - t0)
    return round(statistics.median(samples), 3)


def _median_cpu_seconds(
    cmd: list[str], runs: int = 7, cwd: Path | None = None, env: dict[str, str] | None = None
) -> float:
    """Median CPU seconds (user + sys) of ``cmd`` over ``runs`` runs, after one warm-up (which
    also writes the bytecode caches a repeated start reads)."""
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        )
    return round(statistics.median(samples), 3)


def _cli_start_cpu(repo: Path) -> dict[str, float]:
    """CPU of starting the CLI and the local router in ``repo`` (see the module docstring)."""
    env = {**os.environ, "CI_SCRIPTS_BACKEND": "local"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure the repeated start, bytecode cached
    cli = [sys.executable, "-m", "ci_scripts"]
    router = [sys.executable, "-m", "ci_scripts.backends.local.router", "--help"]
    return {
        "help": _median_cpu_seconds([*cli, "--help"], cwd=repo, env=env),
        "version": _median_cpu_seconds([*cli, "--version"], cwd=repo, env=env),
        "status": _median_cpu_seconds([*cli, "status"], cwd=repo, env=env),
        "router_imports": _median_cpu_seconds(router, cwd=repo, env=env),
    }


def _pipeline_run(repo: Path, cache_dir: Path) -> dict[str, float]:
    """Run the pipeline once; return wall seconds, summed step seconds and their ratio.

    ``cache_dir`` is the per-user definition cache: a new empty one makes the run truly cold
    (the sagemaker SDK is imported and the definition built).
    """
    env = {**os.environ, "CI_SCRIPTS_BACKEND": "local", "CI_SCRIPTS_CACHE_DIR": str(cache_dir)}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ci_scripts", "run-pipeline", "--wait"],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    run_files = sorted(
        (repo / ".mlops" / "runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime
    )
    record = json.loads(run_files[-1].read_text())
    steps = record.get("steps", [])
    compute = sum(float(step.get("seconds", 0.0)) for step in steps)
    busy = _busy_seconds(
        [(float(s["started_offset"]), float(s["seconds"])) for s in steps if "started_offset" in s]
    )
    return {
        "wall_seconds": round(wall, 2),
        "step_compute_seconds": round(compute, 2),
        "steps_busy_seconds": round(busy, 2),
        "ratio": round(wall / busy, 2) if busy else float("inf"),
        "ratio_to_summed_compute": round(wall / compute, 2) if compute else float("inf"),
    }


def _busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Time during which at least one step ran (independent steps run concurrently, so the plain
    sum of step times would flatter the orchestration); the rest of the wall time is overhead."""
    busy, end = 0.0, float("-inf")
    for start, seconds in sorted(intervals):
        stop = start + seconds
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    return busy


def main() -> int:
    """Print the figures, and only them, as JSON on stdout: whatever the measured commands and
    the render's post-generation hook print (its next-steps lines) goes to stderr."""
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # children inherit it: the hook's subprocess writes to fd 1 directly
    try:
        figures = measure()
    finally:
        sys.stdout.flush()
    json_out.write(json.dumps(figures, indent=2) + "\n")
    json_out.close()
    return 0


def measure() -> dict[str, object]:
    """Every figure ``make bench`` reports, with the budgets they are held to."""
    from cookiecutter.main import cookiecutter

    figures: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        }
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "scripts.demo", "--work-dir", str(Path(tmp) / "demo")],
            cwd=TEMPLATE_DIR,
            capture_output=True,
            check=True,
        )
        figures["demo_seconds"] = round(time.perf_counter() - t0, 2)

        repo = Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(Path(tmp) / "r")))
        figures["cli_start_cpu_seconds"] = _cli_start_cpu(repo)
        cache_dir = Path(tmp) / "definition-cache"
        cold = _pipeline_run(repo, cache_dir)
        # Touch the model code so the steps really run again, with the definition already cached.
        train = next((repo / "src").glob("*/schema.py"))
        train.write_text(train.read_text() + "\n# bench: force a re-run\n")
        warm = _pipeline_run(repo, cache_dir)
        figures["pipeline_overhead_ratio"] = {"cold": cold, "warm": warm}

        figures["help_seconds"] = _median_seconds(
            [sys.executable, "-m", "ci_scripts", "--help"], cwd=repo
        )
        from scripts.bench_aws import aws_noop_figures

        figures["aws_noop"] = aws_noop_figures(Path(tmp))
    figures["import_boto3_seconds"] = _median_seconds([sys.executable, "-c", "import boto3"])
    figures["budgets"] = {
        "demo_seconds": 20,
        "pipeline_overhead_ratio": 1.5,
        "help_seconds": "<= import_boto3_seconds",
        "cli_start_cpu_seconds": "help and status <= 0.35",
        "aws_noop": "noop_deploy_ratio and unchanged_run_pipeline_ratio <= 2.5",
    }
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
