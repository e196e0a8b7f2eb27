"""The stable address of one local endpoint: a tiny reverse proxy on 127.0.0.1.

``python -m ci_scripts.backends.local.router --routes .mlops/endpoints/<env>.json ...``

A SageMaker endpoint keeps its URL while versions come and go behind it; locally the router plays
that part. It forwards ``/ping`` and ``/invocations`` to the model server(s) named in the routes
file (``targets``: url, variant, weight), which ``deploy`` replaces atomically: the router re-reads
it when its mtime changes, so switching versions is one rename, and ``POST /__router__/reload``
lets deploy confirm the switch before it stops the old server. Weighted targets carry a canary:
requests are spread by smooth weighted round robin (a 10 % target gets every tenth request, so a
short canary window sees a predictable share), and the router counts requests, 5xx answers and
latency per variant (``GET /__router__/status``), the local stand-in for the CloudWatch metrics
the aws backend's rollback alarms watch; the status also counts the requests each server has not
answered yet, so deploy stops an old server as soon as what was sent to it is answered. Sampled
requests are captured as SageMaker data-capture JSON lines under
``--capture-dir/<variant>/YYYY/MM/DD/HH/`` (not deploy's probes).

A shadow test (ci_scripts.shadow) adds a ``shadow`` target to the routes: every request (but the
canary's probes) is then mirrored to it in a thread of its own once the client has the live
answer, which is the only answer the client gets. Both answers, their status and latency and
the request's inference id (the caller's, else one made up for the pairing) are appended as one
JSON line to the target's ``log`` (``backends/local/shadow.py`` reads it).

Standard library only: it starts in milliseconds and never imports the model's dependencies.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTROL = "/__router__/"
FORWARDED_HEADERS = ("content-type", "accept")
VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"
PROBE_HEADER = "X-Ci-Scripts-Probe"  # deploy's canary traffic: counted, never captured
SHADOW_PROBE = "shadow"  # PROBE_HEADER value of the shadow test's own traffic: mirrored
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
UPSTREAM_TIMEOUT = 60.0
# SageMaker real-time invocations carry at most 6 MB (runtime/serve.py's MAX_BODY_BYTES: the
# router is standard library only and does not import it). A larger body is answered 413 here.
MAX_BODY_BYTES = 6 * 1024 * 1024
DRAIN_SECONDS = 30.0  # how long a refused body is read and dropped before the socket closes


class Routes:
    """The routes file, re-read whenever it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.data: dict[str, Any] = {}
        self._credit: dict[str, float] = {}  # smooth weighted round robin state, per url
        self._in_flight: dict[str, int] = {}  # requests forwarded and not yet answered, per url

    def current(self, force: bool = False) -> dict[str, Any]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if force or stamp != self._stamp:
                try:
                    self.data = json.loads(self.path.read_text(encoding="utf-8")) if stamp else {}
                except (OSError, ValueError):
                    return self.data  # mid-write by another tool: keep the last good table
                self._stamp = stamp
            return self.data

    def pick(self) -> dict[str, Any] | None:
        """One target by smooth weighted round robin (nginx's): deterministic shares."""
        targets = [t for t in self.current().get("targets", []) if t.get("weight", 0) > 0]
        if not targets:
            return None
        with self._lock:
            best = None
            for target in targets:
                key = target["url"]
                self._credit[key] = self._credit.get(key, 0.0) + target["weight"]
                if best is None or self._credit[key] > self._credit[best["url"]]:
                    best = target
            assert best is not None
            self._credit[best["url"]] -= sum(t["weight"] for t in targets)
            # Counted under the lock a reload takes: once a reload has answered, every request
            # sent to a target it removed is in this count, until :meth:`done`.
            self._in_flight[best["url"]] = self._in_flight.get(best["url"], 0) + 1
            return best

    def done(self, url: str) -> None:
        """A request :meth:`pick` sent to ``url`` has its answer (or failed)."""
        with self._lock:
            left = self._in_flight.get(url, 0) - 1
            if left > 0:
                self._in_flight[url] = left
            else:
                self._in_flight.pop(url, None)

    def in_flight(self) -> dict[str, int]:
        """Requests forwarded and not yet answered, per target url (only urls with some)."""
        with self._lock:
            return dict(self._in_flight)


