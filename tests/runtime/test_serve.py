"""Serve: the real HTTP server on a loopback port, answering SageMaker's /ping and /invocations.

Most tests drive the in-process wsgiref server (fast); the CLI test runs ``serve`` as the image and
the local backend do, under gunicorn with a worker forked after the model loaded, and sends it
real requests. Expectations come from model.py (its response and schema) and the test split.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from conftest import meets_gate

from ci_scripts.runtime import model, serve
from ci_scripts.runtime.features import FEATURES, KINDS, frame, read_labelled_dir, to_arrays

N = len(FEATURES)
TWENTY_MB = b"1," * (10 * 1024 * 1024)  # over SageMaker's 6 MB invocation limit


def request(
    url: str, body: bytes | None = None, content_type: str = "text/csv", method: str | None = None
) -> tuple[int, dict]:
    """``(status, JSON body)`` of one real HTTP request; 4xx/5xx are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def base_url(trained_model) -> Iterator[str]:
    """The real threaded WSGI server on a free loopback port, in a background thread."""
    server = serve.make_http_server(serve.InferenceApp(trained_model), "127.0.0.1", 0)
    # A short poll: shutdown() waits for serve_forever's next poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def sample_rows(trained_root: Path) -> tuple[list[list[str]], list[str]]:
    """Feature rows (as the file spells them) and targets of the first five test rows."""
    with (trained_root / "processing" / "test" / "test.csv").open(newline="") as handle:
        _, *rows = csv.reader(handle)
    return [row[1:] for row in rows[:5]], [row[0] for row in rows[:5]]


def test_ping(base_url: str) -> None:
    assert request(f"{base_url}/ping") == (200, {"status": "healthy"})


def test_csv_invocation(base_url: str, sample_rows, trained_model) -> None:
    rows, _ = sample_rows
    body = "\n".join(",".join(row) for row in rows).encode() + b"\n"
    status, answer = request(f"{base_url}/invocations", body)
    assert status == 200
    predictions = answer["predictions"]
    assert len(predictions) == len(rows)
    expected = model.response(trained_model.predict(frame(rows)))
    assert predictions == json.loads(json.dumps(expected))  # floats survive JSON exactly
    validator = jsonschema.Draft202012Validator(model.PREDICTION_SCHEMA)
    for prediction in predictions:
        validator.validate(prediction)


