"""Deployment manifests (deploy/<env>.json): load, validate, fill defaults, write back.

The JSON schema is the one source of truth for both the rules and the defaults: a field left out
of a manifest takes the schema's ``default``, so no command or backend carries its own copy.
Code reads a manifest through one typed view, ``spec(manifest)`` (``Manifest.spec``): frozen
dataclasses whose fields are the schema's properties, and whose values for fields left out are
the schema's ``default`` keywords (read from the schema, never restated in Python).
Errors name the file and the JSON path, e.g.
``deploy/prod.json: $.endpoint.instance_type: 'm5' does not match '^ml\\.…'``.
"""

from __future__ import annotations

import copy
import json
import os
import stat
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ci_scripts import manifest_rules
from ci_scripts.errors import CIError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from ci_scripts.project import ProjectConfig

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "manifest.schema.json"


@dataclass
class Manifest:
    """One environment's desired state, as written (``raw``) and with defaults (``effective``)."""

    env: str
    path: Path
    label: str  # path relative to the repo root, used in every message
    raw: dict[str, Any]
    effective: dict[str, Any] = field(default_factory=dict)

    @property
    def model_version(self) -> int | None:
        return self.raw.get("model_version")

    @property
    def group(self) -> str:
        return str(self.raw.get("model_package_group", ""))

    def with_version(self, version: int | None) -> Manifest:
        """A copy naming ``version``; key order (and so the file's layout) is kept."""
        raw = copy.deepcopy(self.raw)
        raw["model_version"] = version
        effective = copy.deepcopy(self.effective)
        effective["model_version"] = version
        return Manifest(self.env, self.path, self.label, raw, effective)

    def at(self, *keys: str) -> str:
        """``deploy/x.json: $.a.b`` for messages about one field."""
        return f"{self.label}: $." + ".".join(keys)

    @property
    def spec(self) -> Spec:
        """The typed view of the effective manifest."""
        return spec(self.effective)


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator_class() -> type[Validator]:
    """Draft 2020-12, extended to fill in ``default`` values while it walks ``properties``."""
    from jsonschema import Draft202012Validator, validators

    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(
        validator: Validator, properties: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Iterator[Any]:
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": properties_with_defaults})


def schema_errors(data: Any) -> list[str]:
    """Every schema violation in ``data`` as ``$.path: message``, most relevant first."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match, relevance

    validator = Draft202012Validator(load_schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return []
    first = best_match(errors)
    rest = sorted((e for e in errors if e is not first), key=relevance, reverse=True)
    return [f"{e.json_path}: {e.message}" for e in [first, *rest]]


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with the schema's defaults filled in (validation errors ignored)."""
    effective = copy.deepcopy(data)
    for _ in _validator_class()(load_schema()).iter_errors(effective):
        pass
    return effective


def check(data: Any, *, label: str, env: str, project: ProjectConfig) -> dict[str, Any]:
    """Validate ``data`` as deploy/<env>.json of ``project``; return it with defaults filled in."""
    errors = schema_errors(data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CIError(f"{label}: {errors[0]}{more}")
    if data["environment"] != env:
        raise CIError(
            f"{label}: $.environment: {data['environment']!r} does not match the file name "
            f"(expected {env!r})"
        )
    if data["model_package_group"] != project.model_package_group:
        raise CIError(
            f"{label}: $.model_package_group: {data['model_package_group']!r} is not this "
            f"project's model package group {project.model_package_group!r}"
        )
    effective = with_defaults(data)
    broken = manifest_rules.refusals(effective, data)
    if broken:
        path, reason = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise CIError(f"{label}: $.{path}: {reason}{more}")
    _check_metric_names(effective, label, project)
    return effective


def _check_metric_names(effective: dict[str, Any], label: str, project: ProjectConfig) -> None:
    """``monitoring.quality.max_metric_drop`` names only the model's metrics; fill its defaults.

    The names and defaults are the model's own (``model_contract``: METRICS, MAX_METRIC_DROP),
    so a model with other metrics needs no edit of the schema ci_scripts ships.
    """
    quality = (effective.get("monitoring") or {}).get("quality")
    if not isinstance(quality, dict):
        return
    from ci_scripts.model_contract import load as load_contract

    contract = load_contract(project)
    given = quality.get("max_metric_drop") or {}
    for name in given:
        if name not in contract.metrics:
            raise CIError(
                f"{label}: $.monitoring.quality.max_metric_drop.{name}: not a metric of the "
                f"model; {contract.source} names {', '.join(contract.metrics)}"
            )
    quality["max_metric_drop"] = {**contract.max_metric_drop, **given}


# -- the typed view ----------------------------------------------------------------------------
class _Section:
    """One object of a manifest as a frozen dataclass: each field is the property of the same
    name at ``PATH`` in the schema. A property the data leaves out takes the schema's
    ``default`` (a copy); without one it is None, except an object section, which is then read
    from ``{}`` (so ``spec({}).endpoint.type`` is None, not an AttributeError) unless its field
    is annotated ``X | None`` (autoscaling, batch: absent means "none"). Integer fields are
    ``int`` (the schema's "integer" admits 2.0); numbers stay as written (int or float).
    """

    PATH: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> Self:
        """The view of ``data``, the object at ``PATH`` of a manifest (defaulted or not)."""
        return _build(cls, data, _schema_at(cls.PATH))


@cache
def _schema_at(path: tuple[str, ...]) -> dict[str, Any]:
    node = load_schema()
    for key in path:
        node = node["properties"][key]
    return node


@cache
def _plan(cls: type) -> tuple[tuple[str, Any, type | None, bool], ...]:
    """``(name, type, section class or None, optional)`` of each field of ``cls``."""
    hints = typing.get_type_hints(cls)
    plan = []
    for f in fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        optional = type(None) in args
        args = tuple(a for a in args if a is not type(None))
        section = next((a for a in args if isinstance(a, type) and is_dataclass(a)), None)
        plan.append((f.name, args[0], section, optional))
    return tuple(plan)


def _build(cls: type, data: Mapping[str, Any] | None, schema: dict[str, Any]) -> Any:
    data = data or {}
    properties = schema["properties"]
    values: dict[str, Any] = {}
    for name, kind, section, optional in _plan(cls):
        prop = properties[name]
        if name in data:
            value = data[name]
        elif "default" in prop:
            value = copy.deepcopy(prop["default"])
        else:
            value = {} if section is not None and not optional else None
        if value is not None:
            if section is not None:
                value = _build(section, value, prop)
            elif kind is int and not isinstance(value, bool):
                value = int(value)
            elif typing.get_origin(kind) is dict:
                value = dict(value)
        values[name] = value
    return cls(**values)


@dataclass(frozen=True)
class Autoscaling(_Section):
    PATH = ("endpoint", "autoscaling")
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: int


@dataclass(frozen=True)
class Serverless(_Section):
    PATH = ("endpoint", "serverless")
    memory_size_mb: int
    max_concurrency: int


@dataclass(frozen=True)
class Endpoint(_Section):
    PATH = ("endpoint",)
    type: str  # required by the schema: None only in a dict that never met it
    instance_type: str
    initial_instance_count: int
    autoscaling: Autoscaling | None  # None: no autoscaling
    serverless: Serverless


@dataclass(frozen=True)
class DataCapture(_Section):
    PATH = ("data_capture",)
    enabled: bool
    sampling_percentage: int


@dataclass(frozen=True)
class Alarms(_Section):
    PATH = ("deployment", "alarms")
    max_5xx_errors: int
    max_model_latency_ms: int


@dataclass(frozen=True)
class ShadowLimits(_Section):
    PATH = ("deployment", "shadow", "limits")
    max_error_rate: float
    max_latency_increase_ms: float
    min_agreement: float
    agreement_tolerance: float


@dataclass(frozen=True)
class Shadow(_Section):
    PATH = ("deployment", "shadow")
    enabled: bool
    duration_minutes: int
    min_requests: int
    limits: ShadowLimits


@dataclass(frozen=True)
class Deployment(_Section):
    PATH = ("deployment",)
    canary_percent: int
    canary_wait_seconds: int
    termination_wait_seconds: int
    alarms: Alarms
    shadow: Shadow


@dataclass(frozen=True)
class Quality(_Section):
    PATH = ("monitoring", "quality")
    max_metric_drop: dict[str, float]  # load() adds the model's MAX_METRIC_DROP for the rest
    min_labelled_rows: int
    min_coverage: float
    label_window_hours: float
    max_bias_drift: float
    min_attribution_ndcg: float


@dataclass(frozen=True)
class Monitoring(_Section):
    PATH = ("monitoring",)
    schedule: str
    drift_threshold: float
    psi_threshold: float
    significance: float
    quality: Quality


@dataclass(frozen=True)
class Batch(_Section):
    PATH = ("batch",)
    input_prefix: str
    output_prefix: str
    schedule: str
    content_type: str
    id_column: str
    max_payload_mb: int
    max_concurrent_transforms: int


@dataclass(frozen=True)
class SmokeTest(_Section):
    PATH = ("smoke_test",)
    rows: int
    max_latency_ms: int


@dataclass(frozen=True)
class Spec(_Section):
    """The typed view of a whole manifest (``$schema`` aside)."""

    PATH = ()
    environment: str
    model_package_group: str
    model_version: int | None
    endpoint: Endpoint
    data_capture: DataCapture
    deployment: Deployment
    monitoring: Monitoring
    batch: Batch | None  # None: not a batch deployment
    smoke_test: SmokeTest


def spec(manifest: Mapping[str, Any]) -> Spec:
    """The typed view of ``manifest`` (effective, or as written: the schema fills the rest)."""
    return Spec.of(manifest)


# Settings an endpoint reports back, keyed by JSON path (``status`` compares them with git).
AUTOSCALING_KEYS = ("min_capacity", "max_capacity", "target_invocations_per_instance")
# What a batch deployment runs with (its ``batch`` section), reported back by describe_endpoint.
BATCH_KEYS = (
    "input_prefix", "output_prefix", "schedule", "content_type", "id_column",
    "max_payload_mb", "max_concurrent_transforms",
)  # fmt: skip


def endpoint_settings(effective: dict[str, Any]) -> dict[str, Any]:
    """What a defaulted manifest asks the endpoint to run, keyed by JSON path.

    Only settings an endpoint exposes: the type, its size (instances or serverless memory and
    concurrency), autoscaling bounds (None when the manifest has no autoscaling) and data
    capture (realtime only: SageMaker serverless endpoints have none). A batch deployment
    reports its transform's size and its ``batch`` section. Backends report what
    runs under the same keys (``EndpointState.config["settings"]``).
    """
    endpoint = effective.get("endpoint", {})
    if endpoint.get("type") == "batch":
        batch = effective.get("batch", {})
        return {
            "endpoint.type": "batch",
            "endpoint.instance_type": endpoint.get("instance_type"),
            "endpoint.initial_instance_count": endpoint.get("initial_instance_count"),
            **{f"batch.{key}": batch.get(key) for key in BATCH_KEYS},
        }
    if endpoint.get("type") == "serverless":
        serverless = endpoint.get("serverless", {})
        return {
            "endpoint.type": "serverless",
            "endpoint.serverless.memory_size_mb": serverless.get("memory_size_mb"),
            "endpoint.serverless.max_concurrency": serverless.get("max_concurrency"),
        }
    scaling = endpoint.get("autoscaling") or {}
    capture = effective.get("data_capture", {})
    settings: dict[str, Any] = {
        "endpoint.type": endpoint.get("type"),
        "endpoint.instance_type": endpoint.get("instance_type"),
        "endpoint.initial_instance_count": endpoint.get("initial_instance_count"),
        **{f"endpoint.autoscaling.{key}": scaling.get(key) for key in AUTOSCALING_KEYS},
        "data_capture.enabled": bool(capture.get("enabled")),
    }
    if capture.get("enabled"):
        settings["data_capture.sampling_percentage"] = capture.get("sampling_percentage")
    return settings


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def load(project: ProjectConfig, env: str) -> Manifest:
    """Read, validate and default deploy/<env>.json; any problem is a CIError naming the field."""
    path = project.manifest_path(env)
    label = _label(project, path)
    if path.is_dir():
        raise CIError(f"{label}: is a directory, not a JSON file")
    if not path.is_file():
        raise CIError(f"{label}: not found")
    deep = f"{label}: nested too deeply to be a manifest"
    try:
        data = json.loads(
            path.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicate_keys
        )
    except json.JSONDecodeError as exc:
        raise CIError(f"{label}: invalid JSON: {exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CIError(f"{label}: invalid JSON: {exc}") from exc
    except RecursionError:
        raise CIError(deep) from None
    try:
        effective = check(data, label=label, env=env, project=project)
    except RecursionError:
        raise CIError(deep) from None
    return Manifest(env=env, path=path, label=label, raw=data, effective=effective)


def parse_text(text: str) -> dict[str, Any] | None:
    """A manifest's JSON from some other source (a git revision); None when it is not JSON."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def render(raw: dict[str, Any]) -> str:
    """The one formatting every manifest is written with, so diffs show only what changed."""
    return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"


def write(manifest: Manifest, project: ProjectConfig) -> Path:
    """Validate ``manifest`` and replace its file atomically (a reader never sees half a file)."""
    check(manifest.raw, label=manifest.label, env=manifest.env, project=project)
    path = manifest.path
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(render(manifest.raw))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _label(project: ProjectConfig, path: Path) -> str:
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)
