"""How a model declares its hyperparameters: what model.py imports from the platform.

SageMaker hands a training job its hyperparameters as strings (``hyperparameters.json``), whatever
type the pipeline gave them. Each :class:`Hyperparameter` says how to read its string, its
default (what the pipeline passes unless pyproject.toml's
``[tool.sagemaker-gitops.hyperparameters]`` overrides it, so every registered version records
what it was trained with), and what a valid
value looks like, for the one-line error ``train`` gives on a bad one. Standard library only:
ci_scripts reads model.py's declarations in the CLI, where nothing heavy may load.

The search space sits on the same declaration: ``search=`` a :class:`Continuous`, :class:`Integer`
or :class:`Categorical` range (linear or log scale) makes the hyperparameter one the pipeline's
tuning step searches (SageMaker Automatic Model Tuning on AWS, Optuna in the local backend),
within ``[tool.sagemaker-gitops.tuning]``'s budget; without ``search=`` it keeps its value in every
trial. Several candidate estimators are one categorical hyperparameter (by convention
``estimator``) that ``build_estimator`` dispatches on; a hyperparameter that only one candidate
reads says so with ``estimator=`` (the contract check then sets that candidate to see it reach
the estimator).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCALES = ("linear", "log")
# The hyperparameter naming the candidate estimator (a Categorical search), by convention.
ESTIMATOR = "estimator"


@dataclass(frozen=True)
class Continuous:
    """A real number in [low, high]; ``scale="log"`` searches its orders of magnitude evenly."""

    low: float
    high: float
    scale: str = "linear"

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.scale)


@dataclass(frozen=True)
class Integer:
    """An integer in [low, high] (both included); ``scale="log"`` as for :class:`Continuous`."""

    low: int
    high: int
    scale: str = "linear"

    def __post_init__(self) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)):
            raise ValueError(f"Integer({self.low!r}, {self.high!r}): bounds must be integers")
        _check_bounds(self.low, self.high, self.scale)


@dataclass(frozen=True, init=False)
class Categorical:
    """One of ``choices`` (strings, as SageMaker passes them)."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str) -> None:
        if not choices or not all(isinstance(c, str) and c for c in choices):
            raise ValueError(f"Categorical{choices!r}: give one or more non-empty strings")
        if len(set(choices)) != len(choices):
            raise ValueError(f"Categorical{choices!r}: a choice is repeated")
        object.__setattr__(self, "choices", tuple(choices))


Search = Continuous | Integer | Categorical


def _check_bounds(low: float, high: float, scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r}: expected one of {', '.join(SCALES)}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"range [{low}, {high}]: need finite bounds with low < high")
    if scale == "log" and low <= 0:
        raise ValueError(f"range [{low}, {high}]: a log scale needs low > 0")


@dataclass(frozen=True)
class Hyperparameter:
    """How to read one hyperparameter from its SageMaker string form, and where to search it."""

    parse: Callable[[str], Any]
    default: str
    expected: str  # what a valid value is, for the error message
    other: str  # another valid value: the platform's contract check sees it reach the estimator
    search: Search | None = None  # None: the same value in every trial
    estimator: str = ""  # the candidate estimator that reads it ("" = every candidate)


def search_space(specs: dict[str, Hyperparameter]) -> dict[str, Search]:
    """The searched hyperparameters of ``specs``, each range checked against its parser."""
    space: dict[str, Search] = {}
    for name, spec in specs.items():
        if spec.search is None:
            continue
        values: tuple[Any, ...]
        if isinstance(spec.search, Categorical):
            values = spec.search.choices
        elif isinstance(spec.search, Continuous | Integer):
            values = (spec.search.low, spec.search.high)
        else:
            raise ValueError(
                f"{name}: search={spec.search!r} is not Continuous/Integer/Categorical"
            )
        for value in values:
            try:
                spec.parse(str(value))
            except ValueError:
                raise ValueError(f"{name}: search value {value!r} is not {spec.expected}") from None
        space[name] = spec.search
    return space


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