def test_accept_text_csv_answers_one_csv_line_per_row(base_url: str, sample_rows) -> None:
    """Batch transform sends ``Accept: text/csv`` and joins each answer line to its input line:
    the prediction columns only, the same values as the JSON answer, in row order."""
    rows, _ = sample_rows
    body = "\n".join(",".join(row) for row in rows).encode() + b"\n"
    _, answer = request(f"{base_url}/invocations", body)
    req = urllib.request.Request(f"{base_url}/invocations", data=body)
    req.add_header("Content-Type", "text/csv")
    req.add_header("Accept", "text/csv")
    with urllib.request.urlopen(req, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/csv"
        lines = response.read().decode().splitlines()
    assert len(lines) == len(rows)
    for line, prediction in zip(lines, answer["predictions"], strict=True):
        cells = next(csv.reader([line]))
        assert len(cells) == len(serve.csv_columns(prediction))
        assert [float(c) for c in cells] == [float(v) for v in serve.csv_values(prediction)]


def test_csv_columns_spread_lists() -> None:
    prediction = {"label": 2, "probabilities": [0.1, 0.2, 0.7]}
    assert serve.csv_columns(prediction) == [
        "label", "probabilities_0", "probabilities_1", "probabilities_2"
    ]  # fmt: skip
    assert serve.csv_values(prediction) == [2, 0.1, 0.2, 0.7]
    assert serve.wants_csv("text/csv; charset=utf-8, application/json")
    assert not serve.wants_csv("application/json, text/csv")
    assert not serve.wants_csv("")


def test_a_request_frame_has_the_training_dtypes_and_nan_for_gaps() -> None:
    """What the model sees from a request: float64 numbers and booleans, object categories (as
    training reads them, not pandas' string dtype), NaN for an empty cell, for one row or more."""
    text = {"categorical": "level{}", "boolean": ("false", "true"), "numeric": "{}.5"}

    def cell(name: str, row: int) -> str:
        kind = KINDS[name].KIND
        return text[kind][row % 2] if kind == "boolean" else text[kind].format(row)

    nullable = [i for i, name in enumerate(FEATURES) if KINDS[name].nullable]
    for count in (1, 3):
        rows = [[cell(name, i) for name in FEATURES] for i in range(count)]
        if nullable:
            rows[-1][nullable[0]] = ""  # a gap in the last row
        table = frame(rows)
        assert list(table.columns) == list(FEATURES) and len(table) == count
        for name in FEATURES:
            categorical = KINDS[name].KIND == "categorical"
            assert str(table[name].dtype) == ("object" if categorical else "float64"), name
        if nullable:
            assert table.iloc[-1, nullable[0]] != table.iloc[-1, nullable[0]]  # NaN
        first = {"categorical": "level0", "boolean": 0.0, "numeric": 0.5}
        if count > 1:
            assert [table.iloc[0][n] for n in FEATURES] == [first[KINDS[n].KIND] for n in FEATURES]


def test_the_model_is_good_on_the_test_split(trained_root: Path, trained_model) -> None:
    features, truth = to_arrays(read_labelled_dir(trained_root / "processing" / "test"))
    scores = model.metrics(truth, trained_model.predict(features))
    assert meets_gate(scores[model.PRIMARY_METRIC])


def test_json_invocation_matches_csv(base_url: str, sample_rows) -> None:
    rows, _ = sample_rows
    csv_status, csv_answer = request(
        f"{base_url}/invocations", "\r\n".join(",".join(row) for row in rows).encode()
    )
    as_lists = {"instances": [[float(v) for v in row] for row in rows]}
    as_objects = {"instances": [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]}
    for document in (as_lists, as_objects):
        status, answer = request(
            f"{base_url}/invocations", json.dumps(document).encode(), "application/json"
        )
        assert (status, answer) == (csv_status, csv_answer)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"1,2,3\n", "text/csv", 400, f"row 1: expected {N} values, got 3"),
        (None, "text/csv", 400, f"row 2: expected {N} values, got {N - 1}"),  # from real rows
        (
            b",".join([b"1"] * (N - 1) + [b"x"]),
            "text/csv",
            400,
            f"row 1, column '{FEATURES[-1]}': 'x' is not a number",
        ),
        (b"", "text/csv", 400, "empty request body"),
        (b"{", "application/json", 400, "invalid JSON"),
        (b'{"rows": []}', "application/json", 400, '"instances"'),
        (
            json.dumps({"instances": [{FEATURES[0]: 1}]}).encode(),
            "application/json",
            400,
            "missing feature",
        ),
        (b"1,2", "text/plain", 415, "not supported"),
    ],
)
def test_bad_requests_get_a_one_line_error(
    base_url: str, sample_rows, body: bytes | None, content_type: str, status: int, message: str
) -> None:
    if body is None:
        rows, _ = sample_rows
        body = f"{','.join(rows[0])}\n{','.join(rows[1][:-1])}\n".encode()
    got_status, answer = request(f"{base_url}/invocations", body, content_type)
    assert got_status == status
    assert message in answer["error"]
    assert "\n" not in answer["error"]


def test_wrong_method_and_path(base_url: str) -> None:
    assert request(f"{base_url}/invocations")[0] == 405
    assert request(f"{base_url}/ping", b"", method="POST")[0] == 405
    assert request(f"{base_url}/predict")[0] == 404


