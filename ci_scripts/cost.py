"""What an environment's endpoint costs to keep running, in instance-hours per month.

Instance-backed endpoints bill per instance-hour of their instance type, whether or not requests
arrive; serverless endpoints bill per request and hold no instances. So the figure a reviewer
needs is instances x hours at the fleet's minimum (what runs idle) and maximum (what autoscaling
may grow to), per instance type: ``status`` shows it per environment and proposal pull requests
show it with the change they make. Prices differ by region and change; multiply by the instance
type's hourly price (https://aws.amazon.com/sagemaker/pricing/), which uses a 730-hour month.
A batch deployment holds no instances between runs: each run bills its transform's instances
for as long as it runs, so its figure is instances per run (x the run's hours x runs a month).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ci_scripts.manifest import spec

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Capacity:
    """The fleet a manifest asks for: ``min_instances`` to ``max_instances`` of one type."""

    kind: str  # realtime | serverless | batch
    instance_type: str = ""
    min_instances: int = 0
    max_instances: int = 0

    @property
    def min_hours(self) -> int:
        return self.min_instances * HOURS_PER_MONTH

    @property
    def max_hours(self) -> int:
        return self.max_instances * HOURS_PER_MONTH

    def describe(self) -> str:
        """``2-4 x ml.m5.large: 1,460-2,920 instance-hours/month``."""
        if self.kind == "batch":
            return (
                f"{self.min_instances} x {self.instance_type} per batch run: billed while a run "
                "runs (instance-hours = instances x run hours x runs a month), none between runs"
            )
        if self.kind != "realtime":
            return "serverless: billed per request, no instance-hours"
        return (
            f"{_span(self.min_instances, self.max_instances)} x {self.instance_type}: "
            f"{_span(self.min_hours, self.max_hours)} instance-hours/month"
        )


def capacity(manifest: dict[str, Any]) -> Capacity:
    """The capacity of an effective manifest (schema defaults filled in)."""
    endpoint = spec(manifest).endpoint
    if endpoint.type == "batch":
        count = endpoint.initial_instance_count
        return Capacity(
            kind="batch",
            instance_type=endpoint.instance_type,
            min_instances=count,
            max_instances=count,
        )
    if endpoint.type != "realtime":
        return Capacity(kind="serverless")
    initial = endpoint.initial_instance_count
    scaling = endpoint.autoscaling
    low, high = initial, initial
    if scaling is not None:
        low, high = scaling.min_capacity, scaling.max_capacity
    return Capacity(
        kind="realtime",
        instance_type=endpoint.instance_type,
        min_instances=low,
        max_instances=high,
    )


def change(before: Capacity | None, after: Capacity) -> str:
    """What going from ``before`` (None: nothing yet) to ``after`` changes, in words."""
    if before is None:
        return (
            "new"
            if after.kind != "realtime"
            else f"new: +{_span(after.min_hours, after.max_hours)}"
        )
    if before == after:
        return "no change"
    if before.kind != "realtime" or after.kind != "realtime":
        return f"{before.describe()} -> {after.describe()}"
    parts = []
    if before.instance_type != after.instance_type:
        parts.append(f"instance type {before.instance_type} -> {after.instance_type}")
    low, high = after.min_hours - before.min_hours, after.max_hours - before.max_hours
    if low or high:
        parts.append(f"{_signed(low)} at minimum, {_signed(high)} at maximum")
    return "; ".join(parts)


def markdown(rows: list[tuple[str, Capacity | None, Capacity]], proposed: str) -> str:
    """The proposal's cost table: one row per environment, ``proposed`` marked."""
    lines = [
        "| environment | fleet | instance-hours/month (min-max) | change |",
        "|---|---|---:|---|",
    ]
    for env, before, after in rows:
        if after.kind == "realtime":
            fleet = f"{_span(after.min_instances, after.max_instances)} x {after.instance_type}"
            hours = _span(after.min_hours, after.max_hours)
        elif after.kind == "batch":
            fleet = f"{after.min_instances} x {after.instance_type} per batch run"
            hours = "- (per run: instances x run hours)"
        else:
            fleet, hours = "serverless", "- (per request)"
        name = f"**{env}** (this proposal)" if env == proposed else env
        lines.append(f"| {name} | {fleet} | {hours} | {change(before, after)} |")
    return "\n".join(lines)


def _span(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


def _signed(hours: int) -> str:
    return "+0 h" if hours == 0 else f"{hours:+,} h"


def proposal_section(project: Any, after: dict[str, Any], proposed: str) -> str:
    """The "Cost" table of a proposal: each environment's manifest as committed at HEAD (before)
    and as it will be after the merge (``after``: env -> effective manifest)."""
    from ci_scripts import gitinfo
    from ci_scripts import manifest as manifests

    rows: list[tuple[str, Capacity | None, Capacity]] = []
    for env, effective in after.items():
        label = project.manifest_path(env).relative_to(project.root)
        text = gitinfo.git(project.root, "show", f"HEAD:./{label.as_posix()}")
        data = manifests.parse_text(text) if text else None
        before = capacity(manifests.with_defaults(data)) if data else None
        rows.append((env, before, capacity(effective)))
    return markdown(rows, proposed)
