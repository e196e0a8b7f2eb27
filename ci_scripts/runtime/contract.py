"""The platform's contract check on a team's model and data: what every pipeline run will need.

A model repo's tests call :func:`check` (tests/test_platform_contract.py): it runs the platform's
real step code in-process on the repo's own data/dataset.csv under a throw-away ``/opt/ml`` and
fails with one line naming what broke, long before a SageMaker job would:

1. preprocess splits the dataset (every column the schema declares, the target's classes);
2. train fits ``build_estimator`` with the default hyperparameters, and each hyperparameter's
   ``other`` value is read and reaches the estimator's parameters;
3. the fitted model saves and loads back as serve and evaluate load it;
4. evaluate reports every one of ``METRICS`` as a finite number, and the primary metric;
5. serve answers a JSON request (arrays and objects keyed by feature name) and a CSV request,
   one answer per row, each valid against the problem type's answer schema.

The gate's verdict is reported, not enforced: a model that misses its threshold on the shipped
data is a finding for its team (the pipeline would not register it), not a broken contract.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_scripts.hyperparameters import ESTIMATOR

from .errors import StepError

DATASET = Path("data") / "dataset.csv"


@dataclass
class Verdict:
    """What the check found: the primary metric on the test split and the gate's verdict."""

    metrics: dict[str, float]
    primary_metric: str
    passes_gate: bool


@contextmanager
def _opt_ml(root: Path) -> Iterator[None]:
    from . import paths

    saved = os.environ.get(paths.ENV_VAR)
    os.environ[paths.ENV_VAR] = str(root)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(paths.ENV_VAR, None)
        else:
            os.environ[paths.ENV_VAR] = saved


def check(repo: Path, work: Path) -> Verdict:
    """Run the contract on ``repo``'s model and dataset under ``work``; StepError on a breach."""
    from . import evaluate, model, model_artifacts, paths, preprocess, serve, train
    from .features import FEATURES

    dataset = repo / DATASET
    if not dataset.is_file():
        raise StepError(f"{DATASET}: not found; the pipeline trains on it")
    with _opt_ml(work):
        paths.processing_input_dir().mkdir(parents=True)
        shutil.copy(dataset, paths.processing_input_dir() / dataset.name)
        preprocess.main([])
        for channel in ("train", "validation"):
            paths.channel_dir(channel).mkdir(parents=True)
            shutil.copy(paths.split_file(channel), paths.channel_dir(channel))
        _check_hyperparameters(model)
        train.main([])
        trained = model_artifacts.load(paths.model_dir())
        if trained.features != list(FEATURES):
            raise StepError(f"the saved model reads {trained.features}, schema.py says {FEATURES}")
        scores = evaluate.run(
            paths.model_dir(), paths.split_file("test").parent, work / "eval.json"
        )
        bad = [name for name in model.METRICS if not math.isfinite(scores.get(name, math.nan))]
        if bad:
            raise StepError(
                f"model.metrics: {', '.join(bad)} not a finite number on the test split"
            )
        _check_serving(serve.InferenceApp(trained), paths.split_file("test"), model, FEATURES)
    value = scores[model.PRIMARY_METRIC]
    passes = value >= model.THRESHOLD if model.HIGHER_IS_BETTER else value <= model.THRESHOLD
    return Verdict(scores, model.PRIMARY_METRIC, passes)


def _check_hyperparameters(model: Any) -> None:
    """Each hyperparameter's default and ``other`` value parse, and ``other`` reaches the
    estimator (a typo in build_estimator would silently train with a default); one that a single
    candidate estimator reads (``estimator=``) is checked with that candidate chosen."""
    for name, spec in model.HYPERPARAMETERS.items():
        values = {n: s.parse(s.default) for n, s in model.HYPERPARAMETERS.items()}
        if getattr(spec, "estimator", "") and ESTIMATOR in values:  # one candidate's own
            values[ESTIMATOR] = model.HYPERPARAMETERS[ESTIMATOR].parse(spec.estimator)
        try:
            values[name] = spec.parse(spec.other)
        except (TypeError, ValueError):
            message = f"model.HYPERPARAMETERS[{name!r}]: other={spec.other!r} does not parse"
            raise StepError(message) from None
        found = model.build_estimator(values).get_params()  # sklearn's API, a Pipeline's deep
        if name == ESTIMATOR:  # the candidate: another one builds other estimator classes
            default = {n: s.parse(s.default) for n, s in model.HYPERPARAMETERS.items()}
            if _classes(model.build_estimator(default).get_params()) != _classes(found):
                continue
        elif any(_same(v, values[name]) for v in found.values()):
            continue
        raise StepError(
            f"model.HYPERPARAMETERS[{name!r}]: {spec.other!r} never reaches the estimator"
        )


def _classes(params: dict[str, Any]) -> set[str]:
    return {type(v).__name__ for v in params.values() if hasattr(v, "get_params")}


def _same(found: Any, wanted: Any) -> bool:
    if isinstance(wanted, str):
        return found == wanted or (wanted == "none" and found is None)
    return isinstance(found, int | float) and not isinstance(found, bool) and found == wanted


def _check_serving(app: Any, test_csv: Path, model: Any, features: tuple[str, ...]) -> None:
    """A CSV and a JSON request (arrays and objects), one valid answer per row."""
    import csv

    from jsonschema import Draft202012Validator

    with test_csv.open(newline="", encoding="utf-8") as handle:
        rows = [row[1:] for row in list(csv.reader(handle))[1:4]]
    validator = Draft202012Validator(model.PREDICTION_SCHEMA)
    requests = {
        "text/csv": _csv(rows),
        "application/json": json.dumps({"instances": rows}).encode(),
        "application/json (objects)": json.dumps(
            {"instances": [dict(zip(features, row, strict=True)) for row in rows]}
        ).encode(),
    }
    for kind, body in requests.items():
        answer = app.invoke(kind.split(" ")[0], body)
        predictions = answer.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(rows):
            raise StepError(f"serve: a {kind} request of {len(rows)} rows got {answer!r}")
        for prediction in predictions:
            error = next(iter(validator.iter_errors(prediction)), None)
            if error is not None:
                raise StepError(f"serve: {kind}: answer {prediction!r}: {error.message}")


def _csv(rows: list[list[str]]) -> bytes:
    """Rows as a CSV request body (a category holding a comma or a quote is quoted)."""
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()