@pytest.mark.same_for_every_model
def test_cli_serves_until_terminated(trained_root: Path, tmp_path: Path, cli, sample_rows) -> None:
    """What the image and the local backend run: ``python -m <package> serve`` under gunicorn
    (the default server), a worker forked after the model loaded, answering real requests.
    Gunicorn's process model is the same for every model: each other problem type's model is
    served under gunicorn by its local loop's deploy and smoke test (tests/test_problem_types)."""
    argv, env = cli(tmp_path)  # an empty root: the model comes from --model-dir
    env["SAGEMAKER_MODEL_SERVER_WORKERS"] = "2"
    env["HOME"] = str(tmp_path / "home")  # where gunicorn >= 25.1 would open a control socket
    env.pop("XDG_RUNTIME_DIR", None)
    process = subprocess.Popen(
        [*argv, "serve", "--port", "0", "--model-dir", str(trained_root / "model")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of stdout: the server exited before (or after) saying it listens

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        # Generous: on a loaded 2-core CI machine importing sklearn alone can take seconds.
        first = lines.get(timeout=120)
        if not first:
            pytest.fail(f"serve exited {process.wait()} before listening: {process.stderr.read()}")
        assert first.startswith("listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        assert request(f"{url}/ping") == (200, {"status": "healthy"})
        rows = sample_rows[0]
        for row in rows:  # one request per row, then a batch: both go through gunicorn's workers
            status, answer = request(f"{url}/invocations", ",".join(row).encode())
            assert status == 200
            assert len(answer["predictions"]) == 1
        status, answer = request(f"{url}/invocations", "\n".join(map(",".join, rows)).encode())
        assert (status, len(answer["predictions"])) == (200, len(rows))
        status, answer = request(f"{url}/invocations", TWENTY_MB)  # gunicorn drops it too
        assert status == 413 and "exceeds" in answer["error"]
    finally:
        process.terminate()
        returncode = process.wait(timeout=30)
        stderr = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    assert returncode == 0, stderr
    assert "Booting worker" in stderr  # gunicorn, not the standard library's server
    # both workers and the arbiter ended (quick_exit: no teardown, the status kept)
    assert stderr.count("Worker exiting") == 2 and "Shutting down: Master" in stderr
    # no control socket at a path every server of the user shares (the local backend runs several)
    assert not (tmp_path / "home" / ".gunicorn").exists(), stderr


@pytest.mark.same_for_every_model
@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_openmp_threads_default_to_one(given: str | None, expected: str, cli, tmp_path) -> None:
    """A worker forked after OpenMP started threads can hang: one thread unless told otherwise."""
    argv, env = cli(tmp_path)
    env.pop("OMP_NUM_THREADS", None)
    if given:
        env["OMP_NUM_THREADS"] = given
    code = f"import os, {serve.__name__}; print(os.environ['OMP_NUM_THREADS'])"
    result = subprocess.run(
        [argv[0], "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == expected


@pytest.mark.same_for_every_model
def test_cli_without_a_model_fails_in_one_line(tmp_path: Path, run_cli) -> None:
    result = run_cli("serve", "--port", "0", root=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'model'}: not found; expected model.joblib or model.tar.gz"
    ]


def test_oversized_body_is_refused_and_drained(trained_model) -> None:
    app = serve.InferenceApp(trained_model)
    statuses = []
    stream = io.BytesIO(b"1," * (serve.MAX_BODY_BYTES // 2 + 1))
    environ = {
        "PATH_INFO": "/invocations",
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "text/csv",
        "CONTENT_LENGTH": str(len(stream.getvalue())),
        "wsgi.input": stream,
    }
    body = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["413 Content Too Large"]
    assert "exceeds" in json.loads(body)["error"]
    assert stream.tell() == len(stream.getvalue())  # read and dropped: the client is not reset


def test_a_20_mb_body_gets_413_not_a_reset(base_url: str) -> None:
    status, answer = request(f"{base_url}/invocations", TWENTY_MB)
    assert status == 413
    assert answer == {
        "error": f"request body of {len(TWENTY_MB)} bytes exceeds {serve.MAX_BODY_BYTES} "
        "(SageMaker real-time invocations carry at most 6 MB)"
    }
