"""The local canary: a share of traffic on the new version, watched like the aws rollback alarms.

On AWS, UpdateEndpoint's blue/green policy sends ``deployment.canary_percent`` of the traffic to the
new fleet for ``canary_wait_seconds`` while CloudWatch alarms (5xx errors above
``deployment.alarms.max_5xx_errors``, model latency above ``max_model_latency_ms``) may roll it
back; ci_scripts.canary sizes the canary from the fleet (a one-instance fleet shifts all at once
and bakes behind the same alarms). Locally the router plays the load balancer and counts 5xx
answers and latency per variant; this module decides whether the canary passed. A laptop has
no users, so the deploy sends the traffic itself: dataset rows through the router (marked as
probes, which the router never captures), so the canary gets its share of real requests. The
window is short locally: ``min(canary_wait_seconds, $CI_SCRIPTS_LOCAL_CANARY_SECONDS)``
(default 3 s).
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_scripts import canary
from ci_scripts.backends.local import processes as procs
from ci_scripts.backends.local.router import PROBE_HEADER
from ci_scripts.manifest import spec

CANARY_SECONDS_ENV = "CI_SCRIPTS_LOCAL_CANARY_SECONDS"
DEFAULT_WINDOW = 3.0
PROBES_PER_ROUND = 10  # with a 10 % canary, one of them reaches the new version
ROUND_PAUSE = 0.02
DATASET = Path("data") / "dataset.csv"

Request = Callable[..., tuple[int, bytes]]


@dataclass(frozen=True)
class CanarySettings:
    percent: int  # of the traffic on the new version while it bakes (100: all at once)
    window: float
    max_5xx_errors: int
    max_latency_ms: float
    rollout: str = ""  # ci_scripts.canary's one-line description

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> CanarySettings:
        """The same rollout policy as on AWS (ci_scripts.canary): a fleet too small for a canary
        takes all the traffic at once and bakes behind the same checks."""
        deployment = spec(manifest).deployment
        alarms = deployment.alarms
        cap = float(os.environ.get(CANARY_SECONDS_ENV) or DEFAULT_WINDOW)
        plan = canary.manifest_plan(manifest)
        return cls(
            rollout=plan.describe(),
            percent=plan.traffic_percent,
            window=max(0.0, min(float(deployment.canary_wait_seconds), cap)),
            max_5xx_errors=alarms.max_5xx_errors,
            max_latency_ms=float(alarms.max_model_latency_ms),
        )


def probe_rows(root: Path, limit: int = 20) -> list[bytes]:
    """Feature rows (CSV, no header, no target) from the shipped dataset: realistic requests."""
    path = root / DATASET
    rows: list[bytes] = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            keep = [i for i, name in enumerate(header) if name.strip() != "target"]
            for row in reader:
                if len(rows) >= limit:
                    break
                if row:
                    rows.append((",".join(row[i] for i in keep) + "\n").encode())
    return rows or [b"0\n"]


def variant_stats(router_url: str, request: Request, variant: str) -> dict[str, float]:
    code, body = request(router_url, "GET", "/__router__/status", timeout=5.0)
    try:
        stats = json.loads(body).get("stats", {}) if code == 200 else {}
    except ValueError:
        stats = {}
    return {
        key: float(stats.get(variant, {}).get(key, 0))
        for key in ("requests", "errors_5xx", "latency_ms_total")
    }


def watch(
    router_url: str,
    target: dict[str, Any],
    settings: CanarySettings,
    rows: list[bytes],
    request: Request,
) -> str:
    """Send traffic for the window and watch the canary target; "" when it passed, else why."""
    variant, version = str(target["variant"]), target.get("version")
    base = variant_stats(router_url, request, variant)
    deadline = time.monotonic() + settings.window
    sent = 0
    while True:
        if not procs.alive(target.get("process")):
            return f"the model server of version {version} exited"
        code, body = request(target["url"], "GET", "/ping", timeout=2.0)
        if code != 200:
            return f"health check failed: /ping of version {version} answered {code}: {body[:80]!r}"
        for _ in range(PROBES_PER_ROUND):
            headers = {"Content-Type": "text/csv", PROBE_HEADER: "canary"}
            request(router_url, "POST", "/invocations", rows[sent % len(rows)], headers, 10.0)
            sent += 1
        now = variant_stats(router_url, request, variant)
        seen = {key: now[key] - base[key] for key in now}
        if seen["errors_5xx"] > settings.max_5xx_errors:
            return (
                f"{seen['errors_5xx']:.0f} of {seen['requests']:.0f} canary requests to version "
                f"{version} answered 5xx (deployment.alarms.max_5xx_errors is "
                f"{settings.max_5xx_errors})"
            )
        if time.monotonic() >= deadline:
            break
        time.sleep(ROUND_PAUSE)
    if seen["requests"]:
        latency = seen["latency_ms_total"] / seen["requests"]
        if latency > settings.max_latency_ms:
            return (
                f"average latency of version {version} was {latency:.0f} ms "
                f"(deployment.alarms.max_model_latency_ms is {settings.max_latency_ms:.0f})"
            )
    return ""
