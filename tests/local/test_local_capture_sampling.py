"""The local router's data capture samples the manifest's share of requests, evenly and
reproducibly, so monitoring demos and tests judge the same captured rows on every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_scripts.backends.local.router import Capture

REQUEST = ("text/csv", b"1.0,2.0")
RESPONSE = ("application/json", b'{"predictions": [{"label": 1, "probability": 0.9}]}')


def captured(folder: Path) -> list[dict]:
    return [
        json.loads(line) for f in folder.rglob("*.jsonl") for line in f.read_text().splitlines()
    ]


@pytest.mark.parametrize(("percentage", "expected"), [(100, 10), (20, 2), (25, 2), (0, 0)])
def test_sampling_takes_the_manifest_share(tmp_path: Path, percentage: int, expected: int) -> None:
    capture = Capture(tmp_path)
    config = {"enabled": True, "sampling_percentage": percentage}
    for n in range(10):
        capture.maybe_record(config, "version-1", REQUEST, RESPONSE, f"id-{n}")
    events = captured(tmp_path)
    assert len(events) == expected
    assert all(e["captureData"]["endpointInput"]["data"] == "1.0,2.0" for e in events)


def test_sampling_spreads_evenly(tmp_path: Path) -> None:
    capture = Capture(tmp_path)
    config = {"enabled": True, "sampling_percentage": 20}
    for n in range(10):
        capture.maybe_record(config, "version-1", REQUEST, RESPONSE, f"id-{n}")
    assert sorted(e["eventMetadata"]["inferenceId"] for e in captured(tmp_path)) == ["id-4", "id-9"]


def test_disabled_capture_writes_nothing(tmp_path: Path) -> None:
    capture = Capture(tmp_path)
    capture.maybe_record({"enabled": False}, "version-1", REQUEST, RESPONSE, "id-0")
    assert captured(tmp_path) == []
