"""Serve step: the model behind SageMaker's hosting contract (GET /ping, POST /invocations).

SageMaker hosting runs ``<image> serve`` and sends traffic to port 8080 (or
``$SAGEMAKER_BIND_TO_PORT``). The WSGI app here is served two ways:

* ``gunicorn`` (default): what the image runs, and what the local backend runs too
  (``python -m ci_scripts.runtime serve --port N`` on 127.0.0.1), so a model that misbehaves
  under it fails locally first. The model is loaded once, before gunicorn forks its workers.
* ``wsgiref``: the standard library's server with a thread per request (``--server wsgiref``),
  for in-process tests and debugging.

OpenMP runtimes (used by xgboost, lightgbm, some numpy builds) can hang in a worker forked after
they started threads. ``OMP_NUM_THREADS`` defaults to 1 before any model code is imported
(an explicit setting wins): a worker per core already uses the cores.

Requests: ``text/csv`` rows without a header, features in training order (an empty cell is a missing
value, a quoted cell may hold commas), or ``application/json`` ``{"instances": [...]}`` where an
instance is a list in training order or an object keyed by feature name, its values numbers,
strings, booleans or null (schema.py declares each feature's kind; a category the model never saw is
answered, its own preprocessing encodes it as none of the known ones). Response: ``{"predictions":
[...]}``, one object per row as ``model.response`` builds it and ``model.PREDICTION_SCHEMA``
describes it, with the class names schema.py declares. With ``Accept: text/csv`` (what batch
transform sends) the answer is one CSV line per row instead, the prediction columns only
(``csv_columns``: each field of the object in order, a list spread over one column per item), so
SageMaker can join it to the input line. Bad input gets a 4xx with a one-line JSON ``{"error":
"..."}`` naming the row and column.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import model, model_artifacts, paths, quick_exit
from .errors import StepError
from .features import parse_feature_rows

# Before numpy/sklearn/the model are imported (they are, lazily, after this module): see above.
os.environ.setdefault("OMP_NUM_THREADS", "1")

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time invocations carry at most 6 MB
DRAIN_SECONDS = 30.0  # how long a refused body is read and dropped before the answer
SERVERS = ("gunicorn", "wsgiref")

StartResponse = Callable[..., Any]


class RequestError(StepError):
    """A request the client must fix; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: str = "400 Bad Request") -> None:
        super().__init__(message)
        self.status = status


class InferenceApp:
    """WSGI application answering /ping and /invocations for one loaded model."""

    def __init__(self, model: model_artifacts.TrainedModel) -> None:
        self.model = model
        self.features = model.features

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/ping":
            if method != "GET":
                return _method_not_allowed(start_response, "GET")
            return _respond(start_response, "200 OK", {"status": "healthy"})
        if path == "/invocations":
            if method != "POST":
                return _method_not_allowed(start_response, "POST")
            try:
                body = _read_body(environ)
                result = self.invoke(environ.get("CONTENT_TYPE", ""), body)
                if wants_csv(environ.get("HTTP_ACCEPT", "")):
                    return _respond_csv(start_response, result["predictions"])
            except RequestError as exc:
                return _respond(start_response, exc.status, _error(str(exc)))
            except StepError as exc:
                return _respond(start_response, "400 Bad Request", _error(str(exc)))
            except Exception:  # answer 500 as JSON, keep the traceback in the log
                log.exception("invocation failed")
                return _respond(
                    start_response, "500 Internal Server Error", _error("prediction failed")
                )
            return _respond(start_response, "200 OK", result)
        return _respond(start_response, "404 Not Found", _error(f"no route {path}"))

    def invoke(self, content_type: str, body: bytes) -> dict[str, Any]:
        """Predict for one request body; raises StepError (-> 4xx) for bad input."""
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not body.strip():
            raise RequestError("empty request body")
        if media_type == "text/csv":
            rows: list[Sequence[object] | dict[str, object]] = list(self._csv_rows(body))
        elif media_type == "application/json":
            rows = self._json_rows(body)
        else:
            raise RequestError(
                f"content type {content_type or '(none)'!r} not supported; "
                "send text/csv or application/json",
                "415 Unsupported Media Type",
            )
        table = parse_feature_rows(rows, self.features)
        return {"predictions": model.response(self.model.predict(table))}

    @staticmethod
    def _csv_rows(body: bytes) -> list[Sequence[object]]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("text/csv body is not UTF-8") from None
        try:
            return [row for row in csv.reader(text.splitlines()) if any(c.strip() for c in row)]
        except csv.Error as exc:
            raise RequestError(f"malformed CSV: {exc}") from None

    def _json_rows(self, body: bytes) -> list[Sequence[object] | dict[str, object]]:
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise RequestError(f"invalid JSON: {exc}") from None
        instances = document.get("instances") if isinstance(document, dict) else None
        if not isinstance(instances, list):
            raise RequestError('expected a JSON object {"instances": [[...], ...]}')
        for number, instance in enumerate(instances, start=1):
            if not isinstance(instance, dict | list):
                raise RequestError(f"row {number}: expected a list of values or an object")
        return instances


