"""Local batch scoring: what a batch environment runs, and each run, in ``.mlops/batch/``.

There is no scheduler locally: ``ci_scripts batch-run --env E`` is how a scheduled run happens
(the demo calls it). A deploy records the version the environment scores with
(``batch/<env>.json``; a no-op when version and manifest are unchanged); a run then

1. copies the input prefix (``.mlops/s3/...``) to a work dir, as a processing job downloads it,
   and runs the version's own ``<package>.batch_check`` on it: a bad file fails the run with
   ``<file>:<line>: <reason>`` and nothing is written to the output prefix;
2. scores every file with the version's model and its own serve code (``transform.py``, the
   registered src/ copy, as local endpoints serve a version's own code), into the work dir;
3. checks the outputs against the inputs (``ci_scripts.batch.check_outputs``: each id back once,
   in order, with a prediction the model's schema accepts), then publishes them: every file is
   first copied beside its target, then all are renamed into place, so a failure before the last
   rename leaves none of this run's outputs;
4. with ``data_capture.enabled`` (monitoring=yes), turns the run's rows into capture records
   (the version's ``<package>.batch_capture``) where the router keeps an endpoint's captures, so
   ``ci_scripts monitor --env E`` reads batch traffic as it reads endpoint traffic (drift of the
   inputs against the training baseline; with labels joined on the row ids, quality);
5. records the run (``batch/runs/<env>/<id>.json``) for ``last_batch_run`` and ``status``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts import batch as batching
from ci_scripts.backends.base import BatchRun, EndpointState, ModelVersion, Registry
from ci_scripts.backends.local import image
from ci_scripts.backends.local.endpoints import LocalEndpoints
from ci_scripts.backends.local.processes import dies_with_parent
from ci_scripts.backends.local.state import (
    LocalState,
    read_json,
    served_code,
    write_json_atomic,
)
from ci_scripts.definition_inputs import iter_files
from ci_scripts.errors import CIError
from ci_scripts.interrupts import termination_interrupts
from ci_scripts.manifest import endpoint_settings, spec
from ci_scripts.project import ProjectConfig

SOURCE_KEY = "_source"
TRANSFORM_SCRIPT = Path(__file__).resolve().parent / "transform.py"
STEP_TIMEOUT_SECONDS = 600


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _schedule(manifest: dict[str, Any]) -> str | None:
    """The schedule of ``manifest``'s batch section (None without one)."""
    batch = spec(manifest).batch
    return batch.schedule if batch is not None else None


class LocalBatch:
    """Batch deployments and runs of one project on this machine."""

    def __init__(
        self,
        project: ProjectConfig,
        state: LocalState,
        endpoints: LocalEndpoints,
        registry: Registry,
    ) -> None:
        self.project = project
        self.state = state
        self.endpoints = endpoints
        self.registry = registry

    # -- records ----------------------------------------------------------------------------
    def record_file(self, env: str) -> Path:
        return self.state.dir("batch") / f"{env}.json"

    def record(self, env: str) -> dict[str, Any] | None:
        return read_json(self.state.home / "batch" / f"{env}.json")

    def runs_dir(self, env: str) -> Path:
        return self.state.dir("batch", "runs", env)

    def runs(self, env: str, *, smoke: bool = False) -> list[dict[str, Any]]:
        """Run records of ``env``, oldest first (smoke-test runs only with ``smoke``)."""
        folder = self.state.home / "batch" / "runs" / env
        if not folder.is_dir():
            return []
        found = [read_json(path) or {} for path in sorted(folder.glob("*.json"))]
        found = [r for r in found if bool(r.get("smoke")) is smoke]
        return sorted(found, key=lambda r: (r.get("started", ""), r.get("id", "")))

    def last_run(self, env: str) -> BatchRun | None:
        runs = self.runs(env)
        return batching.run_from_record(runs[-1]) if runs else None

    # -- EndpointHost for batch -------------------------------------------------------------
    def describe(self, env: str) -> EndpointState | None:
        """The batch job as an EndpointState: Failed when this deployment's last run failed."""
        record = self.record(env)
        if record is None:
            return None
        runs = [r for r in self.runs(env) if r.get("deployment") == record["deployment"]]
        last = runs[-1] if runs else None
        failed = last is not None and last.get("status") == "Failed"
        manifest = record["manifest"]
        return EndpointState(
            name=self.project.batch_pipeline_name(env),
            status="Failed" if failed else "InService",
            model_version=record["model_version"],
            url="",
            failure_reason=(last or {}).get("failure_reason", "") if failed else "",
            config={
                "type": "batch",
                "settings": endpoint_settings(manifest),
                "previous_version": record.get("previous_version"),
                "schedule": _schedule(manifest),
                "scheduler": "none locally: `ci_scripts batch-run --env E` runs one",
                "last_run": last,
            },
        )

    def deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        """Make ``env`` score with ``version``; a no-op when it already does, as configured."""
        wanted = {k: v for k, v in manifest.items() if k != SOURCE_KEY}
        record = self.record(env) or {}
        if record.get("model_version") == version.version and record.get("manifest") == wanted:
            state = self.describe(env)
            assert state is not None
            return state
        self.endpoints._extract_model(version)  # the model data must exist before any change
        previous = record.get("previous_version")
        if record.get("model_version") not in (None, version.version):
            previous = record["model_version"]
        write_json_atomic(
            self.record_file(env),
            {
                "model_version": version.version,
                "model_package_arn": version.arn,
                "manifest": wanted,
                "previous_version": previous,
                "deployment": uuid.uuid4().hex[:12],
                "deployed": _now(),
                "source": manifest.get(SOURCE_KEY),
            },
        )
        self.state.journal(
            "UpsertPipeline",
            self.project.batch_pipeline_name(env),
            model_version=version.version,
            schedule=_schedule(wanted),
        )
        state = self.describe(env)
        assert state is not None
        return state

    # -- BatchHost --------------------------------------------------------------------------
    def run(
        self,
        env: str,
        manifest: dict[str, Any],
        *,
        input_uri: str | None = None,
        output_uri: str | None = None,
    ) -> BatchRun:
        """One run, start to end (locally always synchronous); recorded whatever its end.

        It scores with what was deployed (the record's version and manifest), not with git's
        ``manifest``, as the schedule on AWS starts what the last deploy set up.
        """
        record = self.record(env)
        name = self.project.batch_pipeline_name(env)
        if record is None:
            raise CIError(f"batch {name}: nothing deployed for {env}; run `deploy --env {env}`")
        default_in, default_out = batching.prefixes(record["manifest"])
        input_uri, output_uri = input_uri or default_in, output_uri or default_out
        for label, uri in (("--input", input_uri), ("--output", output_uri)):
            if not uri.startswith("s3://") or not uri.endswith("/"):
                raise CIError(f"{label} {uri!r}: not an s3:// prefix ending in /")
        if output_uri.startswith(input_uri) or input_uri.startswith(output_uri):
            raise CIError(f"--input {input_uri}: overlaps the output prefix {output_uri}")
        smoke = output_uri.endswith(batching.SMOKE_SUFFIX)
        run = BatchRun(
            env=env,
            id=f"{env}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
            status="Executing",
            model_version=record["model_version"],
            input_uri=input_uri,
            output_uri=output_uri,
            started=_now(),
        )
        work = Path(tempfile.mkdtemp(prefix=f".{run.id}.", dir=self.state.dir("batch")))
        capture_note = ""
        try:
            # SIGTERM/SIGHUP as Ctrl-C: the step subprocess is killed, the scratch folder
            # removed and the run recorded as Stopped instead of the CLI dying mid-run.
            with termination_interrupts("batch run"):
                run.rows = self._score(record, input_uri, output_uri, work)
                run.status = "Succeeded"
                if not smoke and spec(record["manifest"]).data_capture.enabled:
                    capture_note = self._capture(env, record, work, run.id)
        except CIError as exc:
            run.status, run.failure_reason = "Failed", str(exc)
        except KeyboardInterrupt as exc:
            run.status, run.failure_reason = "Stopped", str(exc) or "interrupted"
            raise KeyboardInterrupt(
                f"batch {name}: run {run.id} {run.failure_reason}; recorded as Stopped, "
                f"no outputs published to {output_uri}"
            ) from None
        except BaseException:
            run.status, run.failure_reason = "Stopped", "interrupted"
            raise
        finally:
            run.ended = _now()
            shutil.rmtree(work, ignore_errors=True)
            entry = {
                **batching.run_record(run),
                "deployment": record["deployment"],
                "smoke": smoke,
                "capture": capture_note,
            }
            write_json_atomic(self.runs_dir(env) / f"{run.id}.json", entry)
            self.state.journal(
                "StartPipelineExecution", name, run=run.id, status=run.status, rows=run.rows
            )
        return run

    def _score(self, record: dict[str, Any], input_uri: str, output_uri: str, work: Path) -> int:
        from ci_scripts.model_contract import load as load_contract

        group = self.project.model_package_group
        version = int(record["model_version"])
        source = self.state.s3_path(input_uri)
        keys = {
            path.relative_to(source).as_posix(): path
            for path in (iter_files(source) if source.is_dir() else [])
            if not any(part.startswith(".") for part in path.relative_to(source).parts)
        }
        if not keys:
            raise CIError(f"{input_uri}: no input files to score")
        downloaded = work / "processing" / "input" / "batch"
        for key, path in keys.items():
            (downloaded / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, downloaded / key)
        env_vars = self._env_vars(record, work)
        self._step(
            image.command(sys.executable, "batch_check", "--label", input_uri),
            env_vars,
            work,
        )
        registered = self.registry.get_version(group, version)
        if registered is None:
            raise CIError(f"model {group} v{version}: not in the registry any more")
        found = self.endpoints._extract_model(registered) / "model"
        settings = spec(record["manifest"]).batch
        assert settings is not None  # a batch record's manifest has its batch section
        produced = work / "output"
        self._step(
            [
                # -P: the script's own folder (ci_scripts/backends/local) stays off sys.path
                sys.executable, "-P", str(TRANSFORM_SCRIPT), "--runtime", image.runtime(),
                "--model-dir", str(found), "--input", str(downloaded), "--output", str(produced),
                "--label", input_uri, "--max-payload-mb", str(settings.max_payload_mb),
            ],
            env_vars,
            work,
        )  # fmt: skip
        inputs = {key: (downloaded / key).read_text(encoding="utf-8") for key in keys}
        outputs = {key: _read(produced / batching.output_key(key)) for key in keys}
        rows = batching.check_outputs(inputs, outputs, load_contract(self.project), output_uri)
        self._publish(produced, self.state.s3_path(output_uri), list(keys))
        return rows

    def _capture(self, env: str, record: dict[str, Any], work: Path, run_id: str) -> str:
        """The run's rows as capture records where the router keeps an endpoint's captures
        (``datacapture/<env>/version-<n>/``), by the version's own ``batch_capture``, so the
        monitor reads batch traffic as it reads endpoint traffic. A failure here is noted in the
        run record, not a failed run: the outputs are already published."""
        target = self.state.capture_dir(env) / f"version-{record['model_version']}" / "batch"
        command = [
            *image.command(sys.executable, "batch_capture"),
            "--inputs", str(work / "processing" / "input" / "batch"),
            "--outputs", str(work / "output"), "--capture", str(target),
            "--time", _now(), "--name", run_id,
        ]  # fmt: skip
        try:
            self._step(command, self._env_vars(record, work), work)
        except CIError as exc:
            return f"not captured for the monitor: {exc}"
        return str(target / f"{run_id}.jsonl")

    def _env_vars(self, record: dict[str, Any], work: Path) -> dict[str, str]:
        """A step subprocess's environment: /opt/ml at ``work``, the version's own src/."""
        group, version = self.project.model_package_group, int(record["model_version"])
        src = served_code(self.state, group, version, self.project.root / "src")
        env_vars = image.environment(src, self.project.package, os.environ)
        env_vars["OPT_ML_ROOT"] = str(work)
        return env_vars

    @staticmethod
    def _step(command: list[str], env_vars: dict[str, str], cwd: Path) -> None:
        """Run one step subprocess; its last ``error:`` line is the CIError when it fails."""
        try:
            done = subprocess.run(
                command,
                env=env_vars,
                cwd=cwd,
                capture_output=True,
                text=True,
                preexec_fn=dies_with_parent(),  # no transform left running after the CLI
                timeout=STEP_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CIError(f"{command[2]}: no result within {STEP_TIMEOUT_SECONDS} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("error: ")]
            reason = (errors or lines or [f"exit status {done.returncode}"])[-1]
            raise CIError(reason.removeprefix("error: "))

    @staticmethod
    def _publish(produced: Path, target: Path, keys: list[str]) -> None:
        """Copy every output beside its place, then rename them all in; on any failure remove
        what this run put there (the outputs appear together or not at all)."""
        staged: list[tuple[Path, Path]] = []
        placed: list[Path] = []
        try:
            for key in keys:
                final = target / batching.output_key(key)
                final.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
                os.close(fd)
                staged.append((Path(tmp), final))
                shutil.copyfile(produced / batching.output_key(key), tmp)
            for tmp, final in staged:
                os.replace(tmp, final)
                placed.append(final)
        except BaseException as exc:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            for final in placed:
                final.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise CIError(f"{target}: outputs not published ({exc}); none were kept") from exc
            raise

    # -- teardown ---------------------------------------------------------------------------
    def plan(self, env: str) -> list[str]:
        record = self.record(env)
        if record is None:
            return []
        return [
            f"batch pipeline {self.project.batch_pipeline_name(env)} (scoring version "
            f"{record.get('model_version')}; its inputs, outputs and run records stay)"
        ]

    def destroy(self, env: str) -> list[str]:
        removed = self.plan(env)
        if removed:
            self.record_file(env).unlink(missing_ok=True)
            self.state.journal("DeletePipeline", self.project.batch_pipeline_name(env))
        return removed

    def versions_in_use(self) -> set[int]:
        """What batch environments score with, or would restore."""
        found: set[int] = set()
        for path in (self.state.home / "batch").glob("*.json"):
            record = read_json(path) or {}
            found |= {v for v in (record.get("model_version"), record.get("previous_version")) if v}
        return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
