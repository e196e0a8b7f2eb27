"""The HTML page of one monitoring run: what a person opens when the monitor raises an alarm.

One self-contained file (inline CSS and SVG, no script, no external asset, so it opens from S3 or
a laptop alike): the run's verdicts, the baseline and live distribution of every drifting feature
(histograms over the same bins), every feature's distance and PSI, and the live metrics of every
run so far (from the monitor's history) against the registered values.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

BINS = 12
WIDTH, HEIGHT = 360, 120
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
    "th{background:#f4f4f4}.bad{color:#b00020;font-weight:bold}.ok{color:#1b5e20}"
    "figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:90%}"
)


def esc(value: Any) -> str:
    return html.escape(str(value))


def histogram_svg(baseline: Sequence[float], live: Sequence[float]) -> str:
    """Two histograms (baseline grey, live red) over the same bins, as shares of each sample."""
    import numpy as np

    data = np.concatenate([np.asarray(baseline, float), np.asarray(live, float)])
    low, high = float(data.min()), float(data.max())
    edges = np.linspace(low, high if high > low else low + 1, BINS + 1)
    base, _ = np.histogram(baseline, bins=edges)
    now, _ = np.histogram(live, bins=edges)
    base = base / max(base.sum(), 1)
    now = now / max(now.sum(), 1)
    top = max(float(base.max()), float(now.max()), 1e-9)
    step = WIDTH / BINS
    bars = []
    for i, (b, n) in enumerate(zip(base, now, strict=True)):
        x = i * step
        for offset, share, colour in ((0.0, b, "#9e9e9e"), (step / 2, n, "#d32f2f")):
            h = HEIGHT * float(share) / top
            bars.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - h:.1f}" width="{step / 2 - 1:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
    axis = (
        f'<text x="0" y="{HEIGHT + 14}" font-size="10">{low:.4g}</text>'
        f'<text x="{WIDTH}" y="{HEIGHT + 14}" font-size="10" text-anchor="end">{high:.4g}</text>'
    )
    return f'<svg width="{WIDTH}" height="{HEIGHT + 18}" role="img">{"".join(bars)}{axis}</svg>'


def category_table(baseline: dict[str, int], live: Sequence[Any]) -> str:
    from collections import Counter

    counts = Counter(str(v).strip() for v in live)
    total_base, total_live = max(sum(baseline.values()), 1), max(sum(counts.values()), 1)
    rows = "".join(
        f"<tr><td>{esc(c)}</td><td>{baseline.get(c, 0) / total_base:.3f}</td>"
        f"<td>{counts.get(c, 0) / total_live:.3f}</td></tr>"
        for c in sorted(set(baseline) | set(counts))
    )
    return f"<table><tr><th>category</th><th>baseline</th><th>live</th></tr>{rows}</table>"


def metrics_over_time_svg(history: Sequence[dict[str, Any]], metric: str, registered: Any) -> str:
    """One metric's live value per run (a polyline), with the registered value as a line."""
    points = [
        (i, float(v))
        for i, run in enumerate(history)
        if isinstance(v := (run.get("live") or {}).get(metric), int | float) and math.isfinite(v)
    ]
    if not points:
        return ""
    values = [v for _, v in points] + ([float(registered)] if registered is not None else [])
    low, high = min(values), max(values)
    span = high - low or 1.0
    last = max(len(history) - 1, 1)

    def xy(i: float, v: float) -> str:
        return f"{WIDTH * i / last:.1f},{HEIGHT - HEIGHT * (v - low) / span:.1f}"

    line = " ".join(xy(i, v) for i, v in points)
    reference = ""
    if registered is not None:
        y = HEIGHT - HEIGHT * (float(registered) - low) / span
        reference = (
            f'<line x1="0" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="#9e9e9e" '
            'stroke-dasharray="4"/>'
        )
    dots = "".join(
        f'<circle cx="{xy(i, v).split(",")[0]}" cy="{xy(i, v).split(",")[1]}" r="2.5" '
        'fill="#1565c0"/>'
        for i, v in points
    )
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img">{reference}'
        f'<polyline points="{line}" fill="none" stroke="#1565c0"/>{dots}</svg>'
    )


