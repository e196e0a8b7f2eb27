"""ci_scripts.cost: instance-hours per month at minimum and maximum capacity, and changes."""

from __future__ import annotations

from ci_scripts import cost


def manifest(count: int = 2, low: int | None = 2, high: int = 4, kind: str = "ml.m5.large"):
    endpoint = {"type": "realtime", "instance_type": kind, "initial_instance_count": count}
    if low is not None:
        endpoint["autoscaling"] = {"min_capacity": low, "max_capacity": high}
    return {"endpoint": endpoint}


def test_capacity_from_autoscaling_or_the_fixed_count() -> None:
    scaled = cost.capacity(manifest())
    assert (scaled.min_hours, scaled.max_hours) == (1460, 2920)
    assert scaled.describe() == "2-4 x ml.m5.large: 1,460-2,920 instance-hours/month"
    fixed = cost.capacity(manifest(count=3, low=None))
    assert (fixed.min_instances, fixed.max_instances, fixed.min_hours) == (3, 3, 2190)
    assert fixed.describe() == "3 x ml.m5.large: 2,190 instance-hours/month"
    serverless = cost.capacity({"endpoint": {"type": "serverless"}})
    assert serverless.min_hours == serverless.max_hours == 0
    assert "billed per request" in serverless.describe()


def test_change_names_hours_and_instance_type() -> None:
    one, two = cost.capacity(manifest(1, 1, 4)), cost.capacity(manifest(2, 2, 4))
    assert cost.change(one, two) == "+730 h at minimum, +0 h at maximum"
    assert cost.change(two, two) == "no change"
    bigger = cost.capacity(manifest(kind="ml.c5.xlarge"))
    assert cost.change(two, bigger) == "instance type ml.m5.large -> ml.c5.xlarge"
    assert cost.change(None, two) == "new: +1,460-2,920"


def test_markdown_marks_the_proposed_environment() -> None:
    table = cost.markdown(
        [
            ("staging", cost.capacity(manifest(1, 1, 2)), cost.capacity(manifest(1, 1, 2))),
            ("prod", cost.capacity(manifest(1, 1, 4)), cost.capacity(manifest())),
        ],
        proposed="prod",
    )
    assert "| staging | 1-2 x ml.m5.large | 730-1,460 | no change |" in table
    assert (
        "| **prod** (this proposal) | 2-4 x ml.m5.large | 1,460-2,920 | +730 h at minimum, "
        "+0 h at maximum |"
    ) in table


def test_a_batch_fleet_is_billed_per_run() -> None:
    batch = {
        "endpoint": {"type": "batch", "instance_type": "ml.m5.xlarge", "initial_instance_count": 2}
    }
    capacity = cost.capacity(batch)
    assert (capacity.kind, capacity.instance_type, capacity.min_instances) == (
        "batch",
        "ml.m5.xlarge",
        2,
    )
    assert capacity.describe().startswith("2 x ml.m5.xlarge per batch run: billed while a run")
    table = cost.markdown([("prod", None, capacity)], "prod")
    assert "| **prod** (this proposal) | 2 x ml.m5.xlarge per batch run | - (per run" in table
    assert cost.change(cost.capacity({"endpoint": {"type": "realtime"}}), capacity).endswith(
        "none between runs"
    )
