"""What the model declares about itself, read from the model repo's ``src/<package>/model.py``
and ``schema.py``.

ci_scripts assumes nothing about the model: the smoke test checks answers against the JSON Schema
its problem type and classes give (ci_scripts.problem_types), status and the proposal PRs show
its primary metric by name, and ``monitoring.quality.max_metric_drop`` in deploy/*.json accepts
the names in its ``METRICS`` (defaults: its ``MAX_METRIC_DROP``). Those two files are the one
source of these facts; the pipeline's settings (ci_scripts/pipelines/settings.py) are built
from this contract, hyperparameter defaults included. Their module level imports the standard
library only, so loading them is cheap. A repo without model.py (the template's own tests'
stand-ins) gets the binary-classification declarations the template ships.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_scripts import hyperparameters, problem_types
from ci_scripts.errors import CIError
from ci_scripts.project import ProjectConfig
from ci_scripts.schema import features_of

_BINARY = problem_types.get("binary_classification")


@dataclass(frozen=True)
class ModelContract:
    """The declarations ci_scripts reads; ``source`` names where they came from."""

    source: str
    problem_type: str = _BINARY.name
    metrics: tuple[str, ...] = tuple(_BINARY.metrics)
    primary_metric: str = "auc"
    higher_is_better: bool = True
    threshold: float = 0.9
    classes: tuple[Any, ...] | None = (0, 1)  # the target's values; None for a regression
    target: str = "target"  # schema.py's TARGET: the dataset's label column
    features: tuple[str, ...] = ()  # schema.py's FEATURES, in training order
    # HYPERPARAMETERS' defaults by name: what the pipeline passes to `train` unless
    # [tool.sagemaker-gitops.hyperparameters] overrides them.
    hyperparameters: dict[str, str] = field(default_factory=dict)
    # The searched ones (``search=``): what the pipeline's tuning step varies.
    search_space: dict[str, hyperparameters.Search] = field(default_factory=dict)
    max_metric_drop: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(_BINARY.metrics, 0.05)
    )
    prediction_schema: dict[str, Any] = field(
        default_factory=lambda: {
            "type": "object",
            "required": ["label", "probability"],
            "properties": {
                "label": {"enum": [0, 1]},
                "probability": {"type": "number", "minimum": 0, "maximum": 1},
            },
        }
    )

    @property
    def direction(self) -> str:
        """``higher is better`` or ``lower is better``, of the primary metric."""
        return "higher is better" if self.higher_is_better else "lower is better"


def model_file(project: ProjectConfig) -> Path:
    return project.root / "src" / project.package / "model.py"


_CACHE: dict[tuple[str, float], ModelContract] = {}


def load(project: ProjectConfig) -> ModelContract:
    """The contract of ``project``'s model (cached per file and modification time)."""
    path = model_file(project)
    if not path.is_file():
        return ModelContract(source="default (binary classification)")
    key = (str(path), path.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = _read(path, project.root)
    return _CACHE[key]


def _read(path: Path, root: Path) -> ModelContract:
    rel = path.relative_to(root).as_posix()
    module = _import(path, rel)
    schema_path = path.with_name("schema.py")
    schema = _import(schema_path, schema_path.relative_to(root).as_posix())

    def attr(name: str, kind: type | tuple[type, ...]) -> Any:
        value = getattr(module, name, None)
        if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
            raise CIError(f"{rel}: {name} is missing or not a {getattr(kind, '__name__', kind)}")
        return value

    kind = attr("PROBLEM_TYPE", str)
    try:
        problem = problem_types.get(kind)
    except ValueError as exc:
        raise CIError(f"{rel}: PROBLEM_TYPE: {exc}") from None
    metrics = tuple(attr("METRICS", tuple))
    primary = attr("PRIMARY_METRIC", str)
    if primary not in metrics:
        raise CIError(f"{rel}: PRIMARY_METRIC {primary!r} is not one of METRICS")
    classes = getattr(schema, "CLASSES", None)
    if classes is not None and not (
        isinstance(classes, tuple)
        and len(set(classes)) == len(classes) >= 2
        and (
            all(isinstance(c, str) and c.strip() == c and c for c in classes)
            or all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
        )
    ):
        raise CIError(
            f"{schema_path.name}: CLASSES must be a tuple of two or more distinct class names"
            " (all strings, or all integers), or None"
        )
    target = getattr(schema, "TARGET", None)
    if not isinstance(target, str) or not target:
        raise CIError(f"{schema_path.name}: TARGET is missing or not a column name")
    try:
        features = tuple(features_of(getattr(schema, "FEATURES", None) or ()))
    except TypeError as exc:
        raise CIError(f"{schema_path.name}: {exc}") from None
    if not features or target in features:
        raise CIError(f"{schema_path.name}: FEATURES must name the feature columns, not TARGET")
    if (classes is None) is problem.classification:
        raise CIError(
            f"{schema_path.name}: CLASSES must be {'a tuple' if classes is None else 'None'}"
            f" for PROBLEM_TYPE {kind!r}"
        )
    drops = dict(getattr(module, "MAX_METRIC_DROP", None) or {})
    unknown = sorted(set(drops) - set(metrics))
    if unknown:
        raise CIError(f"{rel}: MAX_METRIC_DROP names {', '.join(unknown)}, not in METRICS")
    defaults = problem_types.Labels()
    positive = getattr(
        schema, "POSITIVE_CLASS", getattr(module, "POSITIVE_CLASS", (classes or (0, 1))[-1])
    )
    if problem.name == "binary_classification" and classes is not None and positive not in classes:
        raise CIError(f"{schema_path.name}: POSITIVE_CLASS {positive!r} is not one of CLASSES")
    labels = problem_types.Labels(
        classes=classes,
        positive_class=positive,
        probability_threshold=float(getattr(module, "PROBABILITY_THRESHOLD", 0.5)),
        value_range=tuple(getattr(module, "VALUE_RANGE", defaults.value_range)),
    )
    return ModelContract(
        source=rel,
        hyperparameters=_hyperparameter_defaults(module, rel),
        search_space=_search_space(module, rel),
        problem_type=kind,
        metrics=metrics,
        primary_metric=primary,
        higher_is_better=attr("HIGHER_IS_BETTER", bool),
        threshold=float(attr("THRESHOLD", (int, float))),
        classes=classes,
        target=target,
        features=features,
        max_metric_drop={name: float(value) for name, value in drops.items()},
        prediction_schema=problem.prediction_schema(labels),
    )


def _hyperparameter_defaults(module: Any, rel: str) -> dict[str, str]:
    """``{name: spec.default for name, spec in HYPERPARAMETERS.items()}``."""
    specs = getattr(module, "HYPERPARAMETERS", None)
    if specs is None:
        return {}
    if not isinstance(specs, dict) or not all(hasattr(spec, "default") for spec in specs.values()):
        raise CIError(f"{rel}: HYPERPARAMETERS must map each name to a spec with a default")
    return {str(name): spec.default for name, spec in specs.items()}


def _search_space(module: Any, rel: str) -> dict[str, hyperparameters.Search]:
    """HYPERPARAMETERS' ``search=`` ranges, each checked against its parser."""
    specs = getattr(module, "HYPERPARAMETERS", None) or {}
    try:
        return hyperparameters.search_space(specs)
    except ValueError as exc:
        raise CIError(f"{rel}: HYPERPARAMETERS: {exc}") from None


def _import(path: Path, rel: str) -> Any:
    """Execute ``path`` as a module of its own (not the package: nothing else of it runs)."""
    name = "_sagemaker_gitops_model"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CIError(f"{rel}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CIError(f"{rel}: import failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    return module
