"""The monitor's drift check on mixed data: unshifted traffic does not alarm, shifts are found.

Numeric, categorical and boolean features, each with missing values, as the baseline step reads
them (ci_scripts.schema kinds). Traffic drawn from the training data itself must raise a
violation in at most ``significance`` of the runs (every feature's distribution and missing rate
are tested under one Bonferroni correction), over 200 seeded samples of 60 rows; a shifted
category and a jump in missing values must be found.
"""

from __future__ import annotations

import random

import pytest

from ci_scripts.runtime import drift

KINDS = {"age": "numerical", "plan": "categorical", "autopay": "categorical"}
SAMPLES, ROWS = 200, 60


def training_rows(count: int = 1000, seed: int = 1) -> list[list[object]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        age = None if rng.random() < 0.1 else round(rng.gauss(40, 12), 1)
        plan = (
            None
            if rng.random() < 0.05
            else rng.choices(["basic", "pro", "max", "team"], [5, 3, 1, 1])[0]
        )
        autopay = None if rng.random() < 0.2 else rng.choice([0.0, 1.0])
        rows.append([age, plan, autopay])
    return rows


@pytest.fixture(scope="module")
def statistics() -> dict:
    rows = training_rows()
    return drift.baseline(list(KINDS), rows, [0.5] * len(rows), "numerical", KINDS)


def violations(statistics: dict, rows: list[list[object]]) -> list[dict]:
    data = drift.live_data(rows, list(KINDS))
    return drift.check(data, statistics, {}).violations


def test_traffic_drawn_from_the_training_data_raises_no_more_false_alarms_than_significance(
    statistics: dict,
) -> None:
    rows = training_rows()
    alarms = [
        found
        for seed in range(SAMPLES)
        if (found := violations(statistics, random.Random(seed).sample(rows, ROWS)))
    ]
    assert len(alarms) <= drift.DEFAULTS["significance"] * SAMPLES, alarms[:3]


def test_a_shifted_category_is_found(statistics: dict) -> None:
    rng = random.Random(7)
    rows = [[row[0], rng.choice(["max", "team"]), row[2]] for row in training_rows(ROWS, 7)]
    found = violations(statistics, rows)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in found] == [
        ("plan", drift.DRIFT_CHECK)
    ]


def test_a_jump_in_missing_values_is_found(statistics: dict) -> None:
    rows = [[None if i % 3 else row[0], *row[1:]] for i, row in enumerate(training_rows(ROWS, 8))]
    found = violations(statistics, rows)
    assert ("age", drift.COMPLETENESS_CHECK) in [
        (v["feature_name"], v["constraint_check_type"]) for v in found
    ]


def test_a_few_missing_values_where_training_had_none_do_not_alarm() -> None:
    rows = [[float(i % 50), "basic" if i % 2 else "pro", 1.0] for i in range(500)]
    complete = drift.baseline(list(KINDS), rows, [0.5] * 500, "numerical", KINDS)
    live = [[None if i == 0 else row[0], *row[1:]] for i, row in enumerate(rows[:60])]
    assert violations(complete, live) == []
