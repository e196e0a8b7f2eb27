"""Shadow tests: evidence, before prod switches, that the candidate behaves like the live model.

``deployment.shadow`` in deploy/prod.json (the schema holds its defaults): before prod switches
to a new version, the candidate runs beside the live version and receives a copy of prod's
traffic for a while (aws: a SageMaker shadow variant, ``backends/aws/shadow.py``; local: the
router mirrors each request, ``backends/local/shadow.py``). The backend measures what it can see
(per-variant requests, 5xx answers and model latency, and the pairs of live and shadow
predictions matched by inference id); this module, the same for both backends, judges those
figures against the manifest's limits and writes the report: one line for logs and the status
record, a markdown table for the job summary and the merged prod pull request.

Agreement is the share of paired requests whose predictions agree, read the way the model's
problem type reads an answer (``ci_scripts.problem_types``): the same label for classification,
``|shadow - live| <= agreement_tolerance`` for a regression's value. A request agrees when every
row of its answer agrees. Too few requests, or too few pairs, is too little evidence: it fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ci_scripts import problem_types
from ci_scripts.manifest import spec

SHADOW_PATH = "deployment.shadow"


@dataclass(frozen=True)
class ShadowPolicy:
    """``deployment.shadow`` of a defaulted manifest."""

    enabled: bool
    duration_minutes: int
    min_requests: int
    max_error_rate: float
    max_latency_increase_ms: float
    min_agreement: float
    agreement_tolerance: float

    @classmethod
    def from_manifest(cls, effective: dict[str, Any]) -> ShadowPolicy:
        shadow = spec(effective).deployment.shadow
        limits = shadow.limits
        return cls(
            enabled=shadow.enabled,
            duration_minutes=shadow.duration_minutes,
            min_requests=shadow.min_requests,
            max_error_rate=float(limits.max_error_rate),
            max_latency_increase_ms=float(limits.max_latency_increase_ms),
            min_agreement=float(limits.min_agreement),
            agreement_tolerance=float(limits.agreement_tolerance),
        )

    def describe(self, env: str = "prod") -> str:
        """What the policy will do, in one line (validate, promote's proposal body)."""
        if not self.enabled:
            return "off (deployment.shadow.enabled is false)"
        return (
            f"before {env} switches, the candidate shadows {env}'s traffic for "
            f"{self.duration_minutes} min; it passes with at least {self.min_requests} requests "
            f"and paired predictions, error rate <= {self.max_error_rate:.2%}, median latency "
            f"at most {self.max_latency_increase_ms:g} ms above the live version's, and "
            f"agreement >= {self.min_agreement:.1%} with the live predictions; otherwise the "
            "rollout stops and the live version keeps serving"
        )


@dataclass
class VariantFigures:
    """What one variant did during the window (latencies in milliseconds; None: not measured)."""

    variant: str
    version: int | None
    requests: int
    errors: int  # 5xx answers
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_avg_ms: float | None = None


@dataclass
class ShadowMeasurement:
    """A backend's figures of one shadow window; ``pairs`` are (live, shadow) response bodies
    of the same request, matched by inference id. ``traffic`` says which traffic it saw."""

    env: str
    live: VariantFigures
    shadow: VariantFigures
    pairs: list[tuple[bytes, bytes]]
    window_seconds: float
    traffic: str
    started: str = field(default_factory=lambda: _now())


@dataclass(frozen=True)
class Check:
    name: str
    field: str  # the manifest path of the limit
    limit: str
    measured: str
    passed: bool


@dataclass
class ShadowReport:
    """The verdict on one measurement."""

    measurement: ShadowMeasurement
    checks: list[Check]
    agreement: float | None
    paired: int

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def verdict(self) -> str:
        m = self.measurement
        head = f"shadow test of version {m.shadow.version} against live version {m.live.version}"
        if self.passed:
            return f"{head} passed: " + "; ".join(c.measured for c in self.checks)
        broken = "; ".join(
            f"{c.name} {c.measured}, limit {c.limit} ({SHADOW_PATH}.{c.field})" for c in self.failed
        )
        return f"{head} failed: {broken}"

    def record(self) -> str:
        """A compact line for the endpoint's record (an AWS tag value: letters, digits, spaces
        and ``_ . : / = + - @`` only, at most 256 characters), which ``status`` shows."""
        m = self.measurement
        latency = _latency_increase(m)
        parts = [
            "passed" if self.passed else "failed",
            m.started,
            f"v{m.shadow.version} vs v{m.live.version}",
            f"requests={m.shadow.requests}",
            f"errors={m.shadow.errors}",
            f"latency={latency:+.1f}ms" if latency is not None else "latency=unknown",
            f"agreement={self.agreement:.3f}" if self.agreement is not None else "agreement=none",
        ]
        if not self.passed:
            parts.append("broke=" + "+".join(c.field.rsplit(".", 1)[-1] for c in self.failed))
        return " ".join(parts)[:256]

    def markdown(self) -> str:
        m = self.measurement
        status = "passed" if self.passed else "**failed**: the rollout stopped"
        lines = [
            f"### Shadow test ({m.env}): version {m.shadow.version} against live version "
            f"{m.live.version}: {status}",
            "",
            "| check | limit | measured | result |",
            "|---|---|---|---|",
        ]
        for c in self.checks:
            result = "pass" if c.passed else "**FAIL**"
            lines.append(
                f"| {c.name} | {c.limit} (`{SHADOW_PATH}.{c.field}`) | {c.measured} | {result} |"
            )
        lines += [
            "",
            "| variant | version | requests | 5xx | median latency | p99 latency |",
            "|---|---|---|---|---|---|",
        ]
        for role, v in (("live", m.live), ("shadow", m.shadow)):
            lines.append(
                f"| {v.variant} ({role}) | v{v.version} | {v.requests} | {v.errors} | "
                f"{_ms(v.latency_p50_ms)} | {_ms(v.latency_p99_ms)} |"
            )
        lines += [
            "",
            f"Window: {m.window_seconds:g} s from {m.started}. Traffic: {m.traffic}.",
        ]
        return "\n".join(lines) + "\n"


def agreement(
    problem_type: str, pairs: list[tuple[bytes, bytes]], tolerance: float
) -> tuple[int, int]:
    """(agreeing, compared) over ``pairs``; a pair either side of which is no readable answer
    (an error body, another row count) is compared and disagrees."""
    kind = problem_types.get(problem_type)
    agreeing = 0
    for live_body, shadow_body in pairs:
        live, shadow = _rows(kind, live_body), _rows(kind, shadow_body)
        if live is None or shadow is None or len(live) != len(shadow) or not live:
            continue
        if all(_agree(kind, a, b, tolerance) for a, b in zip(live, shadow, strict=True)):
            agreeing += 1
    return agreeing, len(pairs)


def judge(policy: ShadowPolicy, measurement: ShadowMeasurement, problem_type: str) -> ShadowReport:
    """Every limit of ``policy`` against ``measurement``."""
    m = measurement
    shadow = m.shadow
    agreeing, paired = agreement(problem_type, m.pairs, policy.agreement_tolerance)
    share = agreeing / paired if paired else None
    checks = [
        Check(
            "requests to the shadow",
            "min_requests",
            f">= {policy.min_requests}",
            f"{shadow.requests} requests",
            shadow.requests >= policy.min_requests,
        ),
        Check(
            "paired predictions",
            "min_requests",
            f">= {policy.min_requests}",
            f"{paired} paired",
            paired >= policy.min_requests,
        ),
    ]
    rate = shadow.errors / shadow.requests if shadow.requests else None
    checks.append(
        Check(
            "error rate",
            "limits.max_error_rate",
            f"<= {policy.max_error_rate:.2%}",
            f"{rate:.2%} ({shadow.errors} of {shadow.requests} 5xx)"
            if rate is not None
            else "not measured (no requests)",
            rate is not None and rate <= policy.max_error_rate,
        )
    )
    increase = _latency_increase(m)
    checks.append(
        Check(
            "median latency increase",
            "limits.max_latency_increase_ms",
            f"<= {policy.max_latency_increase_ms:g} ms",
            f"{increase:+.1f} ms ({_ms(shadow.latency_p50_ms)} vs {_ms(m.live.latency_p50_ms)})"
            if increase is not None
            else "not measured",
            increase is not None and increase <= policy.max_latency_increase_ms,
        )
    )
    checks.append(
        Check(
            "agreement with live",
            "limits.min_agreement",
            f">= {policy.min_agreement:.1%}",
            f"{share:.1%} ({agreeing} of {paired})" if share is not None else "no paired requests",
            share is not None and share >= policy.min_agreement,
        )
    )
    return ShadowReport(m, checks, share, paired)


def _latency_increase(m: ShadowMeasurement) -> float | None:
    if m.shadow.latency_p50_ms is None or m.live.latency_p50_ms is None:
        return None
    return m.shadow.latency_p50_ms - m.live.latency_p50_ms


def _rows(kind: problem_types.ProblemType, body: bytes) -> list[dict[str, Any]] | None:
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list):
        return None
    try:
        return [kind.parse_prediction(p) for p in predictions]
    except ValueError:
        return None


def _agree(kind: problem_types.ProblemType, a: dict, b: dict, tolerance: float) -> bool:
    if kind.classification:
        return a["label"] == b["label"]
    return abs(a["value"] - b["value"]) <= tolerance


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` (0..100) percentile of ``values`` by nearest rank (CloudWatch's pNN)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]
