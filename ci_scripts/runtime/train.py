"""Train step: fit the estimator model.py builds on the train channel and save it.

SageMaker runs ``<image> train``: the ``train`` (and optional ``validation``) channel CSVs are
under ``input/data/<channel>/``, hyperparameters in ``input/config/hyperparameters.json`` with
every value a string. Hyperparameters are checked before sklearn is imported, so a bad one fails
in well under a second with a line naming it. Output: ``model/model.joblib`` and
``model/metadata.json``. Validation metrics are logged as ``validation:<name>=<value>`` lines,
the shape a SageMaker metric definition regex (``validation:r2=(-?[0-9.]+)``, which
reads negative values too) picks up.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import model, model_artifacts, paths
from .errors import StepError
from .features import FEATURES, TARGET, read_labelled_dir, to_arrays
from .model import HYPERPARAMETERS

log = logging.getLogger(__name__)

# Keys SageMaker itself may add to hyperparameters.json (tuning jobs, SDK bookkeeping).
RESERVED_PREFIXES = ("sagemaker_", "_")


def parse_hyperparameters(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Typed hyperparameters from SageMaker's all-strings mapping, defaults filled in.

    Unknown names are errors (a typo must not silently train with the default); names SageMaker
    adds itself are ignored. Numbers given as JSON numbers are accepted too.
    """
    unknown = sorted(
        name
        for name in raw
        if name not in HYPERPARAMETERS and not name.startswith(RESERVED_PREFIXES)
    )
    if unknown:
        raise StepError(
            f"{source}: unknown hyperparameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(HYPERPARAMETERS)}"
        )
    parsed: dict[str, Any] = {}
    for name, spec in HYPERPARAMETERS.items():
        value = raw.get(name, spec.default)
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) >= 2 and text[0] == text[-1] == '"':  # JSON-encoded string values
            text = text[1:-1]
        try:
            parsed[name] = spec.parse(text.strip())
        except ValueError:
            raise StepError(f"{source}: {name}: expected {spec.expected}, got {value!r}") from None
    return parsed


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """Parse ``path``; a missing file means all defaults (SageMaker omits it when none are set)."""
    if not path.is_file():
        log.info("%s not found; using default hyperparameters", path)
        return parse_hyperparameters({}, str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise StepError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise StepError(f"{path}: expected a JSON object of name -> value")
    return parse_hyperparameters(raw, str(path))


def run(
    train_dir: Path, validation_dir: Path | None, hyperparameters_path: Path, model_dir: Path
) -> dict[str, Any]:
    """Fit on ``train_dir``, report on ``validation_dir`` if it exists, save; return metadata."""
    hyperparameters = read_hyperparameters(hyperparameters_path)
    train_rows = read_labelled_dir(train_dir)
    validation_rows = (
        read_labelled_dir(validation_dir)
        if validation_dir is not None and validation_dir.exists()
        else None
    )
    x_train, y_train = to_arrays(train_rows)
    if model.CLASSES is not None and len(set(y_train.tolist())) < 2:
        raise StepError(f"{train_dir}: the target has a single class; need at least two")

    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning

    estimator = model.build_estimator(hyperparameters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(x_train, y_train)
    for warning in caught:
        log.warning("%s (raise max_iter?)", str(warning.message).splitlines()[0])

    metadata: dict[str, Any] = {
        "features": list(FEATURES),
        "target": TARGET,
        "problem_type": model.PROBLEM_TYPE,
        "hyperparameters": hyperparameters,
        "train_rows": len(train_rows),
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
    }
    if validation_rows is not None:
        from .metrics import scores_of

        trained = model_artifacts.TrainedModel(estimator, metadata)
        x_validation, y_validation = to_arrays(validation_rows)
        scores = scores_of(y_validation, trained.predict(x_validation), str(validation_dir))
        metadata["validation_rows"] = len(validation_rows)
        metadata["validation_metrics"] = scores
        for name, value in scores.items():
            print(f"validation:{name}={value:.6f}", flush=True)
    model_artifacts.save(model_dir, estimator, metadata)
    log.info("trained on %d rows with %s; saved to %s", len(train_rows), hyperparameters, model_dir)
    return metadata


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``train``; inputs and outputs come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} train",
        description="Fit the model on the train channel; hyperparameters: "
        + ", ".join(f"{name} (default {spec.default})" for name, spec in HYPERPARAMETERS.items()),
    )
    parser.parse_args(argv)
    run(
        train_dir=paths.channel_dir("train"),
        validation_dir=paths.channel_dir("validation"),
        hyperparameters_path=paths.hyperparameters_file(),
        model_dir=paths.model_dir(),
    )
    return 0
