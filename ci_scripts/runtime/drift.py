"""Data drift: the baseline of each feature, and how live traffic is compared with it.

The baseline (``statistics.json``, written by the ``baseline`` step of the training pipeline from
the training features) keeps, per feature:

- numerical: a sample of the training values (all of them up to ``SAMPLE_SIZE``, else that many
  evenly spaced quantiles), the decile edges PSI bins by, and the completeness;
- categorical (a column with any value that is not a number): the count of every category.

plus the same for the model's predictions on the training features (``prediction``: one value
per row, ``model.drift_value`` of its answer: the positive class's probability, the predicted
class as a categorical, or the predicted value), so prediction drift is judged like a feature.

The check, per feature (``check``):

- numerical: the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``): distance ``D``
  (the largest gap between the two empirical CDFs) and its p-value; and the population stability
  index over the baseline's decile bins, ``PSI = sum((live - base) * ln(live / base))``
  (``scipy.special.rel_entr`` both ways; empty bins get a small floor);
- categorical: the chi-square test of the two count vectors (``scipy.stats.chi2_contingency``),
  the largest gap between the category shares (``D``, the L-infinity distance) and PSI over the
  categories (a category the baseline never saw counts too);
- a feature drifts when its p-value is below ``significance / features`` (Bonferroni: the chance
  of any false alarm on unshifted traffic stays near ``significance``) **and** either
  ``D > drift_threshold`` or ``PSI > psi_threshold``. The p-value keeps a handful of requests from
  raising an alarm by sampling noise; the distances keep a huge sample from alarming on a shift
  too small to matter.
- missing values: a feature's share of missing values is tested too (Fisher's exact test,
  ``scipy.stats.fisher_exact``, one-sided: more missing than the baseline), under the same
  Bonferroni correction (every feature counts two tests: its distribution and its missing rate);
  a ``completeness_check`` violation needs that p-value below the corrected significance **and**
  a completeness drop above ``drift_threshold``, so traffic drawn from the training data does not
  alarm on a handful of empty cells;
- captured columns that differ from the baseline's (a schema change) are
  ``missing_column_check`` / ``extra_column_check`` violations: no drift, retraining cannot fix
  those.

The kind of each feature is what schema.py declares (numeric: numerical; categorical and boolean:
categorical), passed by the baseline step; values are compared as the feature reads them
(ci_scripts.schema: ``Yes`` and ``true`` are the same boolean).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ci_scripts import manifest

SAMPLE_SIZE = 2000
PSI_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin so PSI stays finite
PREDICTION = "prediction"  # the name prediction drift is reported under

DRIFT_CHECK = "baseline_drift_check"
PREDICTION_DRIFT_CHECK = "prediction_drift_check"
COMPLETENESS_CHECK = "completeness_check"
MISSING_COLUMN_CHECK = "missing_column_check"
EXTRA_COLUMN_CHECK = "extra_column_check"
SCHEMA_CHECKS = (MISSING_COLUMN_CHECK, EXTRA_COLUMN_CHECK)

_MONITORING = manifest.Monitoring.of({})  # the manifest schema's defaults: one source
DEFAULTS = {
    name: float(getattr(_MONITORING, name))
    for name in ("drift_threshold", "psi_threshold", "significance")
}


class BaselineError(ValueError):
    """A baseline that cannot be built or read; one line naming what is wrong."""


def as_number(value: Any) -> float | None:
    """``value`` as a finite float, None when it is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- baseline -------------------------------------------------------------------------------------
def feature_baseline(name: str, values: Sequence[Any], kind: str | None = None) -> dict[str, Any]:
    """The baseline entry of one column: ``kind`` (numerical or categorical), or by default
    numerical unless a present value is not a number (a class label is a categorical of
    numbers)."""
    import numpy as np

    present = [v for v in values if not is_missing(v)]
    completeness = len(present) / len(values) if values else 1.0
    numbers = [as_number(v) for v in present]
    if kind != "categorical" and present and all(n is not None for n in numbers):
        ordered = np.sort(np.asarray(numbers, dtype=float))
        sample = (
            ordered
            if ordered.size <= SAMPLE_SIZE
            else np.quantile(ordered, np.linspace(0, 1, SAMPLE_SIZE))
        )
        edges = np.unique(np.quantile(ordered, np.linspace(0, 1, PSI_BINS + 1))[1:-1])
        return {
            "name": name,
            "kind": "numerical",
            "completeness": round(completeness, 6),
            "count": int(ordered.size),
            "mean": float(ordered.mean()),
            "std_dev": float(ordered.std()),
            "min": float(ordered[0]),
            "max": float(ordered[-1]),
            "bin_edges": [float(e) for e in edges],
            "sample": [float(v) for v in sample],
        }
    counts = Counter(str(v).strip() for v in present)
    return {
        "name": name,
        "kind": "categorical",
        "completeness": round(completeness, 6),
        "count": len(present),
        "categories": dict(sorted(counts.items())),
    }


