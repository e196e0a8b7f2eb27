"""How a model repo declares its data: what schema.py imports from the platform.

A team's ``src/<package>/schema.py`` names the target column, the classes and each feature with
its kind::

    from ci_scripts.schema import Boolean, Categorical, Numeric

    TARGET = "species"
    CLASSES = ("adelie", "chinstrap", "gentoo")     # strings or numbers; None for a regression
    FEATURES = {
        "bill_length_mm": Numeric(),                  # any finite number
        "island": Categorical(),                      # any text; unseen values are answered too
        "smoker": Boolean(nullable=False),            # true/false, yes/no, 1/0
    }

Every kind is nullable unless it says otherwise: an empty CSV cell or a JSON null is a missing
value, which the model's own preprocessing imputes (the estimator in model.py owns it). A
non-nullable feature refuses a missing value with one line naming the row and column, in the
data the pipeline trains on and in the requests the endpoint answers alike.
``python -m ci_scripts data adopt FILE --target COLUMN`` writes such a file from a CSV.

Standard library only: the CLI reads these declarations, where nothing heavy may load.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

TRUE = frozenset({"true", "yes", "1", "t", "y"})
FALSE = frozenset({"false", "no", "0", "f", "n"})


class Invalid(ValueError):
    """A value a feature cannot take; the message says what it expected."""


@dataclass(frozen=True)
class Feature(ABC):
    """One column the model reads: its kind, and whether it may be missing."""

    nullable: bool = True
    KIND: ClassVar[str] = ""
    DRIFT: ClassVar[str] = ""  # how the monitor compares it: numerical or categorical

    def parse(self, value: Any) -> Any:
        """``value`` (a CSV cell or a JSON value) as the model reads it; None when missing."""
        if value is None or (isinstance(value, str) and not value.strip()):
            if not self.nullable:
                raise Invalid("empty value (the feature is not nullable in schema.py)")
            return None
        return self._parse(value)

    @abstractmethod
    def _parse(self, value: Any) -> Any:
        """A present value as this kind reads it; Invalid saying what was expected."""

    def declaration(self) -> str:
        """How schema.py spells this feature (``data adopt`` writes it)."""
        return f"{type(self).__name__}({'' if self.nullable else 'nullable=False'})"


@dataclass(frozen=True)
class Numeric(Feature):
    """A finite number."""

    KIND: ClassVar[str] = "numeric"
    DRIFT: ClassVar[str] = "numerical"

    def _parse(self, value: Any) -> float:
        return finite_number(value)


def finite_number(value: Any) -> float:
    """``value`` (text or a number, not a boolean) as a finite float; Invalid saying why not.
    The one number reader: features, targets, ground truth and CLI values all go through it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"{value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise Invalid(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise Invalid(f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class Categorical(Feature):
    """A category, kept as text (``3`` and ``"3"`` are the same category)."""

    KIND: ClassVar[str] = "categorical"
    DRIFT: ClassVar[str] = "categorical"

    def _parse(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return format(value, "g") if isinstance(value, float) else str(value)
        if isinstance(value, str):
            return value.strip()
        raise Invalid(f"{value!r} is not a category (text or a number)")


@dataclass(frozen=True)
class Boolean(Feature):
    """true/false, yes/no, 1/0 (any case), or a JSON boolean; read as 1.0 or 0.0."""

    KIND: ClassVar[str] = "boolean"
    DRIFT: ClassVar[str] = "categorical"

    def _parse(self, value: Any) -> float:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float) and value in (0, 1):
            return float(value)
        text = value.strip().lower() if isinstance(value, str) else None
        if text in TRUE:
            return 1.0
        if text in FALSE:
            return 0.0
        raise Invalid(f"{value!r} is not a boolean (true/false, yes/no, 1/0)")


KINDS: dict[str, type[Feature]] = {k.KIND: k for k in (Numeric, Categorical, Boolean)}


def features_of(declared: Mapping[str, Feature] | Iterable[str]) -> dict[str, Feature]:
    """schema.py's ``FEATURES`` as name -> Feature: a mapping as declared, or a sequence of names
    (every one numeric, how repos rendered before kinds existed declare them)."""
    if isinstance(declared, Mapping):
        found = dict(declared)
        wrong = [name for name, kind in found.items() if not isinstance(kind, Feature)]
        if wrong:
            raise TypeError(f"FEATURES[{wrong[0]!r}] is not a Numeric, Categorical or Boolean")
        return found
    return {str(name): Numeric() for name in declared}


def parse_class(value: Any, classes: tuple[Any, ...]) -> Any:
    """``value`` as one of ``classes`` (strings match as written, numbers by value: a writer may
    have produced ``1.0`` for ``1``); Invalid naming the classes otherwise."""
    text = str(value).strip()
    for known in classes:
        if isinstance(known, str):
            if text == known:
                return known
        elif not isinstance(value, bool):
            try:
                if float(text) == float(known):
                    return known
            except ValueError:
                pass
    expected = ", ".join(str(c) for c in classes)
    raise Invalid(f"target must be one of {expected}, got {value!r}")
