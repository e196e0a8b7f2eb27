"""The trained model on disk: what train writes, and what evaluate and serve load.

``model.joblib`` (the fitted sklearn Pipeline) sits next to ``metadata.json`` (feature names,
hyperparameters, library versions), so anything that loads the model can validate its input
against the columns it was trained on. SageMaker packs the model directory into ``model.tar.gz``;
``load`` accepts that archive, a directory holding it, or a directory of extracted files.

joblib files are pickles: load only artifacts this project's own training produced.
"""

from __future__ import annotations

import json
import logging
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StepError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
ARCHIVE_FILE = "model.tar.gz"


@dataclass
class TrainedModel:
    """A loaded estimator and the metadata written beside it."""

    estimator: Any
    metadata: dict[str, Any]

    @property
    def features(self) -> list[str]:
        """Column names, in the order the estimator expects them."""
        return list(self.metadata["features"])

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """``model.predict`` of a float matrix in training column order (name -> per-row array)."""
        from . import model

        return model.predict(self.estimator, features)


def save(model_dir: Path, estimator: Any, metadata: dict[str, Any]) -> None:
    """Write the estimator and its metadata into ``model_dir`` (SageMaker uploads the lot)."""
    import joblib

    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / MODEL_FILE)
    (model_dir / METADATA_FILE).write_text(
        json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def load(location: Path) -> TrainedModel:
    """Load from a model directory, a directory holding ``model.tar.gz``, or the archive itself."""
    if location.is_dir() and (location / MODEL_FILE).is_file():
        return _load_dir(location)
    archive = location / ARCHIVE_FILE if location.is_dir() else location
    if archive.is_file() and archive.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory(prefix="model-") as extracted:
            _extract(archive, Path(extracted))
            return _load_dir(Path(extracted), source=archive)
    if not location.exists():
        raise StepError(f"{location}: not found; expected {MODEL_FILE} or {ARCHIVE_FILE}")
    raise StepError(f"{location}: holds neither {MODEL_FILE} nor {ARCHIVE_FILE}")


def _extract(archive: Path, destination: Path) -> None:
    """Unpack ``archive`` refusing links and paths outside ``destination`` (tarfile's filter)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StepError(f"{archive}: cannot extract: {exc}") from None


def _load_dir(directory: Path, source: Path | None = None) -> TrainedModel:
    import joblib

    where = source or directory
    model_path = directory / MODEL_FILE
    metadata_path = directory / METADATA_FILE
    if not model_path.is_file():
        raise StepError(f"{where}: {MODEL_FILE} not found")
    if not metadata_path.is_file():
        raise StepError(f"{where}: {METADATA_FILE} not found (written by train beside the model)")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise StepError(f"{where}: {METADATA_FILE}: unreadable: {exc}") from None
    features = metadata.get("features") if isinstance(metadata, dict) else None
    if not isinstance(features, list) or not all(isinstance(name, str) for name in features):
        raise StepError(f"{where}: {METADATA_FILE}: 'features' must be a list of column names")
    try:
        estimator = joblib.load(model_path)
    except Exception as exc:  # unpickling raises anything from EOFError to ModuleNotFoundError
        raise StepError(f"{where}: {MODEL_FILE}: cannot load: {exc}") from None
    if not hasattr(estimator, "predict"):
        raise StepError(f"{where}: {MODEL_FILE}: the estimator has no predict")
    log.info("loaded model from %s (%d features)", where, len(features))
    return TrainedModel(estimator=estimator, metadata=metadata)