def baseline(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    predictions: Sequence[Any],
    prediction_kind: str | None = None,
    kinds: dict[str, str] | None = None,
) -> dict[str, Any]:
    """statistics.json of the training features (each of ``kinds[name]``, numerical or
    categorical; by default inferred) and of the model's predictions on them (one value per row,
    ``model.drift_value``, of kind ``prediction_kind``)."""
    if not rows:
        raise BaselineError("the baseline dataset has no rows")
    features = [
        feature_baseline(
            name, [row[i] if i < len(row) else None for row in rows], (kinds or {}).get(name)
        )
        for i, name in enumerate(columns)
    ]
    return {
        "format": "monitor-baseline",
        "version": 1,
        "dataset": {"item_count": len(rows)},
        "features": features,
        "prediction": feature_baseline(PREDICTION, list(predictions), prediction_kind),
    }


def constraints(statistics: dict[str, Any]) -> dict[str, Any]:
    """constraints.json: the defaults the check uses unless the manifest sets its own."""
    return {
        "format": "monitor-constraints",
        "version": 1,
        **DEFAULTS,
        "features": [
            {"name": f["name"], "kind": f["kind"], "completeness": f["completeness"]}
            for f in statistics.get("features", [])
        ],
    }


# -- live data ------------------------------------------------------------------------------------
@dataclass
class LiveData:
    """Captured rows as named columns (raw values; None where a value was absent)."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    rows: int = 0


def live_data(
    rows: Sequence[list[Any] | dict[str, Any]],
    names: Sequence[str],
    normalise: Callable[[str, Any], Any] | None = None,
) -> LiveData:
    """Rows in the baseline's column names: positional rows (CSV, JSON arrays) take the
    baseline's names in order, values past the last one are ``_c<index>``; objects name theirs.
    ``normalise(name, value)`` reads a value as its feature does (the baseline's were read so)."""
    named: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, dict):
            named.append({str(k): v for k, v in row.items()})
        else:
            named.append({(names[i] if i < len(names) else f"_c{i}"): v for i, v in enumerate(row)})
    seen = dict.fromkeys(name for row in named for name in row)
    ordered = [n for n in names if n in seen] + [n for n in seen if n not in names]
    read = normalise or (lambda _name, value: value)
    return LiveData({c: [read(c, row.get(c)) for row in named] for c in ordered}, len(named))


# -- the check ------------------------------------------------------------------------------------
@dataclass
class FeatureDrift:
    name: str
    kind: str
    rows: int
    distance: float
    psi: float
    p_value: float
    drifted: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "distance": round(self.distance, 6),
            "psi": round(self.psi, 6),
            "p_value": float(f"{self.p_value:.6g}"),
            "drifted": self.drifted,
        }


def psi(base_shares: Any, live_shares: Any) -> float:
    """Population stability index of two share vectors (both sum to 1)."""
    import numpy as np
    from scipy.special import rel_entr

    base = np.maximum(np.asarray(base_shares, dtype=float), PSI_FLOOR)
    live = np.maximum(np.asarray(live_shares, dtype=float), PSI_FLOOR)
    base, live = base / base.sum(), live / live.sum()
    return float(np.sum(rel_entr(live, base) + rel_entr(base, live)))


def numerical_drift(entry: dict[str, Any], values: Sequence[float]) -> tuple[float, float, float]:
    """(KS distance, PSI, KS p-value) of live ``values`` against a numerical baseline."""
    import numpy as np
    from scipy import stats

    sample = np.asarray(entry["sample"], dtype=float)
    live = np.asarray(values, dtype=float)
    test = stats.ks_2samp(sample, live)
    edges = np.asarray(entry.get("bin_edges") or [], dtype=float)

    def shares(data: Any) -> Any:
        return np.bincount(np.searchsorted(edges, data, side="right"), minlength=edges.size + 1)

    return float(test.statistic), psi(shares(sample), shares(live)), float(test.pvalue)


def categorical_drift(entry: dict[str, Any], values: Sequence[Any]) -> tuple[float, float, float]:
    """(largest share gap, PSI, chi-square p-value) of live categories against the baseline."""
    import numpy as np
    from scipy import stats

    base_counts: dict[str, int] = dict(entry.get("categories") or {})
    live_counts = Counter(str(v).strip() for v in values)
    categories = sorted(set(base_counts) | set(live_counts))
    base = np.array([base_counts.get(c, 0) for c in categories], dtype=float)
    live = np.array([live_counts.get(c, 0) for c in categories], dtype=float)
    distance = float(np.max(np.abs(base / base.sum() - live / live.sum())))
    if len(categories) < 2:
        return distance, 0.0, 1.0
    _, p_value, _, _ = stats.chi2_contingency(np.vstack([base, live]) + 0.5)
    return distance, psi(base / base.sum(), live / live.sum()), float(p_value)


