"""How a model declares its hyperparameters: what model.py imports from the platform.

SageMaker hands a training job its hyperparameters as strings (``hyperparameters.json``), whatever
type the pipeline gave them. Each :class:`Hyperparameter` says how to read its string, its
default (what the pipeline passes unless pyproject.toml's
``[tool.sagemaker-gitops.hyperparameters]`` overrides it, so every registered version records
what it was trained with), and what a valid
value looks like, for the one-line error ``train`` gives on a bad one. Standard library only:
ci_scripts reads model.py's declarations in the CLI, where nothing heavy may load.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hyperparameter:
    """How to read one hyperparameter from its SageMaker string form."""

    parse: Callable[[str], Any]
    default: str
    expected: str  # what a valid value is, for the error message
    other: str  # another valid value: the platform's contract check sees it reach the estimator


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def unit_interval(text: str) -> float:
    """A number in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise ValueError(text)
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    """A parser accepting exactly ``choices``."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text

    return parse