def render(
    summary: dict[str, Any],
    statistics: dict[str, Any],
    live_columns: dict[str, list[Any]],
    live_predictions: Sequence[Any],  # model.drift_value per row
    history: Sequence[dict[str, Any]],
) -> str:
    """The page for one run."""
    from .drift import PREDICTION, as_number

    data = summary.get("data_quality") or {}
    quality = summary.get("model_quality") or {}
    parts = [
        f"<h1>Monitoring: {esc(summary.get('env'))}, model version "
        f"{esc(summary.get('model_version'))}</h1>",
        f"<p>Run at {esc(summary.get('checked_at'))}: <b>{esc(summary.get('status'))}</b>. "
        f"{esc(summary.get('reason', ''))}</p>",
    ]
    sections = ("data_quality", "model_quality", "bias", "feature_attribution")
    verdicts = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc((summary.get(name) or {}).get('status', 'n/a'))}</td>"
        f"<td>{len((summary.get(name) or {}).get('violations') or [])}</td></tr>"
        for name in sections
    )
    parts.append(
        "<table><tr><th>check</th><th>status</th><th>violations</th></tr>" + verdicts + "</table>"
    )
    violations = [v for name in sections for v in (summary.get(name) or {}).get("violations") or []]
    if violations:
        rows = "".join(
            f"<tr><td>{esc(v.get('feature_name') or v.get('metric_name'))}</td>"
            f"<td>{esc(v.get('constraint_check_type'))}</td><td>{esc(v.get('description'))}</td></tr>"
            for v in violations
        )
        parts.append(
            "<h2>Violations</h2><table><tr><th>feature / metric</th><th>check</th>"
            f"<th>description</th></tr>{rows}</table>"
        )
    entries = {f["name"]: f for f in statistics.get("features", [])}
    if statistics.get("prediction"):
        entries[PREDICTION] = statistics["prediction"]
    features = data.get("features") or {}
    drifting = [name for name, f in features.items() if f.get("drifted")]
    if drifting:
        parts.append("<h2>Drifting features: baseline (grey) and live (red)</h2>")
    for name in drifting:
        entry = entries.get(name) or {}
        values = live_predictions if name == PREDICTION else live_columns.get(name, [])
        if entry.get("kind") == "numerical":
            numbers = [n for v in values if (n := as_number(v)) is not None]
            body = histogram_svg(entry.get("sample") or [0.0], numbers or [0.0])
        else:
            body = category_table(entry.get("categories") or {}, values)
        f = features[name]
        parts.append(
            f"<figure>{body}<figcaption>{esc(name)}: distance {f['distance']:.3f}, "
            f"PSI {f['psi']:.3f}, p {f['p_value']:.2e}</figcaption></figure>"
        )
    if features:
        rows = "".join(
            f"<tr><td>{esc(name)}</td><td>{esc(f['kind'])}</td><td>{f['rows']}</td>"
            f"<td>{f['distance']:.4f}</td><td>{f['psi']:.4f}</td><td>{f['p_value']:.2e}</td>"
            f'<td class="{"bad" if f["drifted"] else "ok"}">'
            f"{'drift' if f['drifted'] else 'ok'}</td></tr>"
            for name, f in features.items()
        )
        parts.append(
            "<h2>Every feature</h2><table><tr><th>feature</th><th>kind</th><th>rows</th>"
            "<th>distance</th><th>PSI</th><th>p-value</th><th></th></tr>" + rows + "</table>"
        )
    registered = quality.get("registered") or {}
    names = sorted({m for run in history for m in (run.get("live") or {})} | set(registered))
    charts = [
        (m, svg) for m in names if (svg := metrics_over_time_svg(history, m, registered.get(m)))
    ]
    if charts:
        parts.append("<h2>Live metrics over time (dashed: registered)</h2>")
        parts.extend(
            f"<figure>{svg}<figcaption>{esc(m)}</figcaption></figure>" for m, svg in charts
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>monitor {esc(summary.get('env'))}</title><style>{STYLE}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )
