"""Data quality in SageMaker Model Monitor's file formats: statistics, constraints, violations.

One module for both ends of the loop, so the baseline and the check cannot disagree: the local
pipeline's QualityCheck step writes ``statistics.json`` + ``constraints.json`` of the training
features, and ``monitor`` (local backend) writes the same three files Model Monitor writes for a
monitoring execution (``statistics.json``, ``constraints.json``, ``constraint_violations.json``)
for the traffic an endpoint captured.

The drift statistic, per numeric feature (documented in the generated README as well):

- distance: the two-sample Kolmogorov-Smirnov distance ``D = max_x |F_baseline(x) - F_captured(x)|``
  between the empirical CDFs. It is the L-infinity distance Model Monitor's
  ``baseline_drift_check`` compares with ``comparison_threshold``. The baseline's CDF comes from
  the KLL sketch in ``statistics.json``, which keeps every value while there are at most
  ``SKETCH_SIZE`` (the sketch is exact then; larger baselines keep that many quantiles).
- a feature drifts when ``D > comparison_threshold`` (the manifest's
  ``monitoring.drift_threshold``, schema default 0.1, Model Monitor's default) **and** ``D``
  exceeds the KS critical value ``c(a) * sqrt((n + m) / (n * m))`` with
  ``c(a) = sqrt(-ln(a / 2) / 2)`` and ``a`` = ``monitoring.significance`` divided by the number of
  features (Bonferroni). The second test keeps a handful of captured requests from raising alarms
  by sampling noise alone: 20 rows need ``D > 0.5`` or so, 500 rows about ``D > 0.13``.
- completeness: a feature whose share of present values falls below the baseline's
  ``completeness`` is a ``completeness_check`` violation.
- captured columns that differ from the baseline's (a schema change) are ``missing_column_check`` /
  ``extra_column_check`` violations naming the columns; that is no drift, retraining cannot fix it.

numpy only (no pandas, no scipy): it runs inside the CLI and must stay cheap to import.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SKETCH_SIZE = 2048  # KLL sketch parameter k; baselines up to this size are kept exactly
HISTOGRAM_BUCKETS = 10
DEFAULT_DRIFT_THRESHOLD = 0.1  # Model Monitor's comparison_threshold default
DEFAULT_SIGNIFICANCE = 0.01

# constraint_check_type values, as Model Monitor spells them
DRIFT_CHECK = "baseline_drift_check"
COMPLETENESS_CHECK = "completeness_check"
MISSING_COLUMN_CHECK = "missing_column_check"
EXTRA_COLUMN_CHECK = "extra_column_check"
SCHEMA_CHECKS = frozenset({MISSING_COLUMN_CHECK, EXTRA_COLUMN_CHECK})

STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"


def schedule_name(project: str, env: str) -> str:
    """The data quality monitoring schedule of one environment (aws and local alike)."""
    return f"{project}-{env}-data-quality"


def report_prefix(bucket: str, env: str) -> str:
    """Where monitoring executions of ``env`` write their reports (Model Monitor then adds
    ``<endpoint>/<schedule>/YYYY/MM/DD/HH``); infra lets ``env``'s read-only role read it."""
    return f"s3://{bucket}/monitoring/{env}/reports"


class DataQualityError(ValueError):
    """Input that cannot be checked at all (unreadable baseline, no numbers); one line."""


@dataclass
class Dataset:
    """Named numeric columns; ``NaN`` where a value was missing or not a number."""

    columns: list[str]
    values: np.ndarray  # shape (rows, columns)


@dataclass
class CheckResult:
    """What one check found: the three report documents and a per-feature summary."""

    statistics: dict[str, Any]
    constraints: dict[str, Any]
    violations: list[dict[str, str]]
    distances: dict[str, float] = field(default_factory=dict)
    rows: int = 0

    def documents(self) -> dict[str, dict[str, Any]]:
        return {
            STATISTICS_FILE: self.statistics,
            CONSTRAINTS_FILE: self.constraints,
            VIOLATIONS_FILE: {"violations": self.violations},
        }


# -- reading ---------------------------------------------------------------------------------
def read_csv(path: Path, *, drop: Sequence[str] = ()) -> Dataset:
    """A CSV file with a header row (baseline.csv), columns in ``drop`` left out."""
    import numpy as np

    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [r for r in csv.reader(handle) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataQualityError(f"{path}: cannot read: {exc}") from None
    if len(rows) < 2:
        raise DataQualityError(f"{path}: expected a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    keep = [i for i, name in enumerate(header) if name not in drop]
    values = np.array(
        [[_number(row[i]) if i < len(row) else math.nan for i in keep] for row in rows[1:]],
        dtype=float,
    )
    return Dataset([header[i] for i in keep], values)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def captured_records(lines: Iterable[str]) -> Iterable[list[Any] | dict[str, Any]]:
    """Request rows from data capture JSON lines (endpointInput; CSV, JSON or BASE64)."""
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            captured = event["captureData"]["endpointInput"]
            data, encoding = captured.get("data", ""), captured.get("encoding", "CSV")
            content_type = captured.get("observedContentType", "").split(";")[0].strip().lower()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a capture record: Model Monitor skips those too
        if encoding == "BASE64":
            try:
                data = base64.b64decode(data).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            encoding = "JSON" if content_type == "application/json" else "CSV"
        if encoding == "JSON":
            try:
                instances = json.loads(data).get("instances")
            except (ValueError, AttributeError):
                continue
            yield from (i for i in instances or [] if isinstance(i, list | dict))
        else:
            yield from (row for row in csv.reader(io.StringIO(data)) if row)


def captured_dataset(records: Iterable[list[Any] | dict[str, Any]], baseline: list[str]) -> Dataset:
    """Captured rows as a Dataset in the baseline's column order.

    CSV rows and JSON arrays carry no names: their values are the baseline's columns by position,
    and values past the last baseline column are named ``_c<index>`` (Model Monitor's names for
    headerless CSV columns). JSON objects name their columns.
    """
    import numpy as np

    named: list[dict[str, float]] = []
    for record in records:
        if isinstance(record, dict):
            named.append({str(k): _number(v) for k, v in record.items()})
        else:
            named.append(
                {
                    (baseline[i] if i < len(baseline) else f"_c{i}"): _number(v)
                    for i, v in enumerate(record)
                }
            )
    seen = Counter(name for row in named for name in row)
    columns = [c for c in baseline if c in seen] + sorted(set(seen) - set(baseline))
    values = np.array([[row.get(c, math.nan) for c in columns] for row in named], dtype=float)
    return Dataset(columns, values.reshape(len(named), len(columns)))


# -- baseline: statistics.json and constraints.json ------------------------------------------
def statistics(data: Dataset) -> dict[str, Any]:
    """statistics.json (Model Monitor's schema) of every column: all are numeric here."""
    import numpy as np

    features = []
    for index, name in enumerate(data.columns):
        column = data.values[:, index]
        present = np.sort(column[~np.isnan(column)])
        numerical: dict[str, Any] = {
            "common": {
                "num_present": int(present.size),
                "num_missing": int(column.size - present.size),
            }
        }
        if present.size:
            numerical.update(
                mean=float(present.mean()),
                sum=float(present.sum()),
                std_dev=float(present.std()),
                min=float(present[0]),
                max=float(present[-1]),
                distribution={"kll": _kll(present)},
            )
        integral = bool(present.size) and bool(np.all(present == np.round(present)))
        features.append(
            {
                "name": name,
                "inferred_type": "Integral" if integral else "Fractional",
                "numerical_statistics": numerical,
            }
        )
    return {
        "version": 0.0,
        "dataset": {"item_count": int(data.values.shape[0])},
        "features": features,
    }


def _kll(present: np.ndarray) -> dict[str, Any]:
    """Histogram buckets plus the sketch: every value up to SKETCH_SIZE, else evenly spaced
    quantiles (what an exact one-level KLL compactor holds)."""
    import numpy as np

    low, high = float(present[0]), float(present[-1])
    edges = np.linspace(low, high, HISTOGRAM_BUCKETS + 1) if high > low else np.array([low, high])
    counts, _ = np.histogram(present, bins=edges)
    sample = (
        present
        if present.size <= SKETCH_SIZE
        else np.quantile(present, np.linspace(0, 1, SKETCH_SIZE))
    )
    return {
        "buckets": [
            {"lower_bound": float(a), "upper_bound": float(b), "count": float(c)}
            for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ],
        "sketch": {
            "parameters": {"c": 0.64, "k": float(SKETCH_SIZE)},
            "data": [[float(v) for v in sample]],
        },
    }


def constraints(
    stats: dict[str, Any], drift_threshold: float = DEFAULT_DRIFT_THRESHOLD
) -> dict[str, Any]:
    """constraints.json suggested from ``stats`` (as Model Monitor's baselining job does)."""
    features = []
    for feature in stats.get("features", []):
        common = feature.get("numerical_statistics", {}).get("common", {})
        total = common.get("num_present", 0) + common.get("num_missing", 0)
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature.get("inferred_type", "Fractional"),
            "completeness": round(common.get("num_present", 0) / total, 6) if total else 1.0,
        }
        if feature.get("numerical_statistics", {}).get("min", -1) >= 0:
            entry["num_constraints"] = {"is_non_negative": True}
        features.append(entry)
    return with_threshold({"version": 0.0, "features": features}, drift_threshold)


def with_threshold(document: dict[str, Any], drift_threshold: float) -> dict[str, Any]:
    """A copy of constraints.json whose drift comparison uses ``drift_threshold``."""
    copy = json.loads(json.dumps(document))
    config = copy.setdefault("monitoring_config", {})
    config.setdefault("evaluate_constraints", "Enabled")
    config.setdefault("emit_metrics", "Enabled")
    config.setdefault("datatype_check_threshold", 1.0)
    config.setdefault("domain_content_threshold", 1.0)
    config["distribution_constraints"] = {
        "perform_comparison": "Enabled",
        "comparison_threshold": float(drift_threshold),
        "comparison_method": "Robust",
    }
    return copy


# -- the check ---------------------------------------------------------------------------------
def ks_distance(baseline_sorted: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance between the empirical CDFs."""
    import numpy as np

    current = np.sort(current)
    if not baseline_sorted.size or not current.size:
        return 0.0
    points = np.concatenate([baseline_sorted, current])
    f_base = np.searchsorted(baseline_sorted, points, side="right") / baseline_sorted.size
    f_cur = np.searchsorted(current, points, side="right") / current.size
    return float(np.max(np.abs(f_base - f_cur)))


def critical_distance(n: int, m: int, alpha: float) -> float:
    """The KS distance two samples of sizes n and m exceed by chance with probability ~alpha."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def check(
    data: Dataset,
    baseline_stats: dict[str, Any],
    baseline_constraints: dict[str, Any],
    *,
    drift_threshold: float | None = None,
    significance: float = DEFAULT_SIGNIFICANCE,
) -> CheckResult:
    """Compare ``data`` with the baseline; violations in constraint_violations.json's format."""
    import numpy as np

    if drift_threshold is not None:
        baseline_constraints = with_threshold(baseline_constraints, drift_threshold)
    config = baseline_constraints.get("monitoring_config", {})
    threshold = float(
        config.get("distribution_constraints", {}).get(
            "comparison_threshold", DEFAULT_DRIFT_THRESHOLD
        )
    )
    base_features = {f["name"]: f for f in baseline_stats.get("features", [])}
    expected = {f["name"]: f for f in baseline_constraints.get("features", [])} or {
        name: {"name": name} for name in base_features
    }
    violations: list[dict[str, str]] = []
    missing = [name for name in expected if name not in data.columns]
    extra = [name for name in data.columns if name not in expected]
    for name in missing:
        violations.append(
            _violation(
                name, MISSING_COLUMN_CHECK, f"baseline column {name!r} is not in the captured data"
            )
        )
    for name in extra:
        violations.append(
            _violation(name, EXTRA_COLUMN_CHECK, f"captured column {name!r} is not in the baseline")
        )

    current = statistics(data)
    rows = int(data.values.shape[0])
    compared = [name for name in expected if name in data.columns and name in base_features]
    alpha = significance / max(len(compared), 1)
    distances: dict[str, float] = {}
    for name in compared:
        column = data.values[:, data.columns.index(name)]
        present = column[~np.isnan(column)]
        completeness = present.size / column.size if column.size else 1.0
        wanted = float(expected[name].get("completeness", 1.0))
        if completeness < wanted - 1e-9:
            violations.append(
                _violation(
                    name,
                    COMPLETENESS_CHECK,
                    f"data completeness {completeness:.4f} is below the baseline's {wanted:.4f}",
                )
            )
        sketch = _sketch(base_features[name])
        if not sketch.size or not present.size:
            continue
        distance = ks_distance(sketch, present)
        distances[name] = distance
        critical = critical_distance(sketch.size, present.size, alpha)
        if distance > threshold and distance > critical:
            violations.append(
                _violation(
                    name,
                    DRIFT_CHECK,
                    f"Baseline drift distance: {distance:.4f} exceeds threshold: {threshold} "
                    f"(and the sampling-noise bound {critical:.4f} for {present.size} rows)",
                )
            )
    return CheckResult(current, baseline_constraints, violations, distances, rows)


def _sketch(feature: dict[str, Any]) -> np.ndarray:
    import numpy as np

    kll = feature.get("numerical_statistics", {}).get("distribution", {}).get("kll", {})
    data = kll.get("sketch", {}).get("data") or []
    return np.sort(np.array([v for level in data for v in level], dtype=float))


def _violation(feature: str, check_type: str, description: str) -> dict[str, str]:
    return {
        "feature_name": feature,
        "constraint_check_type": check_type,
        "description": description,
    }


def write_reports(folder: Path, result: CheckResult) -> None:
    """The three files of a monitoring execution, as Model Monitor names them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in result.documents().items():
        (folder / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