def judge(
    entry: dict[str, Any], values: Sequence[Any], settings: dict[str, float], alpha: float
) -> FeatureDrift | None:
    """The drift of one column (None when there is nothing present to compare)."""
    present = [v for v in values if not is_missing(v)]
    if not present:
        return None
    if entry["kind"] == "numerical":
        numbers = [n for v in present if (n := as_number(v)) is not None]
        if not numbers:
            return None
        distance, index, p_value = numerical_drift(entry, numbers)
    else:
        distance, index, p_value = categorical_drift(entry, present)
    drifted = p_value < alpha and (
        distance > settings["drift_threshold"] or index > settings["psi_threshold"]
    )
    return FeatureDrift(
        entry["name"], entry["kind"], len(present), distance, index, p_value, drifted
    )


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


@dataclass
class DriftResult:
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    violations: list[dict[str, str]] = field(default_factory=list)
    rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "features": {name: f.as_dict() for name, f in self.features.items()},
            "violations": self.violations,
        }


def completeness_drift(entry: dict[str, Any], values: Sequence[Any]) -> tuple[float, float, float]:
    """(baseline completeness, live completeness, one-sided p-value that live values are missing
    more often than the baseline's) by Fisher's exact test on the two missing/present counts."""
    from scipy import stats

    wanted = float(entry.get("completeness", 1.0))
    base_present = int(entry.get("count", 0))
    base_total = round(base_present / wanted) if wanted > 0 else base_present
    live_present = sum(not is_missing(v) for v in values)
    live = live_present / len(values) if values else 1.0
    if live >= wanted or not values:
        return wanted, live, 1.0
    table = [
        [len(values) - live_present, live_present],
        [max(base_total - base_present, 0), base_present],
    ]
    _, p_value = stats.fisher_exact(table, alternative="greater")
    return wanted, live, float(p_value)


def check(
    data: LiveData,
    statistics: dict[str, Any],
    settings: dict[str, float],
    predictions: Sequence[float] = (),
) -> DriftResult:
    """Every feature (and the prediction) of ``data`` against the baseline ``statistics``."""
    settings = {**DEFAULTS, **{k: float(v) for k, v in settings.items() if k in DEFAULTS}}
    result = DriftResult(rows=data.rows)
    expected = {f["name"]: f for f in statistics.get("features", [])}
    for name in expected:
        if name not in data.columns:
            result.violations.append(
                violation(name, MISSING_COLUMN_CHECK, f"baseline column {name!r} is not captured")
            )
    for name in data.columns:
        if name not in expected:
            result.violations.append(
                violation(
                    name, EXTRA_COLUMN_CHECK, f"captured column {name!r} is not in the baseline"
                )
            )
    compared = [n for n in expected if n in data.columns]
    baseline_prediction = statistics.get("prediction")
    # Two tests per feature (its distribution, its missing rate) and one for the prediction.
    judged = 2 * len(compared) + (1 if baseline_prediction and predictions else 0)
    alpha = settings["significance"] / max(judged, 1)
    for name in compared:
        values = data.columns[name]
        wanted, completeness, p_value = completeness_drift(expected[name], values)
        if p_value < alpha and wanted - completeness > settings["drift_threshold"]:
            result.violations.append(
                violation(
                    name,
                    COMPLETENESS_CHECK,
                    f"completeness {completeness:.4f} is below the baseline's {wanted:.4f} "
                    f"(p-value {p_value:.3g}, threshold {settings['drift_threshold']})",
                )
            )
        found = judge(expected[name], values, settings, alpha)
        if found is None:
            continue
        result.features[name] = found
        if found.drifted:
            result.violations.append(violation(name, DRIFT_CHECK, describe(found, settings)))
    if baseline_prediction and predictions:
        found = judge(baseline_prediction, list(predictions), settings, alpha)
        if found is not None:
            result.features[PREDICTION] = found
            if found.drifted:
                result.violations.append(
                    violation(PREDICTION, PREDICTION_DRIFT_CHECK, describe(found, settings))
                )
    return result


def describe(found: FeatureDrift, settings: dict[str, float]) -> str:
    return (
        f"distance {found.distance:.4f} (threshold {settings['drift_threshold']}), "
        f"PSI {found.psi:.4f} (threshold {settings['psi_threshold']}), p-value "
        f"{found.p_value:.2e} on {found.rows} rows"
    )
