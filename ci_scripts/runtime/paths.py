"""Every SageMaker container path the steps use, in one place, rooted at ``$OPT_ML_ROOT``.

SageMaker mounts inputs and collects outputs under ``/opt/ml``; the local backend runs the same
code with ``OPT_ML_ROOT`` pointing into a work directory. These are functions, not constants, so
the variable is read when a step runs rather than when the module is imported (tests rely on it).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "OPT_ML_ROOT"
DEFAULT_ROOT = "/opt/ml"
SPLITS = ("train", "validation", "test")


def root() -> Path:
    """``$OPT_ML_ROOT``, or ``/opt/ml`` as inside a SageMaker container."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT)


# Processing jobs (preprocess, evaluate): SageMaker copies inputs to and outputs from these.


def processing_input_dir() -> Path:
    """Raw dataset: every ``*.csv`` in this directory is read."""
    return root() / "processing" / "input" / "data"


def split_file(split: str) -> Path:
    """Preprocess output for ``split`` (train, validation or test): ``processing/<s>/<s>.csv``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return root() / "processing" / split / f"{split}.csv"


def baseline_file() -> Path:
    """Training features with a header: what the ``baseline`` step describes for the monitor."""
    return root() / "processing" / "baseline" / "baseline.csv"


def processing_model_dir() -> Path:
    """Evaluate input: holds ``model.tar.gz`` (as SageMaker packs it) or the extracted files."""
    return root() / "processing" / "model"


def processing_test_dir() -> Path:
    """Evaluate input: the held-out split written by preprocess (``test.csv``)."""
    return root() / "processing" / "test"


def evaluation_file() -> Path:
    """Evaluate output: model-quality metrics in SageMaker's ``binary_classification_metrics``."""
    return root() / "processing" / "evaluation" / "evaluation.json"


def bias_report_file() -> Path:
    """Bias output: DPL/DPPL in SageMaker Clarify's ``analysis.json`` layout."""
    return root() / "processing" / "bias" / "analysis.json"


def explainability_report_file() -> Path:
    """Explain output: feature importance in SageMaker Clarify's ``analysis.json`` layout."""
    return root() / "processing" / "explainability" / "analysis.json"


def baseline_dataset_dir() -> Path:
    """Baseline input: the ``baseline.csv`` preprocess wrote (training features, header)."""
    return root() / "processing" / "baseline_dataset"


def baseline_dir() -> Path:
    """Baseline output and monitor input: ``statistics.json`` + ``constraints.json``."""
    return root() / "processing" / "baseline"


def monitor_input_dir(name: str) -> Path:
    """A monitor input: ``capture``, ``groundtruth``, ``state``, ``model``, ``explainability``."""
    return root() / "processing" / "input" / name


def monitor_output_dir(name: str) -> Path:
    """A monitor output: ``report`` (this run's files) or ``state`` (what the next run reads)."""
    return root() / "processing" / "output" / name


def batch_input_dir() -> Path:
    """The files of one batch run, as a processing job downloads its input prefix
    (``batch_check`` reads them before the transform scores them)."""
    return root() / "processing" / "input" / "batch"


def batch_check_file() -> Path:
    """What ``batch_check`` found: ``{"files": {key: rows}, "rows": n}``."""
    return root() / "processing" / "output" / "batch_check" / "summary.json"


# Training jobs.


def channel_dir(channel: str) -> Path:
    """Input channel ``channel`` (train, validation) as SageMaker downloads it."""
    return root() / "input" / "data" / channel


def hyperparameters_file() -> Path:
    """Hyperparameters, all values strings (SageMaker's format)."""
    return root() / "input" / "config" / "hyperparameters.json"


def model_dir() -> Path:
    """Training output that SageMaker packs into ``model.tar.gz``; hosting extracts it back here."""
    return root() / "model"


def failure_file() -> Path:
    """A training job's FailureReason is read from this file when the container exits non-zero."""
    return root() / "output" / "failure"


def exit_message_file() -> Path:
    """A processing job's ExitMessage (DescribeProcessingJob) is the first 1 KB of this file
    ("Save and Access Metadata Information About Your Processing Job",
    https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html)."""
    return root() / "output" / "message"