def wants_csv(accept: str) -> bool:
    """True when the client's first choice is ``text/csv`` (batch transform's ``Accept``)."""
    first = accept.split(",", 1)[0].split(";", 1)[0].strip().lower()
    return first == "text/csv"


def csv_values(prediction: dict[str, Any]) -> list[object]:
    """One prediction object as its CSV columns: its fields in order, lists spread out."""
    values: list[object] = []
    for value in prediction.values():
        values.extend(value if isinstance(value, list) else [value])
    return values


def csv_columns(prediction: dict[str, Any]) -> list[str]:
    """The column names of ``csv_values``: a list field ``f`` gives ``f_0``, ``f_1``, ..."""
    names: list[str] = []
    for key, value in prediction.items():
        names.extend(
            [f"{key}_{i}" for i in range(len(value))] if isinstance(value, list) else [key]
        )
    return names


def _respond_csv(start_response: StartResponse, predictions: list[dict[str, Any]]) -> list[bytes]:
    lines = [",".join(_csv_cell(v) for v in csv_values(p)) for p in predictions]
    body = "".join(f"{line}\n" for line in lines).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/csv"), ("Content-Length", str(len(body)))])
    return [body]


def _csv_cell(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _error(message: str) -> dict[str, str]:
    return {"error": " ".join(message.split())}  # always one line


def _respond(
    start_response: StartResponse,
    status: str,
    payload: object,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    body = json.dumps(payload).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(status, [*headers, *extra_headers])
    return [body]


def _method_not_allowed(start_response: StartResponse, allowed: str) -> list[bytes]:
    return _respond(
        start_response, "405 Method Not Allowed", _error(f"use {allowed}"), [("Allow", allowed)]
    )


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestError("invalid Content-Length") from None
    if length > MAX_BODY_BYTES:
        _discard(environ["wsgi.input"], length)
        raise RequestError(
            f"request body of {length} bytes exceeds {MAX_BODY_BYTES} "
            "(SageMaker real-time invocations carry at most 6 MB)",
            "413 Content Too Large",
        )
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _discard(stream: Any, length: int) -> None:
    """Read and drop a refused body (for up to DRAIN_SECONDS), so the client, still sending it,
    reads the 413: a server that closes a socket with unread data resets the connection, and
    the client sees "Broken pipe" or "Connection reset" instead of the answer."""
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        while length > 0 and time.monotonic() < deadline:
            chunk = stream.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)
    except OSError:
        return  # the client gave up sending


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """wsgiref's server with a thread per request, so a slow client does not block /ping."""

    daemon_threads = True


class _LoggingHandler(WSGIRequestHandler):
    """Access log through ``logging`` instead of wsgiref's bare stderr writes."""

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_http_server(app: InferenceApp, host: str, port: int) -> ThreadingWSGIServer:
    """Bind ``app`` on ``host:port`` (0 picks a free port: read it from ``server_port``)."""
    try:
        return make_server(
            host, port, app, server_class=ThreadingWSGIServer, handler_class=_LoggingHandler
        )
    except OSError as exc:
        raise StepError(f"{host}:{port}: cannot listen: {exc.strerror or exc}") from None


def _serve_wsgiref(app: InferenceApp, host: str, port: int) -> None:
    server = make_http_server(app, host, port)

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)  # SageMaker and the local backend stop us with SIGTERM
    print(f"listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _serve_gunicorn(app: InferenceApp, host: str, port: int) -> None:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise StepError(
            "MODEL_SERVER=gunicorn: gunicorn is not installed (a dependency in pyproject.toml: "
            "reinstall the project); or use --server wsgiref"
        ) from None
    options = {
        "bind": f"{host}:{port}",
        "workers": _env_int("SAGEMAKER_MODEL_SERVER_WORKERS", os.cpu_count() or 1),
        "timeout": _env_int("SAGEMAKER_MODEL_SERVER_TIMEOUT", 60),
        "preload_app": True,
        "accesslog": "-",
        "when_ready": _announce,
        "worker_exit": _worker_exit,
        "on_exit": _arbiter_exit,
    }

    class _Gunicorn(BaseApplication):  # gunicorn's documented embedding API
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            # gunicorn >= 25.1 opens a control socket at one path per user, $HOME/.gunicorn/
            # gunicorn.ctl, which each server started on the machine takes from the one before
            # (the local backend runs several); nothing here uses it (gunicornc)
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> InferenceApp:
            return app

    _Gunicorn().run()


