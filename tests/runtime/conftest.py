"""Fixtures of the platform's container-code tests: a throw-away /opt/ml, a trained model, the CLI.

These tests are the template's, not a model repo's: tests/test_runtime.py copies this folder into
a render of each problem type (as ``tests/runtime/``) and runs it there, so the platform's step
code is tested on every model the template renders. Every step reads its paths from
``$OPT_ML_ROOT``, so tests run the real code on the render's dataset under a temporary root.
Training once per session keeps the suite fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_scripts.runtime import (
    model_artifacts,
    paths,
    preprocess,
    team,
    train,
)

REPO = Path(__file__).resolve().parents[2]  # the render this folder was copied into
DATASET = REPO / "data" / "dataset.csv"
# Marks a test whose outcome cannot depend on the render's model, data or problem type (the CLI's
# error lines, the server's process model): tests/test_render.py runs it on the default render
# only, and every other problem type's suite deselects it (each costs a cold interpreter or a
# gunicorn server, paid again for nothing on every render).
SAME_FOR_EVERY_MODEL = "same_for_every_model"  # tests/test_render.py selects on it


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SAME_FOR_EVERY_MODEL}: independent of the problem type; run on the default render only",
    )


def _stage_dataset(root: Path) -> Path:
    target = root / "processing" / "input" / "data" / DATASET.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATASET, target)
    return target


def _stage_channels(splits_root: Path, root: Path) -> None:
    for channel in ("train", "validation"):
        destination = root / "input" / "data" / channel
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy(splits_root / "processing" / channel / f"{channel}.csv", destination)


@pytest.fixture
def dataset_path() -> Path:
    """The dataset shipped in ``data/``."""
    return DATASET


@pytest.fixture
def stage_dataset() -> Callable[[Path], Path]:
    """``stage(root)`` copies the shipped dataset to ``root/processing/input/data/``."""
    return _stage_dataset


@pytest.fixture
def stage_channels() -> Callable[[Path, Path], None]:
    """``stage(splits_root, root)``: preprocess outputs -> training channels under ``root``."""
    return _stage_channels


@pytest.fixture
def opt_ml_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$OPT_ML_ROOT`` for this test."""
    root = tmp_path / "opt_ml"
    root.mkdir()
    monkeypatch.setenv(paths.ENV_VAR, str(root))
    return root


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``$OPT_ML_ROOT`` where preprocess and train have run on the shipped data (read only)."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.ENV_VAR, str(root))
        _stage_dataset(root)
        preprocess.main([])
        _stage_channels(root, root)
        train.main([])
    return root


@pytest.fixture(scope="session")
def trained_model(trained_root: Path) -> model_artifacts.TrainedModel:
    """The model trained in ``trained_root``, loaded the way serve loads it."""
    return model_artifacts.load(trained_root / "model")


def _cli(root: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env[paths.ENV_VAR] = str(root)
    env[team.ENV_VAR] = team.package()
    path = [str(REPO / "src"), str(REPO), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    return [sys.executable, "-m", "ci_scripts.runtime"], env


@pytest.fixture
def cli() -> Callable[[Path], tuple[list[str], dict[str, str]]]:
    """``cli(root)`` -> ``(argv, env)`` to start ``python -m ci_scripts.runtime`` yourself."""
    return _cli


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli(*args, root=...)`` runs ``python -m ci_scripts.runtime ARGS`` to the end."""

    def run(*args: str, root: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv, env = _cli(root)
        return subprocess.run(
            [*argv, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run


def meets_gate(value: float) -> bool:
    """Whether ``value`` of the primary metric passes the gate, in its direction."""
    from ci_scripts.runtime import model

    return value >= model.THRESHOLD if model.HIGHER_IS_BETTER else value <= model.THRESHOLD
