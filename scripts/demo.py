"""`make demo`: render a model repo and run the whole GitOps loop on this machine.

Every stage is the real CLI a model team would run (``python -m ci_scripts ...``) in a freshly
rendered repo, on the local backend: no AWS account, no Docker engine, only 127.0.0.1. Pull
requests are git branches merged with ``--no-ff`` in the rendered repo, exactly the commits the
GitHub flow would produce. The run ends with every local process stopped, whatever happened,
unless ``--keep-running`` (``make demo KEEP=1``; ``make down`` stops them later); a "what next" box
says where the repo is and which commands work from there.

Every endpoint render's deploy/prod.json turns prod's shadow test on (``deployment.shadow``); a
first release has no live traffic to shadow, so ``--scenario shadow`` (``make demo-shadow``)
continues after the loop with a second release: the serving version refit on more rows is
registered as version 2, goes through staging, and its prod deploy first runs it as a shadow of
prod (the router mirrors each request to its server for ``$CI_SCRIPTS_LOCAL_SHADOW_SECONDS``, the
deploy sending the smoke-test rows as traffic), prints the report, and switches; status shows the
last shadow result. The default ``make demo`` stays the first release alone: the fastest first
run for a newcomer.

``--scenario rollback`` (``make demo-rollback``) continues after the loop with a deliberately
broken version (its artifact holds an unfitted estimator: /ping passes, every /invocations answers
500). It is proposed, merged and deployed to staging like any other; the rollout (all at once
behind the alarms: staging has one instance) catches the 5xx answers, traffic goes back to the
good version, deploy exits non-zero naming the reason, and status shows staging still serving the
good version (and the drift git now has).

``--scenario quality`` (``make demo-quality``) continues after the loop with unshifted test-split
rows sent to prod, each with an inference id; their true labels are uploaded with
``ground-truth`` (a share of them flipped: the world changed what the features mean, not what
they look like). ``monitor --env prod`` finds no drift, ``monitor --env prod --quality`` exits 3
naming the metrics that dropped.

``--from-loop REPO`` starts a continuing scenario (shadow, rollback, drift, quality) from the repo
a finished default loop left (``make demo``: every process stopped) instead of running the loop
again: the repo, its git history and its ``.mlops/`` state are copied into the work dir, the
environments the scenario works on are deployed again from the manifests git holds (the
endpoints a loop stops are gone: each deploy brings back what its manifest names, as after
``make down``; rollback needs staging alone, the others staging and prod), then only the
scenario's stages run. The test suite runs the loop once this way for every scenario.

``--scenario batch`` (``make demo-batch``) is the loop for a repo rendered with
``deployment=batch``: no endpoints; staging and prod each run a batch job. Deploy records the
version each scores with, the smoke test scores a scratch batch, and since there is no scheduler
locally, ``batch-run`` starts the run EventBridge Scheduler would (on the rendered repo's
data/batch/sample.csv, put in the input prefix); prod takes only what staging ran healthily.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ci_scripts.interrupts import termination_interrupts

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
# The prod manifest's shadow test asks for this many requests: what the smoke-test rows the deploy
# sends reach in the local window (a laptop has no other traffic), enough to judge agreement.
SHADOW_MIN_REQUESTS = 50

# Scenario "drift": these features of the test split are scaled before prod sees them, and the
# split is sent DRIFT_PASSES times, one row per request (prod captures a sample of requests).
DRIFT_SCALES = {"mean_radius": 1.5, "mean_texture": 1.4, "mean_area": 1.8}
DRIFT_PASSES = 5
# Scenario "quality": the test split goes to prod QUALITY_PASSES times unchanged, and this share
# of the labels uploaded afterwards is flipped (a quality drop data drift cannot see).
QUALITY_PASSES = 5
QUALITY_FLIPPED = 0.3
DEFAULT_WORK_DIR = TEMPLATE_DIR / ".demo"
# The scenarios that go on after the default loop, so can start from a finished one (--from-loop).
CONTINUING_SCENARIOS = ("shadow", "rollback", "drift", "quality")
# The environments a continuing scenario works on, brought back from git when it starts from a
# finished loop (staging and prod unless named here: prod's deploy needs staging serving first).
SCENARIO_ENVS = {"rollback": ("staging",)}
# The pipeline definition the sagemaker SDK builds from the default render, so a first `make demo`
# needs no SDK (about nine tenths of what the demo would install). `make demo-definition` writes it;
# tests/test_demo.py checks that it is exactly what the installed SDK builds from a fresh render.
SHIPPED_DEFINITION = TEMPLATE_DIR / "scripts" / "demo_definition.json"
SDK_DISTRIBUTIONS = ("sagemaker", "sagemaker-core", "sagemaker-mlops")
console = Console(highlight=False)
# Output lines that name a file: shown whole, never folded (show_output).
PATH_LINES = ("html report: ",)


class StageFailed(Exception):
    """A stage of the loop failed; the message is the one line to show."""


@dataclass
class Stage:
    """One step of the loop as the user sees it."""

    name: str
    run: Callable[[], str]
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Demo:
    """The rendered repo and the CLI calls made in it."""

    work_dir: Path
    scenario: str = "happy"
    metric_threshold: float | None = None
    # A finished default loop's repo to continue from (--from-loop), instead of rendering one.
    from_loop: Path | None = None
    repo: Path = field(init=False)
    timings: dict[str, float] = field(default_factory=dict)

    # -- plumbing ---------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Child environment: local backend, a git identity, no colour codes in captured output."""
        env = dict(os.environ)
        env.update(
            CI_SCRIPTS_BACKEND="local",
            GIT_AUTHOR_NAME="sagemaker-gitops demo",
            GIT_AUTHOR_EMAIL="demo@localhost",
            GIT_COMMITTER_NAME="sagemaker-gitops demo",
            GIT_COMMITTER_EMAIL="demo@localhost",
            NO_COLOR="1",
            COLUMNS=str(max(console.width, 100)),
        )
        env.setdefault("CI_SCRIPTS_LOCAL_CANARY_SECONDS", "2")  # a short local canary window
        env.pop("GITHUB_OUTPUT", None)
        return env

    def cli(self, *args: str, ok_codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        """Run ``python -m ci_scripts ARGS`` in the rendered repo; a bad exit is a StageFailed."""
        proc = subprocess.run(
            [sys.executable, "-m", "ci_scripts", *args],
            cwd=self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode not in ok_codes:
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise StageFailed(f"`ci_scripts {' '.join(args)}` exited {proc.returncode}: {last}")
        return proc

    def git(self, *args: str) -> str:
        """Run git in the rendered repo (the local stand-in for GitHub's pull requests)."""
        proc = subprocess.run(
            ["git", *args],
            cwd=self.repo,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StageFailed(f"`git {' '.join(args)}` failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    # -- stages -----------------------------------------------------------------------------
    def render(self) -> str:
        """Fresh render with the template's defaults, through the real hooks (vendoring, git)."""
        from cookiecutter.main import cookiecutter

        self.fresh_work_dir()
        answers = {"deployment": "batch"} if self.scenario == "batch" else {}
        self.repo = Path(
            cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                output_dir=str(self.work_dir),
                extra_context=answers,
            )
        )
        if self.scenario != "batch":  # batch jobs have no traffic to shadow
            self.enable_shadow()
        return f"{self.repo} ({self.git('rev-parse', '--short', 'HEAD')}){self.seed_definition()}"

    def fresh_work_dir(self) -> None:
        """An empty work dir; a previous demo's processes (if it was killed) stopped first."""
        if self.work_dir.exists():
            # A previous demo may have left processes if it was killed: stop them first.
            for old in self.work_dir.iterdir():
                if (old / ".mlops").exists():
                    subprocess.run(
                        [sys.executable, "-m", "ci_scripts", "local", "down"],
                        cwd=old,
                        capture_output=True,
                        check=False,
                    )
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)

    def copy_finished_loop(self) -> str:
        """The repo a finished default loop left, copied with its git history and .mlops/ state
        (registry, pipeline runs, captured traffic). Its processes must all be stopped: each is
        bound to the path of the repo it serves, so a copy cannot take over running ones."""
        from ci_scripts.backends.local import processes
        from ci_scripts.backends.local.state import LocalState

        source = Path(self.from_loop or "").resolve()
        if not (source / ".mlops").is_dir() or not (source / ".git").exists():
            raise StageFailed(f"{source}: not a repo a finished demo loop left (no .mlops or .git)")
        if source.is_relative_to(self.work_dir.resolve()):
            raise StageFailed(
                f"{source} is in the work dir {self.work_dir}, which this run starts afresh: "
                "give --work-dir another folder"
            )
        if running := processes.discovered(LocalState(source)):
            raise StageFailed(
                f"{source}: {len(running)} local process(es) still run; stop them first "
                "(`ci_scripts local down` in that repo)"
            )
        self.fresh_work_dir()
        self.repo = self.work_dir / source.name
        shutil.copytree(source, self.repo, symlinks=True)
        # The local PRs are numbered on from the loop's merges, as GitHub would number them.
        self._pr_number = int(self.git("rev-list", "--merges", "--count", "HEAD"))
        return f"{self.repo} ({self.git('rev-parse', '--short', 'HEAD')}) from {source}"

    def enable_shadow(self) -> None:
        """Turn on prod's shadow test (deployment.shadow), committed as a team would: a new prod
        version then first shadows prod's traffic (locally: the router mirrors each request
        for $CI_SCRIPTS_LOCAL_SHADOW_SECONDS, driven by the smoke-test rows)."""
        path = self.repo / "deploy" / "prod.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.setdefault("deployment", {})["shadow"] = {
            "enabled": True,
            "min_requests": SHADOW_MIN_REQUESTS,
        }
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        self.git("add", "deploy/prod.json")
        self.git("commit", "-q", "-m", "prod: shadow-test new versions before they switch")

    def seed_definition(self) -> str:
        """Without the sagemaker SDK, give the rendered repo the definition the SDK builds from
        this very pipeline code (scripts/demo_definition.json), as the definition cache would."""
        if sdk_installed():
            return ""  # the CLI builds it with the SDK (and caches it per user)
        from ci_scripts.backends.local.state import LocalState, write_json_atomic
        from ci_scripts.definition_inputs import code_key, definition_key

        shipped = json.loads(SHIPPED_DEFINITION.read_text(encoding="utf-8"))
        if shipped.get("code_key") != code_key(self.repo):
            raise StageFailed(
                f"{SHIPPED_DEFINITION.relative_to(TEMPLATE_DIR)} was built from other pipeline "
                "code than this render's; run `make demo-definition` (installs the sagemaker SDK "
                "and rebuilds it)"
            )
        # Stored where the local backend caches what a build of this repo's pipeline gives.
        cache = LocalState(self.repo).dir("cache") / f"definition-{definition_key(self.repo)}.json"
        write_json_atomic(cache, shipped["definition"])
        sdk = shipped.get("sdk", {}).get("sagemaker", "?")
        return f"; pipeline definition as sagemaker {sdk} builds it ({SHIPPED_DEFINITION.name})"

    def run_pipeline(self) -> str:
        params = []
        if self.metric_threshold is not None:
            params = ["--param", f"MetricThreshold={self.metric_threshold}"]
        proc = self.cli("run-pipeline", "--wait", *params)
        return _last_line(proc.stdout)

    def propose(self, env: str) -> str:
        body = self.repo / f"pr-body-{env}.md"
        args = (
            ["propose", "--env", env]
            if env == "staging"
            else ["promote", "--from", "staging", "--to", "prod"]
        )
        proc = self.cli(*args, "--body-file", str(body))
        if not body.exists():
            raise StageFailed(f"{args[0]} wrote no pull request body ({_last_line(proc.stdout)})")
        console.print(Panel(body.read_text(), title=f"pull request body: {env}", expand=False))
        return self.open_local_pr(env)

    def open_local_pr(self, env: str) -> str:
        """Commit the manifest change on a branch, as the propose workflow pushes it."""
        manifest = f"deploy/{env}.json"
        version = json.loads((self.repo / manifest).read_text())["model_version"]
        branch = f"propose/{env}-v{version}"
        self.git("checkout", "-q", "-b", branch)
        self.git("add", manifest)
        self.git("commit", "-q", "-m", f"Propose model version {version} for {env}")
        self.git("checkout", "-q", "main")
        self._pr_number = getattr(self, "_pr_number", 0) + 1
        self._branch = branch
        return f"branch {branch} (local PR #{self._pr_number})"

    def merge(self) -> str:
        """A reviewer merges the PR: a merge commit on main, as GitHub makes it."""
        self.git(
            "merge",
            "-q",
            "--no-ff",
            self._branch,
            "-m",
            f"Merge pull request #{self._pr_number} from {self._branch}",
        )
        return f"main @ {self.git('rev-parse', '--short', 'HEAD')}"

    def deploy(self, env: str) -> str:
        proc = self.cli(
            "deploy",
            "--env",
            env,
            "--commit",
            self.git("rev-parse", "HEAD"),
            "--pr",
            str(self._pr_number),
        )
        return _last_line(proc.stdout)

    def smoke(self, env: str) -> str:
        return _last_line(self.cli("smoke-test", "--env", env).stdout)

    def status(self) -> str:
        proc = self.cli("status")
        console.print(proc.stdout.rstrip())
        return "desired state == running state"

    def stages(self) -> list[Stage]:
        """The loop, in the order the GitHub workflows run it."""
        if self.scenario == "batch":
            return self.batch_stages()
        if self.from_loop is not None:
            return [
                Stage("copy finished loop", self.copy_finished_loop),
                *(
                    Stage(f"redeploy {env}", lambda env=env: self.deploy(env))
                    for env in SCENARIO_ENVS.get(self.scenario, ("staging", "prod"))
                ),
                *self.scenario_stages(),
            ]
        return [*self.loop_stages(), *self.scenario_stages()]

    def loop_stages(self) -> list[Stage]:
        """The default loop: render, first release through staging and prod, status."""
        return [
            Stage("render template", self.render),
            Stage("run pipeline", self.run_pipeline),
            Stage("propose staging", lambda: self.propose("staging")),
            Stage("merge staging PR", self.merge),
            Stage("deploy staging", lambda: self.deploy("staging")),
            Stage("smoke-test staging", lambda: self.smoke("staging")),
            Stage("propose prod", lambda: self.propose("prod")),
            Stage("merge prod PR", self.merge),
            Stage("deploy prod", lambda: self.deploy("prod")),
            Stage("smoke-test prod", lambda: self.smoke("prod")),
            Stage("status", self.status),
        ]

    def scenario_stages(self) -> list[Stage]:
        """What a continuing scenario adds after the loop (nothing for the default run): its
        ``<scenario>_stages``, for each of :data:`CONTINUING_SCENARIOS` (the one list of them)."""
        if self.scenario not in CONTINUING_SCENARIOS:
            return []
        return getattr(self, f"{self.scenario}_stages")()

    # -- scenario "shadow": a refit version is shadow-tested on prod's traffic -------------

    def shadow_stages(self) -> list[Stage]:
        return [
            Stage("register refit v2", self.register_refit),
            Stage("propose staging v2", lambda: self.propose("staging")),
            Stage("merge staging v2 PR", self.merge),
            Stage("deploy staging v2", lambda: self.deploy("staging")),
            Stage("smoke-test staging v2", lambda: self.smoke("staging")),
            Stage("propose prod v2", lambda: self.propose("prod")),
            Stage("merge prod v2 PR", self.merge),
            Stage("deploy prod v2 (shadow)", self.deploy_shadowed),
            Stage("status after shadow", self.status_after_shadow),
        ]

    def register_refit(self) -> str:
        """Register the serving version's pipeline refit on the train and validation splits
        (a retrain on more rows, without a whole pipeline run): a genuinely different model
        whose answers the shadow test compares with the live ones. Its registered metrics are
        the serving version's (the demo does not re-evaluate it; the description says so)."""
        import csv
        import io
        import tarfile
        import tempfile

        import joblib
        import numpy as np
        import pandas as pd
        from sklearn.base import clone

        from ci_scripts.backends.local.backend import LocalBackend
        from ci_scripts.project import ProjectConfig

        backend = LocalBackend(ProjectConfig.load(self.repo))
        group = backend.project.model_package_group
        good = backend.get_version(group, self.serving_version("prod"))
        if good is None:
            raise StageFailed("the serving version is missing from the registry")
        rows: list[list[str]] = []
        header: list[str] = []
        for split in ("train", "validation"):
            found = sorted((self.repo / ".mlops" / "s3").rglob(f"Preprocess/{split}/{split}.csv"))
            if not found:
                raise StageFailed(f"no {split} split under .mlops/s3 (did the pipeline run?)")
            with found[-1].open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                rows += [row for row in reader if row]
        target = header.index("target")
        # The model's preprocessing selects its columns by name: a DataFrame, as train gives it.
        features = pd.DataFrame(
            [[float(v) for i, v in enumerate(row) if i != target] for row in rows],
            columns=[name for name in header if name != "target"],
        )
        labels = np.asarray([float(row[target]) for row in rows])
        refit_url = f"s3://{backend.project.artifact_bucket}/demo/refit/model.tar.gz"
        archive = backend.state.s3_path(refit_url)
        archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(backend.state.s3_path(good.model_data_url)) as tar:
                tar.extractall(scratch, filter="data")
            model = Path(scratch) / "model.joblib"
            estimator = joblib.load(model)
            if hasattr(estimator, "classes_"):  # a classifier: labels are classes
                labels = labels.astype(int)
            joblib.dump(clone(estimator).fit(features, labels), model)
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for path in sorted(Path(scratch).iterdir()):
                    tar.add(path, arcname=path.name)
            archive.write_bytes(buffer.getvalue())
        refit = backend.registry.register(
            group,
            model_data_url=refit_url,
            image_uri=good.image_uri,
            metrics=good.metrics,
            hyperparameters=good.hyperparameters,
            baseline_uri=good.baseline_uri,
            description=(
                f"demo: version {good.version}'s pipeline refit on the train and validation "
                f"splits ({len(rows)} rows); metrics copied from version {good.version}, not "
                "re-evaluated"
            ),
        )
        return f"version {refit.version}: version {good.version} refit on {len(rows)} rows"

    def deploy_shadowed(self) -> str:
        """The prod deploy shadow-tests v2 on prod's traffic first, then switches."""
        proc = self.cli(
            "deploy",
            "--env",
            "prod",
            "--commit",
            self.git("rev-parse", "HEAD"),
            "--pr",
            str(self._pr_number),
        )
        start = proc.stdout.find("### Shadow test")
        if start < 0:
            raise StageFailed("the prod deploy ran no shadow test")
        end = proc.stdout.find("\nprod: shadow test of version", start)
        console.print(
            Panel(proc.stdout[start:end].strip(), title="shadow test report", expand=False)
        )
        return _last_line(proc.stdout)

    def status_after_shadow(self) -> str:
        proc = self.cli("status")
        console.print(proc.stdout.rstrip())
        line = next((x for x in proc.stdout.splitlines() if "last shadow test:" in x), "")
        if "passed" not in line:
            raise StageFailed(f"status shows no passed shadow test ({line or 'none'})")
        return "desired state == running state; status shows the last shadow test"

    # -- scenario "batch": deployment=batch, batch jobs instead of endpoints -----------------

    def batch_stages(self) -> list[Stage]:
        return [
            Stage("render (batch)", self.render),
            Stage("run pipeline", self.run_pipeline),
            Stage("propose staging", lambda: self.propose("staging")),
            Stage("merge staging PR", self.merge),
            Stage("deploy staging", lambda: self.deploy("staging")),
            Stage("smoke-test staging", lambda: self.smoke("staging")),
            Stage("batch-run staging", lambda: self.batch_run("staging")),
            Stage("propose prod", lambda: self.propose("prod")),
            Stage("merge prod PR", self.merge),
            Stage("deploy prod", lambda: self.deploy("prod")),
            Stage("batch-run prod", lambda: self.batch_run("prod")),
            Stage("status", self.status),
        ]

    def batch_run(self, env: str) -> str:
        """Put the shipped batch file in ``env``'s input prefix (what an upstream job would
        write to S3) and run the batch now: locally nothing schedules it."""
        from ci_scripts.backends.local.state import LocalState

        manifest = json.loads((self.repo / "deploy" / f"{env}.json").read_text())
        prefix = manifest["batch"]["input_prefix"]
        state = LocalState(self.repo)
        sample = self.repo / "data" / "batch" / "sample.csv"
        target = state.s3_path(f"{prefix}{sample.name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, target)
        lines = self.cli("batch-run", "--env", env).stdout.strip().splitlines()
        scored = next((line for line in lines if " Succeeded " in line), lines[-1])
        # The input's name only: its S3 URI would wrap the demo's one-line stage summary.
        return f"{sample.name} in {env}'s input prefix: {scored.split(': ', 1)[-1]}"

    # -- scenario "rollback": a broken version's canary fails, staging keeps the good one -----

    def rollback_stages(self) -> list[Stage]:
        return [
            Stage("register broken", self.register_broken),
            Stage("propose broken", lambda: self.propose("staging")),
            Stage("merge broken PR", self.merge),
            Stage("deploy broken", self.deploy_broken),
            Stage("status after canary", self.status_after_rollback),
        ]

    def register_broken(self) -> str:
        """Register a copy of the serving version whose estimator was never fitted.

        The server loads it and answers /ping, but every prediction fails with HTTP 500: the
        kind of fault only real traffic finds, which is what the canary is for.
        """
        import io
        import tarfile
        import tempfile

        import joblib
        from sklearn.base import clone

        from ci_scripts.backends.local.backend import LocalBackend
        from ci_scripts.project import ProjectConfig

        backend = LocalBackend(ProjectConfig.load(self.repo))
        group = backend.project.model_package_group
        good = backend.get_version(group, self.serving_version("staging"))
        if good is None:
            raise StageFailed("the serving version is missing from the registry")
        broken_url = f"s3://{backend.project.artifact_bucket}/demo/broken/model.tar.gz"
        target = backend.state.s3_path(broken_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(backend.state.s3_path(good.model_data_url)) as tar:
                tar.extractall(scratch, filter="data")
            model = Path(scratch) / "model.joblib"
            joblib.dump(clone(joblib.load(model)), model)  # the same pipeline, never fitted
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for path in sorted(Path(scratch).iterdir()):
                    tar.add(path, arcname=path.name)
            target.write_bytes(buffer.getvalue())
        broken = backend.registry.register(
            group,
            model_data_url=broken_url,
            image_uri=good.image_uri,
            metrics=good.metrics,
            hyperparameters=good.hyperparameters,
            baseline_uri=good.baseline_uri,
            description="demo: deliberately broken (unfitted estimator)",
        )
        self.good_version, self.broken_version = good.version, broken.version
        return f"version {broken.version}: version {good.version} with an unfitted estimator"

    def serving_version(self, env: str) -> int:
        proc = self.cli("status", "--format", "json", ok_codes=(0, 3))
        for row in json.loads(proc.stdout)["environments"]:
            if row["environment"] == env and row["running_version"]:
                return int(row["running_version"])
        raise StageFailed(f"{env} serves no version")

    def deploy_broken(self) -> str:
        """The staging deploy must fail: its rollout sees 5xx and restores the good version
        (staging runs one instance, so all at once behind the alarms, not a canary)."""
        proc = self.cli(
            "deploy",
            "--env",
            "staging",
            "--commit",
            self.git("rev-parse", "HEAD"),
            "--pr",
            str(self._pr_number),
            ok_codes=(1,),
        )
        reason = proc.stderr.strip().splitlines()[-1]
        if "rolled back" not in reason:
            raise StageFailed(f"deploy failed, but not by its rollout: {reason}")
        console.print(f"[yellow]deploy --env staging exited 1:[/] {reason}", soft_wrap=True)
        return "the rollout's checks caught the broken version and rolled it back"

    def status_after_rollback(self) -> str:
        proc = self.cli("status", ok_codes=(3,))
        console.print(proc.stdout.rstrip())
        serving = self.serving_version("staging")
        if serving != self.good_version:
            raise StageFailed(f"staging serves version {serving}, not {self.good_version}")
        return (
            f"staging still serves version {serving}; git names version {self.broken_version} "
            "(drift, exit 3) until the manifest change is reverted"
        )

    # -- scenario "drift": monitoring finds drift in prod, retraining proposes a new version ---

    def drift_stages(self) -> list[Stage]:
        return [
            Stage("shifted traffic → prod", self.send_shifted_traffic),
            Stage("labelled new data → git", self.add_shifted_training_data),
            Stage("monitor prod --retrain", self.monitor_and_retrain),
            Stage("propose staging (new)", lambda: self.propose("staging")),
        ]

    def test_split(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the last pipeline run's test split."""
        import csv

        splits = sorted((self.repo / ".mlops" / "s3").rglob("Preprocess/test/test.csv"))
        if not splits:
            raise StageFailed("no test split under .mlops/s3 (did the pipeline run?)")
        with splits[-1].open(newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            return header, [row for row in reader if row]

    def send_to_prod(self, values: list[str], inference_id: str | None = None) -> None:
        """POST one CSV row to prod's router (its stable URL), as a client would."""
        import urllib.request

        if not hasattr(self, "_prod_url"):
            router = self.repo / ".mlops" / "endpoints" / "prod.router.json"
            self._prod_url = json.loads(router.read_text())["url"]
        headers = {"Content-Type": "text/csv"}
        if inference_id:
            headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
        request = urllib.request.Request(
            f"{self._prod_url}/invocations",
            data=(",".join(values) + "\n").encode(),
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise StageFailed(f"prod answered {response.status}")

    def send_shifted_traffic(self) -> str:
        """Rows of the pipeline's test split with a few features scaled, POSTed to prod's router
        one row per request (prod captures a sample of the requests, as its manifest says)."""
        header, rows = self.shifted_rows()
        sent = 0
        for _ in range(DRIFT_PASSES):
            for row in rows:
                self.send_to_prod([v for i, v in enumerate(row) if header[i] != "target"])
                sent += 1
        factors = ", ".join(f"{k} x{v}" for k, v in DRIFT_SCALES.items())
        return f"{sent} requests ({len(rows)} test rows x{DRIFT_PASSES}; {factors})"

    def shifted_rows(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of the test split with DRIFT_SCALES applied (labels kept)."""
        header, rows = self.test_split()
        scaled = {header.index(name): factor for name, factor in DRIFT_SCALES.items()}
        return header, [
            [f"{float(v) * scaled[i]:.6g}" if i in scaled else v for i, v in enumerate(row)]
            for row in rows
        ]

    def add_shifted_training_data(self) -> str:
        """The shifted traffic, labelled, joins data/dataset.csv in a commit: what retraining
        learns from. Without new data a retrain reuses every cached step and registers the same
        model again, which `propose` would rightly refuse to propose."""
        import csv

        header, rows = self.shifted_rows()
        dataset = self.repo / "data" / "dataset.csv"
        with dataset.open(newline="") as handle:
            columns = next(csv.reader(handle))
        order = [header.index(name) for name in columns]
        with dataset.open("a", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(
                [row[i] for i in order] for row in rows
            )
        self.git("add", "data/dataset.csv")
        self.git("commit", "-q", "-m", f"Add {len(rows)} labelled rows of the shifted traffic")
        return f"{len(rows)} labelled rows appended to data/dataset.csv (committed)"

    def monitor_and_retrain(self) -> str:
        """``monitor --env prod --retrain``: drift found (exit 3) and the pipeline run again."""
        proc = self.cli("monitor", "--env", "prod", "--retrain", ok_codes=(3,))
        show_output(proc.stdout, "monitor --env prod --retrain")
        console.print(proc.stderr.strip())
        registered = [line for line in proc.stdout.splitlines() if line.startswith("retrained:")]
        return registered[-1] if registered else "retrained"

    # -- scenario "quality": labels show a drop that data drift cannot see -------------------

    def quality_stages(self) -> list[Stage]:
        return [
            Stage("labelled traffic → prod", self.send_labelled_traffic),
            Stage("upload ground truth", self.upload_ground_truth),
            Stage("monitor prod (drift)", self.monitor_data_quality),
            Stage("monitor prod --quality", self.monitor_quality),
        ]

    def send_labelled_traffic(self) -> str:
        """The test split, unchanged, one row per request with its own inference id; the true
        class of each request is kept for the labelling step."""
        import uuid

        header, rows = self.test_split()
        target = header.index("target")
        self.truth: list[tuple[str, int]] = []
        for n in range(QUALITY_PASSES):
            for row in rows:
                inference_id = f"demo-{n}-{uuid.uuid4().hex[:12]}"
                self.send_to_prod([v for i, v in enumerate(row) if i != target], inference_id)
                self.truth.append((inference_id, int(float(row[target]))))
        return (
            f"{len(self.truth)} requests ({len(rows)} test rows x{QUALITY_PASSES}, features "
            "unchanged), each with an X-Amzn-SageMaker-Inference-Id"
        )

    def upload_ground_truth(self) -> str:
        """A labelling feed's CSV (inference_id,label) with a share of labels flipped,
        uploaded with ``ground-truth --env prod`` (the monitor's ground-truth format)."""
        import random

        flip = set(
            random.Random(7).sample(range(len(self.truth)), int(len(self.truth) * QUALITY_FLIPPED))
        )
        labels = self.repo / "labels-prod.csv"
        labels.write_text(
            "inference_id,label\n"
            + "".join(
                f"{inference_id},{1 - label if i in flip else label}\n"
                for i, (inference_id, label) in enumerate(self.truth)
            )
        )
        proc = self.cli("ground-truth", "--env", "prod", str(labels))
        return f"{len(flip)} of {len(self.truth)} labels flipped; " + _last_line(proc.stdout)

    def monitor_data_quality(self) -> str:
        """``monitor --env prod``: the features did not move, so data quality is clean."""
        proc = self.cli("monitor", "--env", "prod")
        show_output(proc.stdout, "monitor --env prod")
        return "no drift: the captured features match the baseline"

    def monitor_quality(self) -> str:
        """``monitor --env prod --quality``: the labels show the drop (exit 3, metrics named)."""
        proc = self.cli("monitor", "--env", "prod", "--quality", ok_codes=(3,))
        show_output(proc.stdout, "monitor --env prod --quality")
        console.print(proc.stderr.strip(), soft_wrap=True)
        return "quality drop caught (exit 3) on traffic with no drift"

    def down(self) -> None:
        """Stop every local process the loop started; runs even when a stage failed."""
        if getattr(self, "repo", None) and (self.repo / "ci_scripts").exists():
            subprocess.run(
                [sys.executable, "-m", "ci_scripts", "local", "down"],
                cwd=self.repo,
                env=self.env(),
                capture_output=True,
                check=False,
            )


def sdk_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("sagemaker") is not None


def build_shipped_definition(repo: Path) -> dict:
    """What scripts/demo_definition.json holds for ``repo``: the definition the installed SDK
    builds from it (the CLI's build, in this process: ``make demo-definition`` and the test that
    checks the file already run where the SDK is installed), with the keys it was built from."""
    from importlib import metadata

    from ci_scripts.backends.local.definition import PLACEHOLDER_TAG
    from ci_scripts.definition_inputs import code_key
    from ci_scripts.errors import CIError
    from ci_scripts.pipeline_module import build_definition
    from ci_scripts.project import ProjectConfig

    try:
        definition = build_definition(ProjectConfig.load(repo), image_tag=PLACEHOLDER_TAG)
    except CIError as exc:
        raise StageFailed(f"building the definition failed: {exc}") from exc
    return {
        "code_key": code_key(repo),
        "sdk": {dist: metadata.version(dist) for dist in SDK_DISTRIBUTIONS},
        "definition": definition,
    }


def write_shipped_definition(work_dir: Path) -> Path:
    """``make demo-definition``: render the defaults and store what the SDK builds from them."""
    demo = Demo(work_dir)
    demo.render()
    shipped = build_shipped_definition(demo.repo)
    SHIPPED_DEFINITION.write_text(json.dumps(shipped, indent=1, sort_keys=True) + "\n")
    return SHIPPED_DEFINITION


def show_output(text: str, title: str) -> None:
    """A command's output in a panel, but its ``html report: PATH`` lines after the panel and
    unwrapped: a panel folds a word longer than its width, so a long path (a deep work dir, a
    long user name under /tmp) came out cut at the border, neither clickable nor copyable."""
    lines = text.rstrip().splitlines()
    paths = [line for line in lines if line.startswith(PATH_LINES)]
    console.print(Panel("\n".join(line for line in lines if line not in paths), title=title))
    for line in paths:
        console.print(line, soft_wrap=True)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def run(
    work_dir: Path = DEFAULT_WORK_DIR,
    keep_running: bool = False,
    metric_threshold: float | None = None,
    scenario: str = "happy",
    from_loop: Path | None = None,
) -> dict[str, float]:
    """Run every stage; return stage timings. Raises StageFailed naming the failed stage."""
    demo = Demo(work_dir, scenario=scenario, metric_threshold=metric_threshold, from_loop=from_loop)
    title = "the whole loop" if from_loop is None else f"{scenario}, from a finished loop"
    console.rule(f"[bold]sagemaker-gitops: {title} on this machine (local backend)")
    started = time.perf_counter()
    try:
        for stage in demo.stages():
            t0 = time.perf_counter()
            with console.status(f"{stage.name} ..."):
                try:
                    stage.detail = stage.run()
                except StageFailed as exc:
                    stage.seconds = time.perf_counter() - t0
                    console.print(f"[red]✗ {stage.name:<20}[/] {stage.seconds:5.1f} s  {exc}")
                    raise StageFailed(f"stage '{stage.name}' failed: {exc}") from exc
            stage.seconds = time.perf_counter() - t0
            demo.timings[stage.name] = stage.seconds
            console.print(f"[green]✓ {stage.name:<20}[/] {stage.seconds:5.1f} s  {stage.detail}")
    finally:
        if not keep_running:
            demo.down()
    total = time.perf_counter() - started
    demo.timings["total"] = total
    summary = Table(title="demo summary", show_header=True)
    summary.add_column("stage")
    summary.add_column("seconds", justify="right")
    for name, seconds in demo.timings.items():
        summary.add_row(name, f"{seconds:.1f}")
    console.print(summary)
    merged = getattr(demo, "_pr_number", 0)
    console.print(
        f"[bold green]The loop ran end to end in {total:.1f} s.[/] The rendered repo is "
        f"{demo.repo}; its git log shows the {merged} merged proposal{'s' * (merged != 1)}."
    )
    print_what_next(demo, keep_running)
    return demo.timings


def print_what_next(demo: Demo, keep_running: bool) -> None:
    """The box, never wrapped where output is not a terminal (a log, a pipe: rich assumes 80
    columns there, which split the curl command in two); a terminal wraps as it must."""
    box = what_next(demo, keep_running)
    if console.is_terminal:
        console.print(box)
        return
    widest = max(len(line) for line in str(box.renderable).splitlines())
    saved = console.width
    console.width = max(saved, widest + 4)  # the border and its padding (print() clamps)
    try:
        console.print(box)
    finally:
        console.width = saved


def what_next(demo: Demo, keep_running: bool) -> Panel:
    """The box that ends the demo: where the repo is, and the next commands that work from here.

    Without KEEP=1 every endpoint is stopped (its URLs are dead), so the box says how to keep
    them; with it, it names the live URLs, a curl that works and how to stop them. A batch demo
    has no endpoints: the box names its outputs and how to run a batch again.
    """
    python, repo = Path(sys.executable), demo.repo
    shown_repo = os.path.relpath(repo) if repo.is_relative_to(Path.cwd()) else str(repo)
    # From inside the rendered repo, the template's .venv runs its vendored ci_scripts.
    shown_python = os.path.relpath(python, repo) if python.is_relative_to(TEMPLATE_DIR) else python
    cli = f"{shown_python} -m ci_scripts"
    lines = [f"cd {shown_repo}"]
    if demo.scenario == "batch":  # batch jobs: nothing keeps running, the outputs stay
        lines.append(f"{cli} status            # desired (git) vs each env's last batch run")
        lines.append("ls .mlops/s3/*/batch/prod/output/   # prod's scored files (id,prediction)")
        lines.append(f"{cli} batch-run --env prod   # score prod's input prefix again")
    elif keep_running:
        lines.append(f"{cli} status            # desired (git) vs running")
        urls = {}
        for env in ("staging", "prod"):
            info = repo / ".mlops" / "endpoints" / f"{env}.router.json"
            if info.is_file():
                urls[env] = json.loads(info.read_text())["url"]
        for env, url in urls.items():
            lines.append(f"# {env}: {url}")
        if urls:
            url = urls.get("prod") or next(iter(urls.values()))
            lines.append(
                f"curl -s -H 'Content-Type: text/csv' --data-binary \"$(tail -n 1 "
                f'data/dataset.csv | cut -d, -f2-)" {url}/invocations'
            )
        lines.append(f"{cli} local ps          # routers and servers, with pids")
        lines.append("cd - && make down     # stop them (or `local down` in the repo)")
    else:
        lines.append("# every endpoint was stopped; to keep them running and curl them:")
        lines.append("cd - && make demo KEEP=1   # then `make down` stops them")
    lines.append("# the rendered README.md walks through the same loop on your model")
    return Panel("\n".join(lines), title="what next", expand=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the local endpoints up afterwards"
    )
    parser.add_argument(
        "--metric-threshold",
        type=float,
        help="the pipeline's quality gate (auc); set it above 1 to watch the gate stop the loop",
    )
    parser.add_argument(
        "--scenario",
        choices=("happy", "shadow", "drift", "rollback", "quality", "batch"),
        default="happy",
        help="shadow: then a second version is shadow-tested on prod's traffic before it "
        "switches; drift: then send shifted traffic to prod, find the drift, retrain, "
        "propose anew; "
        "rollback: then a broken version fails its rollout and staging keeps the good one; "
        "quality: then labelled prod traffic shows a quality drop that data drift misses; "
        "batch: the loop for deployment=batch (batch jobs, batch-run, no endpoints)",
    )
    parser.add_argument(
        "--from-loop",
        type=Path,
        metavar="REPO",
        help="continue a scenario (shadow, rollback, drift, quality) from a copy of the repo a "
        "finished `make demo` left, its endpoints deployed again from git, instead of running "
        "the loop again",
    )
    parser.add_argument(
        "--write-definition",
        action="store_true",
        help=f"render the defaults and write {SHIPPED_DEFINITION.name} (needs the sagemaker SDK)",
    )
    args = parser.parse_args(argv)
    if args.from_loop is not None and args.scenario not in CONTINUING_SCENARIOS:
        parser.error(f"--from-loop continues one of {', '.join(CONTINUING_SCENARIOS)}")
    if args.from_loop is not None and args.metric_threshold is not None:
        parser.error("--metric-threshold gates the loop's pipeline run, which --from-loop skips")
    if args.write_definition:
        if not sdk_installed():
            console.print(
                "[bold red]--write-definition needs the sagemaker SDK (make test installs it)"
            )
            return 1
        console.print(f"wrote {write_shipped_definition(args.work_dir)}")
        return 0
    try:
        # SIGTERM/SIGHUP (a closed terminal, a CI cancel) end the demo as Ctrl-C does
        with termination_interrupts("demo"):
            run(
                args.work_dir,
                keep_running=args.keep_running,
                metric_threshold=args.metric_threshold,
                scenario=args.scenario,
                from_loop=args.from_loop,
            )
    except StageFailed as exc:
        console.print(f"[bold red]demo failed:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        # run()'s cleanup has already stopped what the demo started (unless --keep-running)
        left = (
            "its endpoints keep running (`make down` stops them)"
            if args.keep_running
            else "every process it started was stopped"
        )
        console.print(
            f"[bold yellow]demo interrupted:[/] {left}; the repo so far is in {args.work_dir}"
        )
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