class Stats:
    """Requests, 5xx answers and total latency per variant since the router started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.variants: dict[str, dict[str, float]] = {}

    def record(self, variant: str, status: int, milliseconds: float) -> None:
        with self._lock:
            row = self.variants.setdefault(
                variant, {"requests": 0, "errors_5xx": 0, "latency_ms_total": 0.0}
            )
            row["requests"] += 1
            row["errors_5xx"] += 1 if status >= 500 else 0
            row["latency_ms_total"] += milliseconds

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {k: dict(v) for k, v in self.variants.items()}


class Mirror:
    """Copies requests to the routes' shadow target and logs both answers (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.finished = 0
        self.driven = 0

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "mirrored": self.started,
                "pending": self.started - self.finished,
                "driven": self.driven,
            }

    def send(
        self,
        target: dict[str, Any],
        body: bytes,
        headers: dict[str, str],
        live: dict[str, Any],
        inference_id: str,
        driven: bool,
    ) -> None:
        with self._lock:
            self.started += 1
            self.driven += 1 if driven else 0
        thread = threading.Thread(
            target=self._mirror,
            args=(target, body, headers, live, inference_id, driven),
            daemon=True,
        )
        thread.start()

    def _mirror(
        self,
        target: dict[str, Any],
        body: bytes,
        headers: dict[str, str],
        live: dict[str, Any],
        inference_id: str,
        driven: bool,
    ) -> None:
        host, _, port = str(target["url"]).removeprefix("http://").partition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT)
        started = time.perf_counter()
        try:
            conn.request("POST", "/invocations", body=body or None, headers=headers)
            upstream = conn.getresponse()
            status, payload = upstream.status, upstream.read()
        except OSError as exc:
            status, payload = 502, str(exc).encode()
        finally:
            conn.close()
        shadow = {
            "status": status,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "body": payload.decode("utf-8", "replace"),
        }
        line = {"inference_id": inference_id, "driven": driven, "live": live, "shadow": shadow}
        try:
            with self._lock, Path(target["log"]).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, separators=(",", ":")) + "\n")
        finally:
            with self._lock:
                self.finished += 1


