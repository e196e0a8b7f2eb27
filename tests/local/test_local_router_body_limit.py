"""The local router refuses a body over SageMaker's 6 MB invocation limit with a 413 the client
reads (not a reset), without forwarding it to the model server."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from ci_scripts.backends.local import router

TWENTY_MB = b"1," * (10 * 1024 * 1024)


class _RefusingUpstream(BaseHTTPRequestHandler):
    """A model server that answers 413 without reading the body, as serve did before."""

    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.hits.append(self.path)
        body = b'{"error": "too large"}'
        self.send_response(413)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def router_port(tmp_path: Path) -> Iterator[int]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingUpstream)
    routes = tmp_path / "routes.json"
    target = {"url": f"http://127.0.0.1:{upstream.server_port}", "variant": "v1", "weight": 1}
    routes.write_text(json.dumps({"targets": [target]}))
    server = router.RouterServer(0, router.Routes(routes), router.Capture(None))
    # A short poll: shutdown() waits for serve_forever's next poll (0.5 s by default).
    threads = [
        threading.Thread(target=s.serve_forever, args=(0.02,), daemon=True)
        for s in (upstream, server)
    ]
    for thread in threads:
        thread.start()
    _RefusingUpstream.hits = []
    try:
        yield server.server_port
    finally:
        for s in (server, upstream):
            s.shutdown()
            s.server_close()


def test_a_20_mb_body_is_answered_413_in_one_json_line(router_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=30)
    try:
        conn.request("POST", "/invocations", body=TWENTY_MB, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        status, body = response.status, response.read()
    finally:
        conn.close()

    assert status == 413
    assert len(body.decode().splitlines()) == 1
    assert json.loads(body) == {
        "error": f"request body of {len(TWENTY_MB)} bytes exceeds {router.MAX_BODY_BYTES} "
        "(SageMaker real-time invocations carry at most 6 MB)"
    }
    assert _RefusingUpstream.hits == []  # never forwarded


def test_expect_100_continue_is_refused_before_the_body_is_sent(router_port: int) -> None:
    with socket.create_connection(("127.0.0.1", router_port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: 20000000\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in head
    assert "exceeds" in json.loads(body)["error"]


def test_a_body_under_the_limit_is_still_forwarded(router_port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=30)
    try:
        conn.request("POST", "/invocations", body=b"1,2\n", headers={"Content-Type": "text/csv"})
        assert conn.getresponse().status == 413  # the upstream's own answer, passed through
    finally:
        conn.close()
    assert _RefusingUpstream.hits == ["/invocations"]
