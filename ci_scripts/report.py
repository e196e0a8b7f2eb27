"""Pull request bodies for proposals: what a reviewer needs to approve a model by merging.

The body compares the candidate with what the environment runs now (metric deltas,
hyperparameter changes), links the registry entry, and says what merging and closing do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from ci_scripts import model_reports
from ci_scripts.backends.base import ModelVersion
from ci_scripts.model_contract import ModelContract

MARKER = "<!-- sagemaker-gitops:proposal env={env} version={version} -->"


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"


def _delta(new: float | None, old: float | None) -> str:
    if new is None or old is None or math.isnan(new) or math.isnan(old):
        return "-"
    diff = new - old
    return "0" if abs(diff) < 5e-5 else f"{diff:+.4f}"


def _metric_names(first: Sequence[str], *versions: ModelVersion | None) -> list[str]:
    """``first`` (the model's metrics, primary first) when present; the rest alphabetically."""
    names = {name for v in versions if v for name in v.metrics}
    return [m for m in first if m in names] + sorted(names - set(first))


def metrics_table(
    candidate: ModelVersion, baseline: ModelVersion | None, contract: ModelContract | None = None
) -> str:
    """Candidate vs baseline per metric; the model's primary metric first, named as such."""
    contract = contract or ModelContract(source="default")
    primary = contract.primary_metric
    first = [primary, *(m for m in contract.metrics if m != primary)]
    base_title = f"v{baseline.version} (now)" if baseline else "now"
    lines = [
        f"| metric | v{candidate.version} (candidate) | {base_title} | delta |",
        "|---|---:|---:|---:|",
    ]
    for name in _metric_names(first, candidate, baseline):
        new = candidate.metrics.get(name)
        old = baseline.metrics.get(name) if baseline else None
        title = f"**{name}** (primary, {contract.direction})" if name == primary else name
        lines.append(f"| {title} | {_number(new)} | {_number(old)} | {_delta(new, old)} |")
    if len(lines) == 2:
        lines.append("| (no metrics recorded) | - | - | - |")
    return "\n".join(lines)


def hyperparameters_table(candidate: ModelVersion, baseline: ModelVersion | None) -> str:
    names = sorted(
        set(candidate.hyperparameters) | set(baseline.hyperparameters if baseline else {})
    )
    if not names:
        return "_No hyperparameters recorded in the registry._"
    base_title = f"v{baseline.version}" if baseline else "now"
    lines = [f"| hyperparameter | v{candidate.version} | {base_title} |", "|---|---|---|"]
    for name in names:
        new = candidate.hyperparameters.get(name, "-")
        old = baseline.hyperparameters.get(name, "-") if baseline else "-"
        changed = " (changed)" if baseline and new != old else ""
        lines.append(f"| {name} | `{new}`{changed} | `{old}` |")
    return "\n".join(lines)


def proposal_body(
    *,
    env: str,
    manifest_label: str,
    candidate: ModelVersion,
    baseline: ModelVersion | None,
    baseline_note: str,
    next_step: str,
    cost: str = "",
    contract: ModelContract | None = None,
) -> str:
    """Markdown for the PR that points ``manifest_label`` at ``candidate``; ``cost`` is the
    instance-hours table (ci_scripts.cost)."""
    links = [f"- Model package: `{candidate.arn}` ({candidate.approval_status})"]
    if candidate.model_data_url:
        links.append(f"- Model artifact: `{candidate.model_data_url}`")
    if candidate.image_uri:
        links.append(f"- Image: `{candidate.image_uri}`")
    if candidate.baseline_uri and "data_statistics" not in candidate.reports:
        links.append(f"- Data baseline: `{candidate.baseline_uri}`")
    if baseline:
        links.append(f"- Compared with: `{baseline.arn}` ({baseline.approval_status})")
    if run := candidate.training.get("mlflow_run"):
        links.append(f"- Tracked run (MLflow): {run}")
    if job := candidate.training.get("tuning_job"):
        links.append(f"- Tuning job: `{job}`")
    created = f", registered {candidate.created}" if candidate.created else ""
    return "\n".join(
        [
            MARKER.format(env=env, version=candidate.version),
            f"## Deploy model version {candidate.version} to {env}",
            "",
            f"`{manifest_label}` now names version **{candidate.version}** of model package "
            f"group `{candidate.group}`{created}. {baseline_note}",
            "",
            "### Metrics",
            "",
            metrics_table(candidate, baseline, contract),
            "",
            "### Hyperparameters",
            "",
            hyperparameters_table(candidate, baseline),
            "",
            *trials_section(candidate),
            "### Data baseline, bias and explainability",
            "",
            *(
                model_reports.markdown(candidate.checks, candidate.reports)
                or [_no_reports(candidate)]
            ),
            "",
            *(["### Cost", "", cost, ""] if cost else []),
            "### Links",
            "",
            *links,
            "",
            "### Approve or reject",
            "",
            f"- **Approve: merge this pull request.** {next_step}",
            "- **Reject: close it.** To keep the version from being proposed again, set it "
            "Rejected in the registry: `aws sagemaker update-model-package --model-package-arn "
            f"{candidate.arn} --model-approval-status Rejected`.",
            "",
        ]
    )


def trials_section(candidate: ModelVersion) -> list[str]:
    """ "### Trials": the tuning trials best first (the registered version is the first), or the
    best trial alone when the registry holds only that; nothing for a version trained once."""
    training = candidate.training
    if not training.get("tuning_job"):
        return []
    objective = training.get("tuning_objective", "objective")
    try:
        trials = json.loads(training.get("trials") or "[]")
    except ValueError:
        trials = []
    lines = ["### Trials", ""]
    if not trials:
        lines += [
            f"Best of {training.get('tuning_trials', 'several')} trials of tuning job"
            f" `{training['tuning_job']}`: `{training.get('best_training_job', '?')}`,"
            f" {objective} {training.get('best_objective', '-')}.",
            "",
        ]
        return lines
    names = sorted({n for t in trials for n in (t.get("hyperparameters") or {})})
    lines.append(f"| # | trial | {objective} | " + " | ".join(names) + " |")
    lines.append("|---" * (3 + len(names)) + "|")
    for rank, trial in enumerate(trials, 1):
        value = trial.get("objective")
        shown = _number(value) if isinstance(value, int | float) else trial.get("status", "-")
        mark = " (registered)" if rank == 1 else ""
        values = [str((trial.get("hyperparameters") or {}).get(n, "-")) for n in names]
        lines.append(
            f"| {rank} | `{trial.get('job', '?')}`{mark} | {shown} | " + " | ".join(values) + " |"
        )
    return [*lines, ""]


def _no_reports(candidate: ModelVersion) -> str:
    """The line shown when the package has no reports; it never denies the baseline the Links
    section then names."""
    if candidate.baseline_uri:
        return (
            "_No bias or explainability report in the registry; the data baseline is linked below._"
        )
    return "_No data baseline, bias or explainability report in the registry._"
