"""The typed view of a manifest (manifest.spec): one dataclass field per schema property, and
every default read from the schema's ``default`` keywords, never restated in Python."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from ci_scripts import manifest as manifests


def sections() -> list[type]:
    found, todo = [], [manifests.Spec]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += [s for _, _, s, _ in manifests._plan(cls) if s is not None]
    return found


@pytest.mark.parametrize("cls", sections(), ids=lambda c: c.__name__)
def test_each_section_mirrors_its_schema_object(cls: type) -> None:
    schema = manifests._schema_at(cls.PATH)
    names = [f.name for f in dataclasses.fields(cls)]
    assert sorted(names) == sorted(k for k in schema["properties"] if k != "$schema")
    # no Python default: a field left out can only take the schema's
    for f in dataclasses.fields(cls):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _defaults(schema: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for key, prop in schema.get("properties", {}).items():
        if "default" in prop and prop.get("type") != "object":
            found[(*path, key)] = prop["default"]
        found.update(_defaults(prop, (*path, key)))
    return found


def _read(view: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        view = getattr(view, key)
    return view


def test_an_empty_manifest_reads_every_schema_default() -> None:
    empty = manifests.spec({"endpoint": {"autoscaling": {}}, "batch": {}})
    defaults = _defaults(manifests.load_schema())
    assert len(defaults) >= 37
    for path, value in defaults.items():
        assert _read(empty, path) == value, path


def test_the_view_agrees_with_the_defaulted_dict() -> None:
    written = {"endpoint": {"type": "realtime", "autoscaling": {"max_capacity": 4}}}
    assert manifests.spec(written) == manifests.spec(manifests.with_defaults(written))


def test_written_values_win_and_absent_sections_are_none() -> None:
    view = manifests.spec(
        {
            "endpoint": {"type": "realtime", "initial_instance_count": 3.0},
            "deployment": {"canary_percent": 25, "shadow": {"limits": {"min_agreement": 0.9}}},
        }
    )
    assert view.endpoint.autoscaling is None and view.batch is None
    assert view.endpoint.initial_instance_count == 3
    assert type(view.endpoint.initial_instance_count) is int
    assert view.deployment.canary_percent == 25
    assert view.deployment.shadow.limits.min_agreement == 0.9
    assert view.deployment.shadow.limits.max_error_rate == 0.01  # its sibling: the schema's
    assert view.endpoint.type == "realtime" and manifests.spec({}).endpoint.type is None


def test_changing_a_schema_default_changes_the_view(monkeypatch: pytest.MonkeyPatch) -> None:
    """The view has no default of its own: edit the schema and every reader sees the edit."""
    schema = copy.deepcopy(manifests.load_schema())
    deployment = schema["properties"]["deployment"]["properties"]
    deployment["canary_percent"]["default"] = 33
    deployment["alarms"]["properties"]["max_5xx_errors"]["default"] = 7
    schema["properties"]["data_capture"]["properties"]["sampling_percentage"]["default"] = 5
    monkeypatch.setattr(manifests, "load_schema", lambda: schema)
    manifests._schema_at.cache_clear()
    try:
        view = manifests.spec({})
        assert view.deployment.canary_percent == 33
        assert view.deployment.alarms.max_5xx_errors == 7
        assert view.data_capture.sampling_percentage == 5
    finally:
        manifests._schema_at.cache_clear()


def test_manifest_spec_reads_the_effective_manifest(tmp_path) -> None:
    raw = {"endpoint": {"type": "serverless"}}
    effective = manifests.with_defaults(raw)
    effective["monitoring"]["quality"]["max_metric_drop"] = {"f1": 0.05}
    path = tmp_path / "staging.json"
    found = manifests.Manifest("staging", path, "deploy/staging.json", raw, effective)
    assert found.spec.endpoint.serverless.memory_size_mb == 2048
    assert found.spec.monitoring.quality.max_metric_drop == {"f1": 0.05}


def test_no_reader_restates_a_schema_default() -> None:
    """``x.get("canary_percent", 10)`` and the like would be a second source of a default:
    read ``manifest.spec(...)`` (or ``Manifest.spec``) instead."""
    keys = {path[-1] for path in _defaults(manifests.load_schema())}
    names = "|".join(sorted(keys))
    pattern = re.compile(r"""\.get\(\s*["'](""" + names + r""")["']\s*,""")
    package = Path(manifests.__file__).parent
    found = [
        f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
