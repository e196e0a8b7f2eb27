"""Monitor step: one run of the monitoring pipeline over an endpoint's captured traffic.

Runs as a SageMaker Processing job of the image (``python -m ci_scripts.runtime monitor``),
started by EventBridge Scheduler on the manifest's ``monitoring.schedule`` (locally, by
``ci_scripts monitor`` through the local pipeline interpreter: the same definition, the same
code). What it reads (``paths.monitor_input_dir``), all under ``processing/input/``:

- ``capture/``: the endpoint's data capture JSON lines (capture.py: both sides, CSV or JSON);
- ``groundtruth/``: labels by inference id (live_quality.py);
- ``baseline/``: the served version's statistics.json (drift.py), from the model package;
- ``bias/``, ``explainability/``: the version's registered bias and explainability reports;
- ``model/``: the version's model.tar.gz (feature-attribution drift re-scores it);
- ``state/``: what earlier runs left (``state.json``: the newest capture time and the labels
  seen; ``history.jsonl``: one line per run, for the metrics over time).

Its configuration is one JSON document in ``$MONITOR_CONFIG`` (ci_scripts writes it from the
manifest: thresholds, the served version, its registered metrics, the CloudWatch namespace).

What it writes: ``processing/output/report/`` (``summary.json``, the verdicts ``ci_scripts
monitor`` reads on both backends; ``report.html``; ``metrics.json``, the CloudWatch datums) and
``processing/output/state/`` (the next run's state). With ``publish_metrics`` the datums go to
CloudWatch (PutMetricData), where the alarms ci_scripts creates watch them.

A run with no capture newer than the last run's and no new label file ends at once with status
``NoData`` (before the statistics libraries are even imported). Data drift is judged on the new
captures; model quality, bias and attribution drift on every capture of the version within
``quality.label_window_hours`` that has a label, so labels that arrive late are joined later.

Every problem type is read through model.py: the captured answers as ``model.response`` writes
them, prediction drift on ``model.drift_value``, live metrics by ``model.metrics`` with each
metric's direction, bias drift on ``model.outcome``, attribution drift on the worsening of
``model.PRIMARY_METRIC``. A check that does not apply (bias off, a single class of labels) is
``NoData`` with the reason in the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ci_scripts import manifest

from . import capture, model, paths
from .errors import StepError

log = logging.getLogger(__name__)

CONFIG_ENV = "MONITOR_CONFIG"
SUMMARY_FILE = "summary.json"
HTML_FILE = "report.html"
METRICS_FILE = "metrics.json"
STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"
INPUTS = ("capture", "groundtruth", "baseline", "bias", "explainability", "model", "state")

# monitoring.quality's defaults are the manifest schema's (ci_scripts.manifest reads them), the
# live drops the model's own MAX_METRIC_DROP: one source each, whoever starts the monitor.
QUALITY_DEFAULTS: dict[str, Any] = {
    **dataclasses.asdict(manifest.Quality.of({})),
    "max_metric_drop": dict(model.MAX_METRIC_DROP),
}
ATTRIBUTION_TOP_K = 10
BIAS_CHECK = "bias_drift_check"
ATTRIBUTION_CHECK = "feature_attribution_drift_check"


@dataclass
class Config:
    """``$MONITOR_CONFIG``, with the defaults filled in."""

    env: str
    model_version: int | None = None
    since: datetime | None = None  # captures before this belong to the version served earlier
    problem_type: str = model.PROBLEM_TYPE
    drift: dict[str, float] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    registered: dict[str, float] = field(default_factory=dict)
    namespace: str = ""
    publish_metrics: bool = False
    region: str = ""

    @classmethod
    def parse(cls, text: str) -> Config:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise StepError(f"${CONFIG_ENV}: not JSON: {exc}") from None
        if not isinstance(raw, dict) or not raw.get("env"):
            raise StepError(f"${CONFIG_ENV}: expected a JSON object with 'env'")
        quality = {**QUALITY_DEFAULTS, **(raw.get("quality") or {})}
        quality["max_metric_drop"] = {
            **QUALITY_DEFAULTS["max_metric_drop"],
            **((raw.get("quality") or {}).get("max_metric_drop") or {}),
        }
        return cls(
            env=str(raw["env"]),
            model_version=raw.get("model_version"),
            since=capture.parse_time(raw.get("since")),
            problem_type=str(raw.get("problem_type") or model.PROBLEM_TYPE),
            drift={
                k: float(raw[k])
                for k in ("drift_threshold", "psi_threshold", "significance")
                if k in raw
            },
            quality=quality,
            registered={k: float(v) for k, v in (raw.get("registered") or {}).items()},
            namespace=str(raw.get("namespace") or ""),
            publish_metrics=bool(raw.get("publish_metrics")),
            region=str(raw.get("region") or ""),
        )


# -- state ---------------------------------------------------------------------------------------
def read_state(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    state_file, history_file = folder / STATE_FILE, folder / HISTORY_FILE
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {}
    history = (
        [json.loads(line) for line in history_file.read_text(encoding="utf-8").splitlines() if line]
        if history_file.is_file()
        else []
    )
    return (state if isinstance(state, dict) else {}), history


def write_state(folder: Path, state: dict[str, Any], history: Sequence[dict[str, Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    (folder / HISTORY_FILE).write_text(
        "".join(json.dumps(run, sort_keys=True) + "\n" for run in history), encoding="utf-8"
    )


def label_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file()) if folder.is_dir() else []


def files_digest(files: Sequence[Path], base: Path) -> str:
    """Names and sizes of the label files: a new or grown file changes it."""
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.relative_to(base).as_posix()}:{path.stat().st_size}\n".encode())
    return h.hexdigest()


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


# -- the checks ----------------------------------------------------------------------------------
def first_report_file(folder: Path) -> Path | None:
    found = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    return found[0] if found else None


def read_json(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    return document if isinstance(document, dict) else {}


def registered_bias(document: dict[str, Any]) -> tuple[Any, str, float] | None:
    """(Facet, how the report names it, DPPL) of the registered bias report (Clarify's
    analysis.json, bias.py): the facet's feature, its group (or the median it is above) and the
    positive outcome."""
    from ci_scripts.schema import Invalid, parse_class

    from .bias import Facet

    section = document.get("post_training_bias_metrics") or {}
    for facet, groups in (section.get("facets") or {}).items():
        for group in groups or []:
            key = str(group.get("value_or_threshold", ""))
            for metric in group.get("metrics") or []:
                if metric.get("name") == "DPPL":
                    try:
                        text = str(section["label_value_or_threshold"])
                        positive: Any = (
                            float(text)
                            if model.CLASSES is None
                            else parse_class(text, model.CLASSES)
                        )
                        value = float(metric["value"])
                    except (ValueError, KeyError, TypeError, Invalid):
                        return None
                    by_median = key.startswith("(") and key.endswith("inf)")
                    return Facet(str(facet), positive, None if by_median else key), key, value
    return None


def bias_drift(joined: Any, document: dict[str, Any], config: Config) -> dict[str, Any]:
    """DPPL (Clarify's definition, bias.py) on labelled live rows against the registered DPPL:
    the same facet (a group against the rest, or above the registered median)."""
    import numpy as np

    from .bias import positive_proportion_difference
    from .features import KINDS

    found = registered_bias(document)
    result: dict[str, Any] = {"status": "NoData", "violations": []}
    if document.get("disabled"):
        result["reason"] = f"does not apply: bias is off for this version ({document['disabled']})"
        return result
    if found is None:
        result["reason"] = "no registered DPPL in the version's bias report"
        return result
    facet_spec, key, registered = found
    facet = facet_spec.feature
    named = f"{facet} > {key[1:].split(',')[0]}" if facet_spec.group is None else f"{facet} = {key}"
    result["registered"] = {"DPPL": registered, "facet": named}
    kind = KINDS.get(facet)
    values: list[Any] = []
    for row in joined.named_rows:
        raw = row.get(facet) if isinstance(row, dict) else None
        try:
            values.append(kind.parse(raw) if kind is not None else raw)
        except ValueError:
            values.append(None)
    keep = [i for i, v in enumerate(values) if v is not None]
    if len(keep) < int(config.quality["min_labelled_rows"]):
        result["reason"] = f"{len(keep)} labelled rows, fewer than min_labelled_rows"
        return result
    kept = [values[i] for i in keep]
    if facet_spec.group is None:
        threshold = float(key.strip("()[] ").split(",")[0])
        inside = np.array([float(v) > threshold for v in kept])
    else:
        wanted = kind.parse(facet_spec.group) if kind is not None else facet_spec.group
        inside = np.array([v == wanted for v in kept])
    predicted = model.outcome(model.from_answers([joined.answers[i] for i in keep]))
    try:
        live = positive_proportion_difference(predicted, inside, facet_spec)
    except StepError as exc:
        result["reason"] = str(exc)
        return result
    result["live"] = {"DPPL": live}
    allowed = float(config.quality["max_bias_drift"])
    result["status"] = "Completed"
    if abs(live - registered) > allowed:
        result["status"] = "CompletedWithViolations"
        result["violations"].append(
            {
                "metric_name": "DPPL",
                "constraint_check_type": BIAS_CHECK,
                "description": f"DPPL of {named} is {live:+.4f} on live data, "
                f"{abs(live - registered):.4f} from the registered {registered:+.4f} "
                f"(max_bias_drift {allowed})",
            }
        )
    return result


def ndcg(registered: dict[str, float], live: dict[str, float], k: int) -> float:
    """NDCG@k of the live importance ranking, scored by the registered importances (the measure
    SageMaker Clarify documents for feature attribution drift)."""
    ideal = sorted(registered.values(), reverse=True)[:k]
    ranked = sorted(live, key=lambda name: -live[name])[:k]
    dcg = sum(max(registered.get(n, 0.0), 0.0) / math.log2(i + 2) for i, n in enumerate(ranked))
    idcg = sum(max(v, 0.0) / math.log2(i + 2) for i, v in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 1.0


def attribution_drift(
    joined: Any, document: dict[str, Any], model_dir: Path, config: Config
) -> dict[str, Any]:
    """Permutation importance (explain.py's method: the worsening of ``model.PRIMARY_METRIC``)
    on labelled live rows, ranked against the registered importance by NDCG."""
    import numpy as np

    from . import explain, model_artifacts
    from .features import parse_feature_rows

    result: dict[str, Any] = {"status": "NoData", "violations": []}
    registered: dict[str, float] = {}
    for labels in (document.get("explanations") or {}).values():
        for entry in (labels or {}).values():
            registered = {k: float(v) for k, v in (entry.get("global_importance") or {}).items()}
    if not registered:
        result["reason"] = "no registered global importance in the explainability report"
        return result
    if joined.labelled_rows < int(config.quality["min_labelled_rows"]):
        result["reason"] = f"{joined.labelled_rows} labelled rows, fewer than min_labelled_rows"
        return result
    try:
        truth = np.asarray([model.parse_truth(v) for v in joined.truth])
    except ValueError as exc:
        result["reason"] = f"does not apply: {exc}"
        return result
    if model.CLASSES is not None and len(set(truth.tolist())) < 2:
        result["reason"] = "does not apply: the labelled live rows hold a single class"
        return result
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        result["reason"] = "no model artifact given"
        return result
    trained = model_artifacts.load(model_dir)
    try:
        matrix = parse_feature_rows(
            ([row.get(n) for n in trained.features] for row in joined.named_rows),
            trained.features,
        )
    except StepError as exc:
        result["reason"] = f"live rows cannot be scored: {exc}"
        return result
    sign = 1.0 if model.higher_is_better(model.PRIMARY_METRIC) else -1.0

    def score(predicted: Any) -> float:  # higher is better, whatever the metric
        return sign * model.primary_metric(truth, predicted)

    if math.isnan(score(trained.predict(matrix))):
        result["reason"] = f"does not apply: {model.PRIMARY_METRIC} is undefined on the live rows"
        return result
    importances = explain.permutation_importance(trained.predict, score, matrix)
    live = dict(zip(trained.features, importances, strict=True))
    score = ndcg(registered, live, ATTRIBUTION_TOP_K)
    wanted = float(config.quality["min_attribution_ndcg"])
    top = sorted(live, key=lambda n: -live[n])[:3]
    result.update(status="Completed", live={"ndcg": score, "top": top})
    if score < wanted:
        result["status"] = "CompletedWithViolations"
        result["violations"].append(
            {
                "metric_name": "ndcg",
                "constraint_check_type": ATTRIBUTION_CHECK,
                "description": f"NDCG@{ATTRIBUTION_TOP_K} of the live feature importance is "
                f"{score:.4f}, below {wanted} (live top: {', '.join(top)})",
            }
        )
    return result


def model_quality(joined: Any, config: Config) -> dict[str, Any]:
    from .live_quality import drops, live_metrics

    rules = config.quality
    coverage = joined.coverage
    result: dict[str, Any] = {
        "status": "NoData",
        "problem_type": model.PROBLEM_TYPE,  # the metrics are model.py's
        "registered": config.registered,
        "live": {},
        "labelled_rows": joined.labelled_rows,
        "captured_rows": joined.captured_rows,
        "coverage": coverage,
        "coverage_ok": not (
            rules["min_coverage"] and coverage is not None and coverage < rules["min_coverage"]
        ),
        "min_coverage": rules["min_coverage"],
        "label_window_hours": rules["label_window_hours"],
        "min_labelled_rows": rules["min_labelled_rows"],
        "judged": False,
        "violations": [],
    }
    if not joined.labelled_rows:
        result["reason"] = (
            "no captured request in the label window has a label"
            if joined.captured_rows
            else "no captured predictions in the label window"
        )
        return result
    try:
        live = live_metrics(joined)
    except ValueError as exc:
        raise StepError(str(exc)) from None
    result["live"] = {k: v for k, v in live.items() if not math.isnan(v)}
    result["status"] = "Completed"
    if joined.labelled_rows < int(rules["min_labelled_rows"]):
        result["reason"] = (
            f"{joined.labelled_rows} labelled rows, fewer than min_labelled_rows "
            f"({rules['min_labelled_rows']}): reported, not judged"
        )
        return result
    result["judged"] = True
    result["violations"] = drops(config.registered, live, rules["max_metric_drop"])
    if result["violations"]:
        result["status"] = "CompletedWithViolations"
    return result


# -- CloudWatch ----------------------------------------------------------------------------------
def metric_data(summary: dict[str, Any], env: str) -> list[dict[str, Any]]:
    """The run's CloudWatch datums (PutMetricData's MetricData), all with Environment=env."""
    dims = [{"Name": "Environment", "Value": env}]
    data = summary.get("data_quality") or {}
    quality = summary.get("model_quality") or {}
    datums = [
        {
            "MetricName": "CapturedRows",
            "Value": float(summary["captured"]["new_rows"]),
            "Unit": "Count",
        },
        {
            "MetricName": "DriftedFeatures",
            "Value": float(sum(1 for f in (data.get("features") or {}).values() if f["drifted"])),
            "Unit": "Count",
        },
        {
            "MetricName": "QualityViolations",
            "Value": float(
                sum(
                    len((summary.get(k) or {}).get("violations") or [])
                    for k in ("model_quality", "bias", "feature_attribution")
                )
            ),
            "Unit": "Count",
        },
        {
            "MetricName": "LabelledRows",
            "Value": float(quality.get("labelled_rows") or 0),
            "Unit": "Count",
        },
    ]
    if quality.get("coverage") is not None:
        datums.append(
            {"MetricName": "LabelCoverage", "Value": float(quality["coverage"]), "Unit": "None"}
        )
    for name, value in (quality.get("live") or {}).items():
        datums.append({"MetricName": f"Live_{name}", "Value": float(value), "Unit": "None"})
    for name, found in (data.get("features") or {}).items():
        datums.append(
            {
                "MetricName": "FeatureDrift",
                "Value": float(found["distance"]),
                "Unit": "None",
                "Dimensions": [*dims, {"Name": "Feature", "Value": name}],
            }
        )
    for datum in datums:
        datum.setdefault("Dimensions", dims)
    return datums


def publish(datums: list[dict[str, Any]], config: Config) -> None:
    import boto3

    client = boto3.client("cloudwatch", region_name=config.region or None)
    for start in range(0, len(datums), 500):  # PutMetricData takes at most 1000 datums
        client.put_metric_data(Namespace=config.namespace, MetricData=datums[start : start + 500])


# -- the run -------------------------------------------------------------------------------------
def run(
    config: Config, inputs: dict[str, Path], report_dir: Path, state_dir: Path
) -> dict[str, Any]:
    """One monitoring run; returns the summary it wrote to ``report_dir``."""
    now = datetime.now(UTC)
    state, history = read_state(inputs["state"])
    watermark = capture.parse_time(state.get("watermark"))
    captured = capture.read_folder(inputs["capture"])
    records = [
        r
        for r in captured.records
        if config.since is None or r.time is None or r.time >= config.since
    ]
    new = [r for r in records if watermark is None or (r.time is not None and r.time > watermark)]
    labels_digest = files_digest(label_files(inputs["groundtruth"]), inputs["groundtruth"])
    summary: dict[str, Any] = {
        "format": "monitor-summary",
        "version": 1,
        "env": config.env,
        "model_version": config.model_version,
        "checked_at": _iso(now),
        "status": "NoData",
        "captured": {
            "records": len(records),
            "rows": sum(len(r.rows) for r in records),
            "new_rows": sum(len(r.rows) for r in new),
            "skipped": captured.skipped,
        },
        "report_html": HTML_FILE,
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    if not records or (not new and labels_digest == state.get("labels_digest")):
        summary["reason"] = (
            f"no capture newer than {_iso(watermark)} and no new label file"
            if watermark
            else "nothing captured yet"
        )
        summary["data_quality"] = {"status": "NoData", "violations": []}
        summary["model_quality"] = {"status": "NoData", "violations": [], "live": {}}
        _write(report_dir, SUMMARY_FILE, summary)
        write_state(state_dir, state, history)
        log.info("%s", summary["reason"])
        return summary

    from . import drift, monitor_report
    from .live_quality import GroundTruthError, join, read_ground_truth

    statistics = read_json(inputs["baseline"] / "statistics.json")
    if not statistics.get("features"):
        raise StepError(f"{inputs['baseline']}: no statistics.json with features (the baseline)")
    names = [f["name"] for f in statistics["features"]]
    from .features import normalised

    new_data = drift.live_data([row for r in new for row in r.rows], names, normalised)
    new_predictions = [p.value for r in new for p in r.predictions]  # model.drift_value
    if new:
        checked = drift.check(new_data, statistics, config.drift, new_predictions)
        summary["data_quality"] = {
            "status": "CompletedWithViolations" if checked.violations else "Completed",
            **checked.as_dict(),
        }
    else:
        summary["data_quality"] = {"status": "NoData", "violations": [], "reason": "no new capture"}

    try:
        labels = read_ground_truth(label_files(inputs["groundtruth"]))
    except GroundTruthError as exc:
        raise StepError(f"ground truth {exc}") from None
    joined = join(records, labels, now, float(config.quality["label_window_hours"]))
    joined.named_rows = drift_rows(joined.rows, names)
    summary["model_quality"] = model_quality(joined, config)
    summary["bias"] = bias_drift(joined, read_json(first_report_file(inputs["bias"])), config)
    summary["feature_attribution"] = attribution_drift(
        joined, read_json(first_report_file(inputs["explainability"])), inputs["model"], config
    )
    verdicts = [
        summary[k]["status"]
        for k in ("data_quality", "model_quality", "bias", "feature_attribution")
    ]
    summary["status"] = (
        "CompletedWithViolations"
        if "CompletedWithViolations" in verdicts
        else ("Completed" if "Completed" in verdicts else "NoData")
    )
    history = [
        *history,
        {
            "checked_at": summary["checked_at"],
            "model_version": config.model_version,
            "rows": summary["captured"]["new_rows"],
            "drifted": [
                v["feature_name"]
                for v in summary["data_quality"]["violations"]
                if "feature_name" in v
            ],
            "live": summary["model_quality"].get("live") or {},
        },
    ]
    datums = metric_data(summary, config.env)
    _write(report_dir, METRICS_FILE, {"Namespace": config.namespace, "MetricData": datums})
    (report_dir / HTML_FILE).write_text(
        monitor_report.render(summary, statistics, new_data.columns, new_predictions, history),
        encoding="utf-8",
    )
    _write(report_dir, SUMMARY_FILE, summary)
    newest = max((r.time for r in records if r.time is not None), default=watermark)
    write_state(
        state_dir,
        {
            "watermark": _iso(newest),
            "labels_digest": labels_digest,
            "model_version": config.model_version,
        },
        history,
    )
    if config.publish_metrics and config.namespace:
        publish(datums, config)
    log.info("monitor %s: %s", config.env, summary["status"])
    return summary


def drift_rows(rows: Sequence[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """Request rows as objects keyed by feature name (positional rows take the baseline's order)."""
    return [
        dict(row) if isinstance(row, dict) else {n: v for n, v in zip(names, row, strict=False)}
        for row in rows
    ]


def _write(folder: Path, name: str, document: Any) -> None:
    (folder / name).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``monitor``; inputs and outputs come from ``paths``, the configuration from
    ``$MONITOR_CONFIG`` (or ``--config FILE``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} monitor",
        description="Check captured traffic for drift and labelled traffic for quality.",
    )
    parser.add_argument("--config", type=Path, help="read the configuration from this file")
    args = parser.parse_args(argv)
    text = (
        args.config.read_text(encoding="utf-8") if args.config else os.environ.get(CONFIG_ENV, "")
    )
    if not text:
        raise StepError(f"${CONFIG_ENV} is not set (the monitoring pipeline sets it)")
    run(
        Config.parse(text),
        {name: paths.monitor_input_dir(name) for name in INPUTS},
        paths.monitor_output_dir("report"),
        paths.monitor_output_dir("state"),
    )
    return 0
