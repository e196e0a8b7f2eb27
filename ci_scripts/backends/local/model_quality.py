"""Model quality on this machine: captured predictions joined with ground truth, checked now.

Model Monitor's model quality job merges the captures of an endpoint with the ground truth by
inference id, computes the metrics and compares them with constraints. Here the same happens
over ``.mlops``: the captures the local router wrote for the served version
(``.mlops/datacapture/<env>/version-<n>/``, each request's ``X-Amzn-SageMaker-Inference-Id``
in ``eventMetadata.inferenceId``), the labels under the local s3 tree's
``groundtruth/<env>/`` (:mod:`ci_scripts.model_quality` documents the format), and the
version's registered metrics. The three report files land where an execution writes them:
``s3://<bucket>/monitoring/<env>/model-quality/<endpoint>/<schedule>/YYYY/MM/DD/HH/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ci_scripts import model_quality as mq
from ci_scripts import problem_types
from ci_scripts.backends.base import EndpointState
from ci_scripts.backends.local.check import LocalCheck
from ci_scripts.errors import CIError
from ci_scripts.model_contract import load as load_contract


class LocalModelQuality(LocalCheck):
    """Runs a model quality check now (Model Monitor runs it on a schedule)."""

    def check(
        self, env: str, manifest: dict[str, Any], endpoint: EndpointState | None
    ) -> mq.QualityResult:
        p = self.project
        schedule = mq.schedule_name(p.project, env)
        number = self.served_version_number(env, manifest, endpoint)
        version = self.registry.get_version(p.model_package_group, number)
        if version is None:
            raise CIError(
                f"{p.model_package_arn(number)}: not in the local registry; "
                "cannot read its evaluation metrics"
            )
        kind = load_contract(p).problem_type
        standard = problem_types.get(kind).metrics
        registered = {k: v for k, v in version.metrics.items() if k in standard}
        if not registered:
            raise CIError(f"{version.arn}: no evaluation metrics recorded in the registry")
        now = datetime.now(UTC)
        result = mq.QualityResult(
            env=env,
            schedule=schedule,
            status="NoData",
            model_version=version.version,
            registered=registered,
            checked_at=now.isoformat(timespec="seconds"),
        )
        rows, predictions = mq.captured_predictions(
            self._captured_lines(env, version.version), kind
        )
        result.captured_rows = rows
        labels = self._labels(env, kind)
        joined = mq.join(rows, predictions, labels)
        result.labelled_rows = joined.labelled_rows
        if not joined.labelled_rows:
            where = mq.ground_truth_prefix(p.capture_bucket(env), env)
            result.failure_reason = (
                f"no captured request of version {version.version} has a label under {where}/"
                if rows
                else f"no requests captured for version {version.version}"
            )
            return result
        rules = mq.settings(manifest)
        live = mq.live_metrics(joined, kind)
        constraints = mq.constraints(registered, rules["max_metric_drop"], kind)
        found = mq.violations(live, constraints)
        result.live = live
        result.report_uri = self._report_uri(
            mq.report_prefix(p.artifact_bucket, env), env, schedule, now
        )
        mq.write_reports(
            self.state.s3_path(result.report_uri),
            mq.statistics(live, joined.labelled_rows, kind),
            constraints,
            found,
        )
        self.state.journal("MonitoringExecution", schedule, report=result.report_uri)
        result.violations = found
        result.status = "CompletedWithViolations" if found else "Completed"
        return result

    def _labels(self, env: str, kind: str) -> dict[str, list[float]]:
        folder = self.state.s3_path(mq.ground_truth_prefix(self.project.capture_bucket(env), env))
        files = sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []
        try:
            return mq.read_ground_truth(files, name=self.state.s3_uri, problem_type=kind)
        except mq.GroundTruthError as exc:
            raise CIError(f"ground truth {exc}") from None
