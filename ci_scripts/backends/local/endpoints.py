"""Local endpoints: the real serve code on loopback behind a per-environment router.

Each environment has a router (``local_router``) whose port never changes while it runs, and one
model server process per version (``python -m <pkg> serve`` with ``OPT_ML_ROOT`` pointing at the
extracted model). A deploy is blue/green: start the new version's server, wait for its ``/ping``,
run a canary when a version already serves (``local_canary``: a share of the traffic on the new
version, rolled back on 5xx answers, slow answers or a failed health check), switch the router
(atomic rename of the routes file, confirmed by a reload request), and only then stop the old
server. If the new server never becomes healthy, or its canary fails, it is stopped and the old
one keeps serving. The routes file records the version served before (``previous_version``).
A per-environment file lock serialises deploys; while one holds it, ``describe`` reports the
endpoint as ``Updating`` (the status the deploy command refuses to start on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ci_scripts
from ci_scripts.backends.base import EndpointState, ModelVersion
from ci_scripts.backends.local import image
from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local import shadow as local_shadow
from ci_scripts.backends.local.state import (
    LocalState,
    read_json,
    served_code,
    write_json_atomic,
)
from ci_scripts.errors import CIError
from ci_scripts.interrupts import StateReported, termination_interrupts
from ci_scripts.manifest import endpoint_settings, spec
from ci_scripts.project import ProjectConfig

if TYPE_CHECKING:
    import tarfile

    from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy

HEALTH_TIMEOUT_ENV = "CI_SCRIPTS_LOCAL_HEALTH_TIMEOUT"
DEFAULT_HEALTH_TIMEOUT = 60.0
# An old server is stopped once the router has no request of it left unanswered (for at most
# the router's UPSTREAM_TIMEOUT); a router started before it counted them gets a fixed pause.
DRAIN_PAUSE = 0.1
log = logging.getLogger(__name__)

PORT_ATTEMPTS = 3  # a picked port can be taken before the server binds it
SOURCE_KEY = "_source"


class LocalEndpoints:
    """Endpoints of one project, one per environment."""

    def __init__(self, project: ProjectConfig, state: LocalState) -> None:
        self.project = project
        self.state = state
        self.health_timeout = float(os.environ.get(HEALTH_TIMEOUT_ENV) or DEFAULT_HEALTH_TIMEOUT)
        # env -> the candidate's server a finished shadow test kept for the deploy that follows
        self._warm: dict[str, dict[str, Any]] = {}

    # -- reads ------------------------------------------------------------------------------
    def describe(self, env: str) -> EndpointState | None:
        """What runs in ``env``: InService only when router and servers are alive and healthy."""
        state = self._describe(env)
        if state is not None and state.status == "InService" and self._locked(env):
            state.status = "Updating"
        return state

    def _describe(self, env: str) -> EndpointState | None:
        routes = read_json(self.state.endpoint_file(env))
        if not routes:
            return None
        name = self.project.endpoint_name(env)
        router = self._router_record(env)
        try:
            shadow = read_json(local_shadow.record_file(self.state, env)) or {}
        except CIError:
            shadow = {}  # a damaged record: no last result to show
        config = {
            "shadow": shadow.get("record"),
            "manifest": routes.get("manifest", {}),
            "settings": endpoint_settings(routes.get("manifest") or {}),
            "previous_version": routes.get("previous_version"),
            "targets": [
                {k: t.get(k) for k in ("variant", "version", "url", "weight")}
                | {"pid": (t.get("process") or {}).get("pid")}
                for t in routes.get("targets", [])
            ],
        }
        status, reason = "InService", ""
        dead = [t for t in routes.get("targets", []) if not procs.alive(t.get("process"))]
        if not procs.alive(router):
            status, reason = "Failed", f"router (pid {(router or {}).get('pid')}) is not running"
        elif dead:
            t = dead[0]
            log = Path((t.get("process") or {}).get("log", ""))
            status = "Failed"
            why = procs.tail(log, 3)
            reason = f"model server of version {t.get('version')} is not running: {why}"
        else:
            code, body = _request(routes["url"], "GET", "/ping", timeout=5.0)
            if code != 200:
                status, reason = "Failed", f"/ping answered {code}: {body[:200]!r}"
        return EndpointState(
            name=name,
            status=status,
            model_version=routes.get("model_version"),
            url=routes.get("url", ""),
            failure_reason=reason,
            config=config,
        )

    def invoke(
        self,
        env: str,
        body: bytes,
        content_type: str = "text/csv",
        inference_id: str | None = None,
    ) -> tuple[int, bytes]:
        """POST ``body`` to the endpoint's /invocations through its router (which records
        ``inference_id``, sent as SageMaker's header, in the capture)."""
        routes = read_json(self.state.endpoint_file(env))
        name = self.project.endpoint_name(env)
        if not routes:
            raise CIError(f"endpoint {name}: not deployed locally (run deploy --env {env})")
        headers = {"Content-Type": content_type}
        if inference_id:
            from ci_scripts.backends.local.router import INFERENCE_ID_HEADER  # the capture's id

            headers[INFERENCE_ID_HEADER] = inference_id
        code, payload = _request(routes["url"], "POST", "/invocations", body, headers)
        if code == 0:
            raise CIError(f"endpoint {name}: {routes['url']} is not reachable: {payload.decode()}")
        return code, payload

    # -- deploy -----------------------------------------------------------------------------
    def deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        """Blue/green switch of ``env`` to ``version``; a no-op when it already serves it.

        Interrupted (Ctrl-C, SIGTERM, SIGHUP), it puts back what served and raises a
        KeyboardInterrupt whose message says what serves now (the CLI prints it)."""
        before = (self._read_routes_quietly(env) or {}).get("model_version")
        try:
            return self._deploy(env, manifest, version)
        except KeyboardInterrupt as exc:
            now = (self._read_routes_quietly(env) or {}).get("model_version")
            if now == version.version and before != version.version:
                left = f"version {now} serves (the switch was made)"
            elif now is not None:
                left = f"version {now} keeps serving; version {version.version} was stopped"
            else:
                left = f"nothing serves {env}; version {version.version} was stopped"
            why = str(exc) or "deploy interrupted"
            raise StateReported(
                f"endpoint {self.project.endpoint_name(env)}: {why}; {left}"
            ) from None

    def _read_routes_quietly(self, env: str) -> dict[str, Any] | None:
        try:
            routes = read_json(self.state.endpoint_file(env))
        except CIError:
            return None
        return routes if isinstance(routes, dict) else None

    def _deploy(self, env: str, manifest: dict[str, Any], version: ModelVersion) -> EndpointState:
        wanted = {k: v for k, v in manifest.items() if k != SOURCE_KEY}
        with termination_interrupts(), self._lock(env):
            routes = self._read_routes(env)
            current = self._describe(env)
            healthy = current is not None and current.status == "InService"
            same_version = routes.get("model_version") == version.version
            if healthy and same_version and routes.get("manifest") == wanted:
                return current  # type: ignore[return-value]
            previous = routes.get("previous_version")
            rollout = ""  # set when an update shifts traffic (a first deploy shifts none)
            if healthy and same_version:  # only the configuration changed
                router = self._ensure_router(env, routes)
                targets, old = routes["targets"], []
            else:
                if routes.get("model_version") != version.version:
                    previous = routes.get("model_version")
                new = self._take_warm(env, version) or self._spawn_server(env, version)
                try:  # the router starts while the new server loads its model
                    router = self._ensure_router(env, routes)
                    new = self._await_healthy(env, version, new, current)
                    if healthy:
                        rollout = self._canary(env, router, version, new, routes, wanted)
                except BaseException:
                    procs.stop(self.state, new["process"])
                    if not routes:  # a first deploy that failed leaves nothing behind
                        procs.stop(self.state, self._router_record(env))
                    raise
                targets, old = [new], routes.get("targets", [])
            self._write_routes(
                env, router, version.version, targets, wanted, manifest, previous=previous
            )
            routed = self._confirm_switch(env, router, targets)
            if old:
                self._drain(router, routed, [t["url"] for t in old])
                for target in old:
                    procs.stop(self.state, target.get("process"))
            state = self._describe(env)
        assert state is not None
        if rollout:
            state.config["rollout"] = rollout
        return state

    # -- shadow test (ci_scripts.shadow, local_shadow) --------------------------------------
    def shadow_test(
        self, env: str, manifest: dict[str, Any], version: ModelVersion, policy: ShadowPolicy
    ) -> ShadowMeasurement:
        """Run ``version`` as the shadow of what ``env`` serves and measure it.

        The candidate's server starts beside the live one and the router mirrors every request
        to it for the window; then the routes are put back as they were and the candidate's
        server is stopped, also when anything fails or the deploy is interrupted (Ctrl-C,
        SIGTERM): the live version serves throughout and nothing of the shadow stays behind.
        """
        from ci_scripts.backends.local import canary as local_canary  # its probe rows

        name = self.project.endpoint_name(env)
        with termination_interrupts(), self._lock(env):
            routes = self._read_routes(env)
            current = self._describe(env)
            if current is None or current.status != "InService" or not routes.get("targets"):
                status = current.status if current else "absent"
                raise CIError(
                    f"endpoint {name}: the shadow test needs {env} serving (status {status})"
                )
            seconds = local_shadow.window_seconds(policy)
            log = local_shadow.pairs_file(self.state, env)
            log.unlink(missing_ok=True)
            router = self._ensure_router(env, routes)
            source = {SOURCE_KEY: routes.get("source")}
            serving = routes.get("model_version")

            def put(shadow: dict[str, Any] | None, op: str) -> None:
                self._write_routes(
                    env,
                    router,
                    serving,
                    routes["targets"],
                    routes.get("manifest", {}),
                    source,
                    previous=routes.get("previous_version"),
                    op=op,
                    shadow=shadow,
                )
                self._confirm_switch(env, router, routes["targets"])

            self.release_shadow(env)
            new = self._spawn_server(env, version)
            started = completed = False
            try:
                new = self._await_healthy(env, version, new, current)
                shadow = {
                    "variant": f"shadow-version-{version.version}",
                    "version": version.version,
                    "url": new["url"],
                    "log": str(log),
                }
                put(shadow, "StartShadow")
                started = True
                began = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                rows = local_canary.probe_rows(self.project.root, spec(manifest).smoke_test.rows)
                seconds = local_shadow.drive(
                    router["url"], seconds, rows, _request, policy.min_requests
                )
                local_shadow.settle(router["url"], _request)
                completed = True
            finally:
                if started:
                    with contextlib.suppress(CIError):
                        put(None, "StopShadow")
                if completed:  # serves the deploy if the shadow passes (else release_shadow)
                    self._warm[env] = new
                else:
                    procs.stop(self.state, new["process"])
            live_variant = str(routes["targets"][0].get("variant", ""))
            measured = local_shadow.measurement(
                env,
                log,
                (live_variant, serving),
                (shadow["variant"], version.version),
                seconds,
            )
            measured.started = began
            return measured

    def release_shadow(self, env: str) -> None:
        """Stop the candidate's server a shadow test kept, unless a deploy took it."""
        kept = self._warm.pop(env, None)
        if kept:
            procs.stop(self.state, kept.get("process"))

    def _take_warm(self, env: str, version: ModelVersion) -> dict[str, Any] | None:
        """The server the shadow test ran ``version`` on, when it still runs: the deploy
        serves from it instead of starting another."""
        kept = self._warm.pop(env, None)
        if kept and kept.get("version") == version.version and procs.alive(kept.get("process")):
            return kept
        if kept:
            procs.stop(self.state, kept.get("process"))
        return None

    def record_shadow(self, env: str, record: str) -> None:
        """Keep ``env``'s last shadow result beside its routes (``status`` shows it)."""
        write_json_atomic(local_shadow.record_file(self.state, env), {"record": record})
        self.state.journal("RecordShadowResult", self.project.endpoint_name(env), record=record)

    def down(self) -> list[dict[str, Any]]:
        """Stop every process of every environment and forget the endpoints."""
        return stop_everything(self.state)

    # -- internals --------------------------------------------------------------------------
    def _spawn_server(self, env: str, version: ModelVersion) -> dict[str, Any]:
        """Start ``version``'s server (detached); return its routing target."""
        opt_ml = self._extract_model(version)
        src = served_code(self.state, version.group, version.version, self.project.root / "src")
        port = procs.free_port()
        env_vars = image.environment(src, self.project.package, os.environ)
        env_vars.update(
            OPT_ML_ROOT=str(opt_ml),
            SAGEMAKER_BIND_TO_PORT=str(port),
            # The server the image runs (gunicorn, workers forked after the model is loaded), so
            # a model that breaks under it breaks here first; one worker is enough on loopback.
            MODEL_SERVER="gunicorn",
            SAGEMAKER_MODEL_SERVER_WORKERS=os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or "1",
            PYTHONUNBUFFERED="1",
        )
        command = image.command(sys.executable, "serve")
        command += ["--host", "127.0.0.1", "--port", str(port)]
        record = procs.spawn(
            self.state,
            f"{env}-server-v{version.version}-{port}",
            command,
            env=env_vars,
            cwd=opt_ml,
            role="server",
            extra={"env": env, "version": version.version},
        )
        return {
            "variant": f"version-{version.version}",
            "version": version.version,
            "url": f"http://127.0.0.1:{port}",
            "weight": 100,
            "process": record,
            "code": str(src),
        }

    def _await_healthy(
        self,
        env: str,
        version: ModelVersion,
        target: dict[str, Any],
        current: EndpointState | None,
    ) -> dict[str, Any]:
        """The target once its server answers /ping; else stop it and raise naming the reason.

        The port was free when picked but another process may take it before the server binds
        it: a server that exits with "Address already in use" is retried on a new port.
        """
        for attempt in range(PORT_ATTEMPTS):
            problem = self._wait_healthy(target["url"], target["process"])
            if not problem:
                return target
            procs.stop(self.state, target["process"])
            if "Address already in use" not in problem or attempt == PORT_ATTEMPTS - 1:
                break
            target = self._spawn_server(env, version)
        serving = (
            f"version {current.model_version} keeps serving"
            if current and current.status == "InService"
            else "nothing was serving before"
        )
        raise CIError(
            f"endpoint {self.project.endpoint_name(env)}: version {version.version} failed "
            f"its health check ({problem}); {serving}"
        )

    def _wait_healthy(self, url: str, record: dict[str, Any]) -> str:
        """ "" once GET /ping answers 200; else why not (process exited, timeout)."""
        deadline = time.monotonic() + self.health_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not procs.alive(record):
                return f"server exited: {procs.tail(Path(record['log']), 4)}"
            code, body = _request(url, "GET", "/ping", timeout=1.0)
            if code == 200:
                return ""
            if code:
                last = f"/ping answered {code}: {body[:120]!r}"
            time.sleep(0.05)
        return f"no healthy /ping within {self.health_timeout:.0f} s ({last})"

    def _extract_model(self, version: ModelVersion) -> Path:
        """``model.tar.gz`` -> models/<group>/<version>/opt_ml/model (once; reused after)."""
        target = self.state.model_dir(version.group, version.version)
        opt_ml = target / "opt_ml"
        if (opt_ml / "model").is_dir():
            return opt_ml
        url = version.model_data_url
        try:
            archive = self.state.s3_path(url)
        except CIError:
            raise CIError(
                f"{version.arn}: model data {url!r} is not a local s3:// location"
            ) from None
        if not archive.is_file():
            raise CIError(f"{version.arn}: model data {url} not found (local copy {archive})")
        target.mkdir(parents=True, exist_ok=True)
        import tarfile  # only a deploy of a version not yet extracted opens its archive

        scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
        try:
            with tarfile.open(archive) as tar:
                _safe_extract(tar, scratch / "model")
            with contextlib.suppress(FileExistsError, OSError):
                os.rename(scratch, opt_ml)  # a concurrent deploy may have won the race
        except (tarfile.TarError, OSError) as exc:
            raise CIError(f"{version.arn}: model data {url} cannot be extracted: {exc}") from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return opt_ml

    def _read_routes(self, env: str) -> dict[str, Any]:
        """The routes of ``env``; a damaged routes file means starting over: this env's
        processes (found by their marks, see ``local_processes``) are stopped and the deploy
        goes on as a first one, instead of failing while they keep listening."""
        path = self.state.endpoint_file(env)
        try:
            return read_json(path) or {}
        except CIError:
            found = [r for r in procs.every_process(self.state) if r.get("env") == env]
            procs.stop_many(self.state, found)
            path.unlink(missing_ok=True)
            self.state.journal("DeleteEndpoint", self.project.endpoint_name(env), reason=str(path))
            return {}

    def _router_record(self, env: str) -> dict[str, Any] | None:
        """The router's pid record; when it is lost or damaged, the router found by its mark
        (without url and port: ``_ensure_router`` restarts it)."""
        try:
            record = read_json(self.state.home / "pids" / f"{env}-router.json")
        except CIError:
            record = None
        if isinstance(record, dict) and record.get("pid"):
            return record
        name = f"{env}-router"
        return next((r for r in procs.discovered(self.state) if r["name"] == name), None)

    def _ensure_router(self, env: str, routes: dict[str, Any]) -> dict[str, Any]:
        """The running router of ``env``, started (on its old port if free) when needed."""
        record = self._router_record(env)
        if procs.alive(record) and record.get("url"):  # type: ignore[union-attr]
            return record  # type: ignore[return-value]
        procs.stop(self.state, record)
        info = self.state.router_file(env)
        for port in dict.fromkeys([int(routes.get("port") or 0), 0]):
            info.unlink(missing_ok=True)
            command = [sys.executable, "-m", "ci_scripts.backends.local.router"]
            command += ["--routes", str(self.state.endpoint_file(env)), "--info", str(info)]
            command += ["--capture-dir", str(self.state.capture_dir(env)), "--port", str(port)]
            env_vars = dict(os.environ)
            package_parent = str(Path(ci_scripts.__file__).resolve().parent.parent)
            env_vars["PYTHONPATH"] = os.pathsep.join(
                p for p in (package_parent, os.environ.get("PYTHONPATH")) if p
            )
            record = procs.spawn(
                self.state,
                f"{env}-router",
                command,
                env=env_vars,
                cwd=self.state.root,
                role="router",
                extra={"env": env},
            )
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and procs.alive(record):
                facts = read_json(info)
                if facts and facts.get("pid") == record["pid"]:
                    record.update(port=facts["port"], url=facts["url"])
                    old_port = int(routes.get("port") or 0)
                    if old_port and facts["port"] != old_port:
                        log.warning(
                            "endpoint %s: its address http://127.0.0.1:%s is taken by another "
                            "process; it moved to %s (callers of the old URL must change)",
                            self.project.endpoint_name(env),
                            old_port,
                            facts["url"],
                        )
                    write_json_atomic(self.state.dir("pids") / f"{env}-router.json", record)
                    return record
                time.sleep(0.01)
            procs.stop(self.state, record)
        raise CIError(
            f"endpoint {self.project.endpoint_name(env)}: the local router did not start: "
            f"{procs.tail(Path(record['log']), 3)}"
        )

    def _canary(
        self,
        env: str,
        router: dict[str, Any],
        version: ModelVersion,
        new: dict[str, Any],
        routes: dict[str, Any],
        wanted: dict[str, Any],
    ) -> str:
        """Route the canary share to ``new`` (all the traffic when the fleet is too small for
        a canary) and watch it; on failure restore the old routes and raise (the caller stops
        the new server). Returns the rollout's description."""
        from ci_scripts.backends.local import canary as local_canary

        settings = local_canary.CanarySettings.from_manifest(wanted)
        if not routes.get("targets"):
            return ""
        if settings.window <= 0:
            return f"{settings.rollout} (no bake: canary_wait_seconds is 0)"
        split_old = [] if settings.percent >= 100 else routes["targets"]  # all at once
        name, serving = self.project.endpoint_name(env), routes.get("model_version")
        source = {SOURCE_KEY: routes.get("source")}
        old_manifest = routes.get("manifest", {})
        keep = routes.get("previous_version")
        split = [{**t, "weight": 100 - settings.percent} for t in split_old]
        split.append({**new, "weight": settings.percent})

        def restore() -> None:
            self._write_routes(
                env,
                router,
                serving,
                routes["targets"],
                old_manifest,
                source,
                previous=keep,
                op="RollbackCanary",
            )
            self._confirm_switch(env, router, routes["targets"])

        try:
            self._write_routes(
                env, router, serving, split, old_manifest, source, previous=keep, op="StartCanary"
            )
            self._confirm_switch(env, router, split)
            rows = local_canary.probe_rows(self.project.root)
            problem = local_canary.watch(router["url"], new, settings, rows, _request)
        except BaseException:
            # Ctrl-C, SIGTERM or any failure mid-canary: the old version takes all traffic
            # again before the caller stops the new server (no share routed to a dead server).
            # The routes file is the truth the router re-reads, so a failed confirm is no reason
            # to hide the interrupt.
            with contextlib.suppress(CIError):
                restore()
            raise
        if not problem:
            return settings.rollout
        restore()
        raise CIError(
            f"endpoint {name}: rollout of version {version.version} rolled back "
            f"({settings.rollout}): {problem}; version {serving} keeps serving"
        )

    def _write_routes(
        self,
        env: str,
        router: dict[str, Any],
        version: int,
        targets: list[dict[str, Any]],
        wanted: dict[str, Any],
        manifest: dict[str, Any],
        *,
        previous: int | None = None,
        op: str = "",
        shadow: dict[str, Any] | None = None,
    ) -> None:
        capture = dataclasses.asdict(spec(wanted).data_capture)  # what the router samples by
        path = self.state.endpoint_file(env)
        self.state.journal(
            op or ("UpdateEndpoint" if path.exists() else "CreateEndpoint"),
            self.project.endpoint_name(env),
            model_version=version,
            **({"canary_version": targets[-1].get("version")} if op else {}),
        )
        write_json_atomic(
            self.state.endpoint_file(env),
            {
                "name": self.project.endpoint_name(env),
                "env": env,
                "url": router["url"],
                "port": router["port"],
                "model_version": version,
                "previous_version": previous,
                "targets": targets,
                "data_capture": capture,
                "manifest": wanted,
                "source": manifest.get(SOURCE_KEY),
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                **({"shadow": shadow} if shadow else {}),
            },
        )

    def _confirm_switch(
        self, env: str, router: dict[str, Any], targets: list[dict]
    ) -> dict[str, Any]:
        """Make the router re-read the routes now, and check it routes to ``targets``; return
        the router's status as of the switch."""
        code, body = _request(router["url"], "POST", "/__router__/reload", b"", timeout=5.0)
        urls = sorted(t["url"] for t in targets)
        try:
            status = json.loads(body)
            routed = sorted(t["url"] for t in status.get("targets", []))
        except (ValueError, AttributeError):
            status, routed = {}, []
        if code != 200 or routed != urls:
            raise CIError(
                f"endpoint {self.project.endpoint_name(env)}: the router did not take the new "
                f"routes (answered {code}); run `ci_scripts local down` and deploy again"
            )
        return status

    @staticmethod
    def _drain(router: dict[str, Any], status: dict[str, Any], old_urls: list[str]) -> None:
        """Wait until the router has answered every request it sent to ``old_urls`` (it sends
        them no new one since the switch): the old servers may then stop without cutting one."""
        if "in_flight" not in status:  # a router of an earlier version: no count to read
            time.sleep(DRAIN_PAUSE)
            return
        # here, not at the top: reading state (status) must not import the router's http.server
        from ci_scripts.backends.local.router import UPSTREAM_TIMEOUT

        deadline = time.monotonic() + UPSTREAM_TIMEOUT
        in_flight = status["in_flight"]
        while any(url in in_flight for url in old_urls) and time.monotonic() < deadline:
            time.sleep(0.01)
            code, body = _request(router["url"], "GET", "/__router__/status", timeout=5.0)
            with contextlib.suppress(ValueError, AttributeError):
                in_flight = json.loads(body).get("in_flight", {}) if code == 200 else in_flight

    @contextlib.contextmanager
    def _lock(self, env: str) -> Iterator[None]:
        path = self.state.dir("endpoints") / f"{env}.lock"
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CIError(
                    f"endpoint {self.project.endpoint_name(env)}: another local deploy of {env} "
                    "is in progress; run again when it has finished"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _locked(self, env: str) -> bool:
        """Does a deploy hold ``env``'s lock? Asked with a shared lock on a file opened for
        reading: a read (status) writes nothing, so it works on a read-only .mlops."""
        path = self.state.home / "endpoints" / f"{env}.lock"
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False  # no lock file: no deploy ever held it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the shared lock too
        return False


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and directories only, never outside ``dest``."""
    import tarfile

    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tar.extractall(dest, filter="data")
        return
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(dest.resolve()):
            raise tarfile.TarError(f"refusing archive member {member.name!r}")
    tar.extractall(dest)  # every member was checked above


def stop_everything(state: LocalState) -> list[dict[str, Any]]:
    """``local down``: stop every recorded process, forget the endpoints; return what ran."""
    stopped = procs.stop_all(state)
    folder = state.home / "endpoints"
    if folder.is_dir():
        for path in folder.glob("*.json"):
            with contextlib.suppress(OSError):  # read-only: what ran is stopped all the same
                path.unlink(missing_ok=True)
    return stopped


def _request(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """One HTTP request on loopback; (0, reason) when nothing answers."""
    import http.client  # here: reading an environment with nothing deployed sends no request

    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as exc:
        return 0, str(exc).encode()
    finally:
        conn.close()
