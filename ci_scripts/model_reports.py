"""What a reviewer reads of a version's reports: data baseline, bias and explainability.

The pipeline attaches the reports to the model package (ModelMetrics: ModelDataQuality,
Bias.Report, Explainability.Report); both registries read them and keep a short summary, which
the proposal's pull request shows. The summaries come from SageMaker's own layouts:
Model Monitor's statistics.json, and Clarify's analysis.json (``pre_training_bias_metrics`` /
``post_training_bias_metrics`` -> facets -> metrics; ``explanations`` -> method -> label ->
``global_shap_values`` or, for our permutation importance, ``global_importance``). A report in
an unexpected shape gives an empty summary, never an error: the package stays deployable.
"""

from __future__ import annotations

import math
from typing import Any

# ModelMetrics / DriftCheckBaselines paths -> the name ModelVersion.reports uses
REPORT_PATHS = {
    "data_statistics": ("ModelDataQuality", "Statistics"),
    "data_constraints": ("ModelDataQuality", "Constraints"),
    "bias": ("Bias", "Report"),
    "explainability": ("Explainability", "Report"),
}
TOP_FEATURES = 3


def report_uris(model_metrics: Any, drift_check_baselines: Any = None) -> dict[str, str]:
    """kind -> S3 URI of each report attached to a package (drift baselines fill gaps)."""
    found: dict[str, str] = {}
    for holder in (model_metrics, drift_check_baselines):
        for kind, (section, part) in REPORT_PATHS.items():
            uri = (((holder or {}).get(section) or {}).get(part) or {}).get("S3Uri")
            if isinstance(uri, str) and uri and kind not in found:
                found[kind] = uri
    return found


def summarize(kind: str, document: Any) -> dict[str, Any]:
    """The short summary of one report (empty when it has an unexpected shape)."""
    if not isinstance(document, dict):
        return {}
    if kind == "data_statistics":
        features = document.get("features") or []
        rows = (document.get("dataset") or {}).get("item_count")
        return {"features": len(features), **({"rows": rows} if rows is not None else {})}
    if kind == "bias":
        return _bias(document)
    if kind == "explainability":
        return _explainability(document)
    return {}


def _bias(document: dict[str, Any]) -> dict[str, Any]:
    if isinstance(document.get("disabled"), str):  # the model repo turned bias off, saying why
        return {"off": document["disabled"]}
    metrics: dict[str, Any] = {}
    for section in ("pre_training_bias_metrics", "post_training_bias_metrics"):
        for facet, groups in ((document.get(section) or {}).get("facets") or {}).items():
            for group in groups if isinstance(groups, list) else []:
                for metric in group.get("metrics") or []:
                    value = _finite(metric.get("value"))
                    if metric.get("name") and value is not None:
                        metrics["facet"] = f"{facet} {group.get('value_or_threshold', '')}".strip()
                        metrics[str(metric["name"])] = value
    return metrics


def _explainability(document: dict[str, Any]) -> dict[str, Any]:
    for method, labels in (document.get("explanations") or {}).items():
        for label in (labels or {}).values() if isinstance(labels, dict) else []:
            if not isinstance(label, dict):
                continue
            values = label.get("global_shap_values") or label.get("global_importance") or {}
            ranked = sorted(
                (
                    (str(name), number)
                    for name, v in values.items()
                    if (number := _finite(v)) is not None
                ),
                key=lambda item: -abs(item[1]),
            )
            if ranked:
                return {"method": method, "top": [[n, v] for n, v in ranked[:TOP_FEATURES]]}
    return {}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def markdown(checks: dict[str, dict[str, Any]], reports: dict[str, str]) -> list[str]:
    """Lines for the proposal's "Data baseline, bias and explainability" section."""
    lines: list[str] = []
    stats = checks.get("data_statistics") or {}
    if "data_statistics" in reports:
        shape = (
            f" ({stats['features']} features"
            + (f", {stats['rows']} rows" if "rows" in stats else "")
            + ")"
            if stats
            else ""
        )
        lines.append(f"- Data quality baseline{shape}: `{reports['data_statistics']}`")
        if "data_constraints" in reports:
            lines.append(f"  constraints: `{reports['data_constraints']}`")
    bias = checks.get("bias") or {}
    if bias or "bias" in reports:
        values = ", ".join(
            f"{k} {v:+.3f}" for k, v in bias.items() if k != "facet" and isinstance(v, float)
        )
        facet = f" for facet `{bias['facet']}`" if bias.get("facet") else ""
        if bias.get("off"):
            lines.append(f"- Bias: off ({bias['off']})")
        else:
            lines.append(f"- Bias{facet}: {values or 'no metrics read'}")
        if "bias" in reports:
            lines.append(f"  report: `{reports['bias']}`")
    explain = checks.get("explainability") or {}
    if explain or "explainability" in reports:
        top = ", ".join(f"`{name}` {value:.4f}" for name, value in explain.get("top") or [])
        method = f" ({explain['method']})" if explain.get("method") else ""
        lines.append(f"- Top features{method}: {top or 'none read'}")
        if "explainability" in reports:
            lines.append(f"  report: `{reports['explainability']}`")
    return lines
