"""ci_scripts.shadow: every limit of deployment.shadow judged on figures a backend measured."""

from __future__ import annotations

import json

import pytest

from ci_scripts import manifest
from ci_scripts.shadow import (
    ShadowMeasurement,
    ShadowPolicy,
    VariantFigures,
    agreement,
    judge,
    percentile,
)


def policy(**limits: object) -> ShadowPolicy:
    """The schema's defaults (the one source of them), with ``limits`` changed."""
    data = {"environment": "prod", "deployment": {"shadow": {"enabled": True}}}
    effective = manifest.with_defaults(data)
    shadow = effective["deployment"]["shadow"]
    for key, value in limits.items():
        (shadow if key in shadow else shadow["limits"])[key] = value
    return ShadowPolicy.from_manifest(effective)


def answer(*labels: int) -> bytes:
    return json.dumps({"predictions": [{"label": x, "probability": 0.7} for x in labels]}).encode()


def value(*values: float) -> bytes:
    return json.dumps({"predictions": [{"value": v} for v in values]}).encode()


def measured(
    *,
    requests: int = 200,
    errors: int = 0,
    live_p50: float | None = 10.0,
    shadow_p50: float | None = 12.0,
    pairs: list[tuple[bytes, bytes]] | None = None,
) -> ShadowMeasurement:
    return ShadowMeasurement(
        env="prod",
        live=VariantFigures("AllTraffic", 1, requests, 0, live_p50, 30.0),
        shadow=VariantFigures("Shadow", 2, requests, errors, shadow_p50, 40.0),
        pairs=[(answer(1), answer(1))] * requests if pairs is None else pairs,
        window_seconds=600,
        traffic="test traffic",
    )


def test_defaults_come_from_the_schema() -> None:
    p = policy()
    assert (p.enabled, p.duration_minutes, p.min_requests) == (True, 10, 100)
    assert (p.max_error_rate, p.max_latency_increase_ms) == (0.01, 50)
    assert (p.min_agreement, p.agreement_tolerance) == (0.95, 0.05)
    assert not ShadowPolicy.from_manifest(manifest.with_defaults({"deployment": {}})).enabled


def test_everything_within_limits_passes() -> None:
    report = judge(policy(), measured(), "binary_classification")
    assert report.passed and report.agreement == 1.0
    assert "passed" in report.verdict()
    assert report.record().startswith("passed ") and "v2 vs v1" in report.record()
    assert "| agreement with live | >= 95.0%" in report.markdown()


@pytest.mark.parametrize(
    ("change", "limit"),
    [
        ({"errors": 3}, "limits.max_error_rate"),  # 1.5 % > 1 %
        ({"shadow_p50": 61.0}, "limits.max_latency_increase_ms"),  # +51 ms > 50 ms
        ({"shadow_p50": None}, "limits.max_latency_increase_ms"),  # not measured: no evidence
        (
            {"pairs": [(answer(1), answer(0))] * 11 + [(answer(1), answer(1))] * 189},
            "limits.min_agreement",
        ),  # 94.5 % < 95 %
        ({"pairs": [(answer(1), b"oops")] * 200}, "limits.min_agreement"),  # unreadable answers
        ({"requests": 99}, "min_requests"),  # too little evidence
        ({"pairs": [(answer(1), answer(1))] * 50}, "min_requests"),  # too few paired
        ({"requests": 0, "pairs": []}, "limits.max_error_rate"),  # nothing at all
    ],
)
def test_each_limit_fails_on_its_own_and_is_named(change: dict, limit: str) -> None:
    report = judge(policy(), measured(**change), "binary_classification")
    assert not report.passed
    assert f"deployment.shadow.{limit}" in report.verdict()
    assert "**FAIL**" in report.markdown()
    assert report.record().startswith("failed ")
    assert f"broke={'+'.join(c.field.rsplit('.', 1)[-1] for c in report.failed)}" in report.record()


def test_limits_are_inclusive() -> None:
    edge = measured(
        errors=2,
        shadow_p50=60.0,
        pairs=[(answer(1), answer(0))] * 10 + [(answer(1), answer(1))] * 190,
    )
    assert judge(policy(), edge, "binary_classification").passed  # 1 %, +50 ms, 95 %


def test_regression_agrees_within_the_tolerance() -> None:
    pairs = [(value(1.0), value(1.04)), (value(2.0), value(2.1)), (value(3.0, 4.0), value(3.0))]
    assert agreement("regression", pairs, 0.05) == (1, 3)  # the 2nd too far, the 3rd 2 vs 1 row
    assert agreement("regression", pairs, 0.2) == (2, 3)


def test_multiclass_compares_labels_of_every_row() -> None:
    pairs = [(answer(2, 1), answer(2, 1)), (answer(2, 1), answer(2, 0))]
    assert agreement("multiclass_classification", pairs, 0.05) == (1, 2)


def test_record_fits_an_aws_tag_value() -> None:
    import re

    for m in (measured(), measured(errors=100, shadow_p50=None, pairs=[])):
        record = judge(policy(), m, "binary_classification").record()
        assert len(record) <= 256
        assert re.fullmatch(r"[\w\s.:/=+\-@]*", record), record  # SageMaker's tag value pattern


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 101))), 99) == 99.0


def test_policy_describes_itself_for_validate_and_promote() -> None:
    assert policy().describe().startswith("before prod switches, the candidate shadows")
    off = ShadowPolicy.from_manifest(manifest.with_defaults({"deployment": {}}))
    assert off.describe() == "off (deployment.shadow.enabled is false)"


def test_the_prod_proposal_states_the_policy_and_where_the_result_goes() -> None:
    from ci_scripts.commands.promote import shadow_note

    on = manifest.with_defaults(
        {"environment": "prod", "deployment": {"shadow": {"enabled": True}}}
    )
    note = shadow_note(on, "prod", serving=True)
    assert note.startswith("**Shadow test** (`deployment.shadow`): before prod switches")
    assert note.endswith("appends its report to this pull request.")
    assert "no traffic to shadow" in shadow_note(on, "prod", serving=False)
