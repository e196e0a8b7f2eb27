"""The local shadow test: the router mirrors prod's requests to the candidate's server.

``LocalEndpoints.shadow_test`` starts the candidate's server beside the live one and adds it to
the routes as the ``shadow`` target; the router (``local_router``) then copies every request to
it after the client has the live answer and logs both answers with the inference id, status and
latency. This module drives and reads that window.

The window is ``$CI_SCRIPTS_LOCAL_SHADOW_SECONDS`` (default 1 s), capped by
``deployment.shadow.duration_minutes``: minutes of a laptop's idle endpoint would prove nothing
more than a second does. On a loaded machine it goes on (at most 4 windows or 5 s more) until
``min_requests`` requests were mirrored; the report gives the window's real length. A laptop
has no users, so while no other request arrives the deploy sends the smoke test's rows itself
(marked, so data capture skips them as it skips canary probes), otherwise ``min_requests`` could
never be met in a demo. The report says how many requests came from callers and how many the
deploy sent.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_scripts.backends.local.state import LocalState

if TYPE_CHECKING:
    from ci_scripts.shadow import ShadowMeasurement, ShadowPolicy, VariantFigures

SHADOW_SECONDS_ENV = "CI_SCRIPTS_LOCAL_SHADOW_SECONDS"
DEFAULT_SECONDS = 1.0
ROUND = 10  # requests the driver sends between looks at the router's counts
PENDING_WAIT = 5.0  # seconds to let mirrored requests still in flight finish
EXTRA_SECONDS = 5.0  # the longest a window goes on to reach min_requests on a loaded machine

Request = Callable[..., tuple[int, bytes]]


def window_seconds(policy: ShadowPolicy) -> float:
    cap = float(os.environ.get(SHADOW_SECONDS_ENV) or DEFAULT_SECONDS)
    return max(0.0, min(policy.duration_minutes * 60.0, cap))


def pairs_file(state: LocalState, env: str) -> Path:
    """Where the router logs the mirrored requests of ``env``'s shadow test."""
    return state.dir("shadow") / f"{env}-pairs.jsonl"


def record_file(state: LocalState, env: str) -> Path:
    """``env``'s last shadow result (``status`` shows it)."""
    return state.dir("shadow") / f"{env}.json"


def _counts(router_url: str, request: Request) -> dict[str, int]:
    code, body = request(router_url, "GET", "/__router__/status", timeout=5.0)
    try:
        found = json.loads(body).get("shadow", {}) if code == 200 else {}
    except ValueError:
        found = {}
    return {key: int(found.get(key, 0)) for key in ("mirrored", "pending", "driven")}


def drive(
    router_url: str, seconds: float, rows: list[bytes], request: Request, min_requests: int = 0
) -> float:
    """Keep prod busy for ``seconds``: the smoke test's rows whenever no caller's request came
    in since the last look, so callers' traffic is never crowded out by the deploy's own. On a
    loaded machine the window goes on (up to 4 windows, at most ``EXTRA_SECONDS``) until
    ``min_requests`` were mirrored. Returns how long the window really was."""
    # Imported here: the router's module brings http.server, which reading a record never needs.
    from ci_scripts.backends.local.router import PROBE_HEADER, SHADOW_PROBE

    started = time.monotonic()
    deadline = started + seconds
    last = deadline + min(EXTRA_SECONDS, 4 * seconds)
    sent = 0
    seen = first = _counts(router_url, request)
    while True:
        clock = time.monotonic()
        mirrored = seen["mirrored"] - first["mirrored"]
        if clock >= last or (clock >= deadline and mirrored >= min_requests):
            return clock - started
        now = _counts(router_url, request)
        callers = (now["mirrored"] - now["driven"]) - (seen["mirrored"] - seen["driven"])
        seen = now
        if callers > 0:
            time.sleep(0.05)  # real traffic arrives: watch it, send nothing
            continue
        headers = {"Content-Type": "text/csv", PROBE_HEADER: SHADOW_PROBE}
        for _ in range(ROUND):
            request(router_url, "POST", "/invocations", rows[sent % len(rows)], headers, 10.0)
            sent += 1
        # The deploy's own traffic is paced by both servers: the next round waits for the
        # mirrored copies, so a queue the driver built never counts as the candidate's latency.
        settle(router_url, request)


def settle(router_url: str, request: Request) -> None:
    """Wait (briefly) for mirrored requests still in flight to be logged."""
    deadline = time.monotonic() + PENDING_WAIT
    while time.monotonic() < deadline and _counts(router_url, request)["pending"] > 0:
        time.sleep(0.02)


def measurement(
    env: str,
    log: Path,
    live: tuple[str, int | None],
    shadow: tuple[str, int | None],
    seconds: float,
) -> ShadowMeasurement:
    """The figures of the router's log: every mirrored request is a pair (by inference id)."""
    from ci_scripts.shadow import ShadowMeasurement

    lines: list[dict[str, Any]] = []
    if log.is_file():
        for text in log.read_text(encoding="utf-8").splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue  # a line cut short by a crash: not evidence
    figures = [
        _figures(name, version, [line[side] for line in lines])
        for (name, version), side in ((live, "live"), (shadow, "shadow"))
    ]
    pairs = [
        (line["live"]["body"].encode(), line["shadow"]["body"].encode())
        for line in lines
        if line["live"]["status"] == 200 and line["shadow"]["status"] == 200
    ]
    driven = sum(1 for line in lines if line.get("driven"))
    callers = len(lines) - driven
    traffic = (
        f"{callers} requests from callers and {driven} smoke-test rows the deploy sent while no "
        f"other request arrived (local router mirror, {SHADOW_SECONDS_ENV} window)"
    )
    return ShadowMeasurement(env, figures[0], figures[1], pairs, seconds, traffic)


def _figures(variant: str, version: int | None, answers: list[dict[str, Any]]) -> VariantFigures:
    from ci_scripts.shadow import VariantFigures, percentile

    latencies = [float(a["latency_ms"]) for a in answers]
    return VariantFigures(
        variant=variant,
        version=version,
        requests=len(answers),
        errors=sum(1 for a in answers if int(a["status"]) >= 500),
        latency_p50_ms=percentile(latencies, 50),
        latency_p99_ms=percentile(latencies, 99),
        latency_avg_ms=sum(latencies) / len(latencies) if latencies else None,
    )