class Capture:
    """Appends sampled request/response pairs in SageMaker's data capture format.

    SageMaker samples at random; here sampling is deterministic (an even spread: at 20 % every
    fifth request), so the demos and tests that judge captured data give the same answer on
    every run.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._credit = 0.0  # percent accumulated since the last captured request

    def _sampled(self, percentage: float) -> bool:
        with self._lock:
            self._credit += percentage
            if self._credit < 100.0:
                return False
            self._credit -= 100.0
            return True

    def maybe_record(
        self,
        config: dict[str, Any],
        variant: str,
        request: tuple[str, bytes],
        response: tuple[str, bytes],
        inference_id: str | None,
    ) -> None:
        # ``config``: the routes' data_capture, both keys written by the endpoint host from the
        # manifest (ci_scripts.manifest.spec, whose defaults are the schema's)
        if not self.folder or not config.get("enabled"):
            return
        if not self._sampled(float(config["sampling_percentage"])):
            return
        now = datetime.now(UTC)
        event = {
            "captureData": {
                "endpointInput": _captured("INPUT", *request),
                "endpointOutput": _captured("OUTPUT", *response),
            },
            "eventMetadata": {
                "eventId": str(uuid.uuid4()),
                "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                **({"inferenceId": inference_id} if inference_id else {}),
            },
            "eventVersion": "0",
        }
        folder = self.folder / variant / now.strftime("%Y/%m/%d/%H")
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / f"capture-{os.getpid()}.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(event, separators=(",", ":")) + "\n")


def _captured(mode: str, content_type: str, body: bytes) -> dict[str, str]:
    kind = content_type.split(";")[0].strip().lower()
    encoding = {"text/csv": "CSV", "application/json": "JSON"}.get(kind)
    try:
        data = body.decode("utf-8") if encoding else None
    except UnicodeDecodeError:
        data = None
    if data is None:
        encoding, data = "BASE64", base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


class Handler(BaseHTTPRequestHandler):
    server: RouterServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == CONTROL + "status":
            self._json(200, self.server.status())
        elif self.path == "/ping":
            self._forward(b"")
        else:
            self._json(404, {"error": f"no route GET {self.path}"})

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` (curl's way with a large body): refuse before it is sent."""
        refusal = self._refusal()
        if refusal is None:
            return super().handle_expect_100()
        self.close_connection = True
        self._json(*refusal)
        return False

    def _refusal(self) -> tuple[int, dict[str, str]] | None:
        """The 4xx to answer, without reading it, to a body the router will not take."""
        declared = self.headers.get("Content-Length") or "0"
        try:
            length = int(declared)
        except ValueError:
            return 400, {"error": f"invalid Content-Length {declared[:40]!r}"}
        if length < 0:
            return 400, {"error": f"invalid Content-Length {declared[:40]!r}"}
        if length > MAX_BODY_BYTES:
            return 413, {
                "error": f"request body of {length} bytes exceeds {MAX_BODY_BYTES} "
                "(SageMaker real-time invocations carry at most 6 MB)"
            }
        return None

    def _discard_body(self) -> None:
        """Read and drop the body of a refused request, so a client still sending it reads the
        answer: closing a socket with unread data resets the connection, and the client would
        see "Broken pipe" or "Connection reset" instead of the 413."""
        self.close_connection = True
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return  # no length to read up to: the connection closes
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            self.connection.settimeout(5.0)  # a client that stops sending does not hold a thread
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    return
                left -= len(chunk)
        except OSError:
            return  # the client stopped sending once it had the answer

    def do_POST(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self.close_connection = True
            self._json(*refusal)  # answered first: a client that reads while it sends stops
            self._discard_body()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == CONTROL + "reload":
            self.server.routes.current(force=True)
            self._json(200, self.server.status())
        elif self.path == "/invocations":
            self._forward(body)
        else:
            self._json(404, {"error": f"no route POST {self.path}"})

    def _forward(self, body: bytes) -> None:
        target = self.server.routes.pick()
        if target is None:
            self._json(503, {"error": "endpoint has no model server to route to"})
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED_HEADERS}
        url = target["url"].removeprefix("http://")
        host, _, port = url.partition(":")
        variant = str(target.get("variant", ""))
        conn = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT)
        started = time.perf_counter()
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            upstream = conn.getresponse()
            payload = upstream.read()
            status, content_type = upstream.status, upstream.getheader("Content-Type", "")
        except OSError as exc:
            self.server.stats.record(variant, 502, (time.perf_counter() - started) * 1000)
            self._json(502, {"error": f"model server {target.get('variant')}: {exc}"})
            return
        finally:
            conn.close()
            self.server.routes.done(target["url"])
        milliseconds = (time.perf_counter() - started) * 1000
        if self.path == "/invocations":
            self.server.stats.record(variant, status, milliseconds)
        probe = self.headers.get(PROBE_HEADER)
        inference_id = self.headers.get(INFERENCE_ID_HEADER)
        if self.path == "/invocations" and probe is None:  # captured before answering
            self.server.capture.maybe_record(
                self.server.routes.current().get("data_capture") or {},
                variant,
                (self.headers.get("Content-Type", ""), body),
                (content_type, payload),
                inference_id,
            )
        self._send(status, payload, content_type, {VARIANT_HEADER: variant})
        shadow = self.server.routes.current().get("shadow")
        if self.path == "/invocations" and shadow and probe in (None, SHADOW_PROBE):
            live = {
                "variant": variant,
                "status": status,
                "latency_ms": milliseconds,
                "body": payload.decode("utf-8", "replace"),
            }
            self.server.mirror.send(
                shadow, body, headers, live, inference_id or str(uuid.uuid4()), probe is not None
            )

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", {})

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # access log off: it is a hot path
        pass


class RouterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, routes: Routes, capture: Capture) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.routes = routes
        self.capture = capture
        self.stats = Stats()
        self.mirror = Mirror()

    def status(self) -> dict[str, Any]:
        table = self.routes.current()
        return {
            "pid": os.getpid(),
            "port": self.server_port,
            "targets": table.get("targets", []),
            "stats": self.stats.snapshot(),
            "shadow": self.mirror.counts(),
            "in_flight": self.routes.in_flight(),
        }


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local_router", description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=Path, required=True, help="routes file (JSON)")
    parser.add_argument("--info", type=Path, required=True, help="where to write pid and port")
    parser.add_argument("--capture-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    try:
        server = RouterServer(args.port, Routes(args.routes), Capture(args.capture_dir))
    except OSError as exc:
        print(f"error: 127.0.0.1:{args.port}: cannot listen: {exc}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{server.server_port}"
    _write_atomic(args.info, {"pid": os.getpid(), "port": server.server_port, "url": url})
    print(f"routing {url} per {args.routes}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
