"""ci_scripts.canary: canary size from the fleet, the one policy validate and both backends use."""

from __future__ import annotations

import pytest

from ci_scripts import canary


@pytest.mark.parametrize(
    ("instances", "percent", "canary_instances"),
    [
        (1, 10, 0),  # one instance can never canary
        (1, 50, 0),
        (2, 10, 1),  # rounds up to one instance = half the fleet: allowed
        (2, 50, 1),
        (3, 10, 1),
        (3, 50, 0),  # ceil(1.5) = 2 of 3 is more than half
        (4, 25, 1),
        (10, 25, 3),
        (10, 50, 5),
        (10, 51, 0),
    ],
)
def test_canary_is_whole_instances_at_most_half_the_fleet(
    instances: int, percent: int, canary_instances: int
) -> None:
    plan = canary.plan(instances, percent, 60)
    assert plan.canary_instances == canary_instances
    assert plan.possible is (canary_instances > 0)
    if plan.possible:
        assert plan.canary_instances <= instances / 2


def test_descriptions_say_what_happens() -> None:
    assert canary.plan(1, 10).describe() == "all at once behind alarms: 1 instance"
    assert canary.plan(1, 10).traffic_percent == 100
    two = canary.plan(2, 10, 600)
    assert two.traffic_percent == 50
    assert two.describe() == (
        "canary of 1 of 2 instances (50% of traffic, deployment.canary_percent 10) for 600 s, "
        "then the rest, behind alarms"
    )


def test_running_fleet_wins_over_the_manifest_count() -> None:
    manifest = {
        "endpoint": {"type": "realtime", "initial_instance_count": 1, "autoscaling": {}},
        "deployment": {"canary_percent": 10, "canary_wait_seconds": 30},
    }
    assert not canary.manifest_plan(manifest).possible
    scaled = canary.manifest_plan(manifest, running_instances=4)
    assert (scaled.instances, scaled.canary_instances, scaled.wait_seconds) == (4, 1, 30)
    assert "computed again from the running fleet" in canary.describe_manifest(manifest)


def test_serverless_has_no_canary() -> None:
    manifest = {"endpoint": {"type": "serverless"}, "deployment": {}}
    assert not canary.manifest_plan(manifest, running_instances=8).possible
    assert canary.describe_manifest(manifest).startswith("all at once behind alarms: serverless")


def test_prod_on_one_instance_is_warned_about() -> None:
    one = {"endpoint": {"type": "realtime", "initial_instance_count": 2, "autoscaling": {}}}
    one["endpoint"]["autoscaling"]["min_capacity"] = 1  # may scale in to one
    assert "Availability Zone" in canary.production_warning("prod", one)
    assert canary.production_warning("staging", one) == ""
    two = {"endpoint": {"type": "realtime", "initial_instance_count": 2}}
    assert canary.production_warning("prod", two) == ""