def _announce(server: Any) -> None:
    """gunicorn's when_ready hook: say where it listens, as the wsgiref server does (port 0)."""
    host, port = server.LISTENERS[0].sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", flush=True)


def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook: a worker ends with the status it was exiting with, without
    the interpreter's teardown (quick_exit.py: 0.3-0.5 s of CPU per stop, for nothing). The
    arbiter calls this hook too, for workers it found gone: only the worker itself exits here.
    """
    exiting = sys.exc_info()[1]
    if os.getpid() == worker.pid and isinstance(exiting, SystemExit):
        quick_exit.end_process(quick_exit.exit_status(exiting.code))


def _arbiter_exit(server: Any) -> None:
    """gunicorn's on_exit hook: once the arbiter has stopped its workers and is about to exit
    (halt), end it as :func:`_worker_exit` ends a worker, with the status halt would give."""
    stopping = sys.exc_info()[1]
    if isinstance(stopping, (StopIteration, KeyboardInterrupt)):
        quick_exit.end_process(0)
    status = getattr(stopping, "exit_status", None)  # gunicorn's HaltServer
    if isinstance(status, int):
        quick_exit.end_process(status)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise StepError(f"{name}: {value!r} is not an integer") from None
    if number < 0:
        raise StepError(f"{name}: {value!r} must not be negative")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``serve [--host H] [--port N] [--model-dir DIR] [--server wsgiref|gunicorn]``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} serve", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("SERVE_HOST") or "127.0.0.1",
        help="address to bind ($SERVE_HOST, default 127.0.0.1; the image sets 0.0.0.0)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port ($SAGEMAKER_BIND_TO_PORT, default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="model directory or model.tar.gz (default $OPT_ML_ROOT/model)",
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=os.environ.get("MODEL_SERVER") or "gunicorn",
        help="HTTP server ($MODEL_SERVER, default gunicorn, as in the image)",
    )
    args = parser.parse_args(argv)
    if args.server not in SERVERS:
        raise StepError(f"MODEL_SERVER: {args.server!r} is not one of {', '.join(SERVERS)}")
    port = args.port if args.port is not None else _env_int("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT)
    if not 0 <= port <= 65535:
        raise StepError(f"port {port} is out of range 0-65535")
    app = InferenceApp(model_artifacts.load(args.model_dir or paths.model_dir()))
    if args.server == "gunicorn":
        _serve_gunicorn(app, args.host, port)
    else:
        _serve_wsgiref(app, args.host, port)
    return 0
