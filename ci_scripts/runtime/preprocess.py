"""Preprocess step: check the raw dataset and split it 80/10/10, stratified on the class.

Runs as a SageMaker Processing job (``python -m ci_scripts.runtime preprocess``):
reads every ``*.csv`` under ``processing/input/data`` and writes ``processing/<split>/<split>.csv``
(stratified on the target for a classifier, a plain seeded shuffle for a regression;
header, target first, then the features in training order) plus ``processing/baseline/
baseline.csv`` (the training features, header included) for Model Monitor.

The split is done here with numpy rather than sklearn's ``train_test_split``: it keeps this step
free of the multi-second sklearn import, and makes the exact sizes a stated rule (per class, the
floor of each share, then the leftover rows to the largest remainders) that tests can check.
Rows keep the values exactly as read and, within each split, their original order.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from . import paths
from .errors import StepError
from .features import FEATURES, TARGET, read_labelled_csv, read_labelled_dir, write_csv
from .model import CLASSES

log = logging.getLogger(__name__)

SEED = 42
SHARES = {"train": 80, "validation": 10, "test": 10}  # percent, in paths.SPLITS order


def split_counts(total: int, shares: Sequence[int]) -> list[int]:
    """Divide ``total`` rows by integer percentage ``shares`` (largest remainder, exact)."""
    counts = [total * share // 100 for share in shares]
    remainders = [total * share % 100 for share in shares]
    leftover = total - sum(counts)
    for index in sorted(range(len(shares)), key=lambda i: -remainders[i])[:leftover]:
        counts[index] += 1
    return counts


def stratified_split(
    labels: Sequence[str], shares: Sequence[int], seed: int = SEED
) -> list[list[int]]:
    """Row indices of each part: every class is shuffled with ``seed`` and cut by ``shares``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    parts: list[list[int]] = [[] for _ in shares]
    for label in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(labels_array == label))
        start = 0
        for part, count in zip(parts, split_counts(len(members), shares), strict=True):
            part.extend(int(i) for i in members[start : start + count])
            start += count
    return [sorted(part) for part in parts]


def split(rows: Sequence[Sequence[str]], source: str, seed: int = SEED) -> list[list[int]]:
    """Row indices of each split of ``rows`` (labelled, target first), in ``SHARES`` order."""
    if CLASSES is None:  # a regression: one shuffled stratum
        parts = stratified_split(["all"] * len(rows), list(SHARES.values()), seed)
        for name, indices in zip(SHARES, parts, strict=True):
            if not indices:
                raise StepError(f"{source}: too few rows for a {name} split of {SHARES[name]}%")
        return parts
    labels = [row[0] for row in rows]
    if len(set(labels)) < 2:
        raise StepError(f"{source}: the target has a single class; need at least two")
    parts = stratified_split(labels, list(SHARES.values()), seed)
    for name, indices in zip(SHARES, parts, strict=True):
        missing = set(labels) - {labels[i] for i in indices}
        if missing:
            raise StepError(
                f"{source}: too few rows of class {', '.join(sorted(missing))} for a "
                f"{name} split of {SHARES[name]}% to hold one (10 rows per class always suffice)"
            )
    return parts


def split_rows(dataset: Path, name: str, seed: int = SEED) -> list[list[str]]:
    """The feature values of split ``name`` of ``dataset`` (what the smoke test samples from)."""
    rows = read_labelled_csv(dataset)
    indices = split(rows, str(dataset), seed)[list(SHARES).index(name)]
    return [rows[i][1:] for i in indices]


def run(input_dir: Path, seed: int = SEED) -> dict[str, int]:
    """Split ``input_dir``'s dataset into the output paths; return the row count per split."""
    rows = read_labelled_dir(input_dir)
    parts = split(rows, str(input_dir), seed)
    header = (TARGET, *FEATURES)
    sizes: dict[str, int] = {}
    for name, indices in zip(SHARES, parts, strict=True):
        write_csv(paths.split_file(name), header, (rows[i] for i in indices))
        sizes[name] = len(indices)
    train_indices = parts[0]
    write_csv(paths.baseline_file(), FEATURES, (rows[i][1:] for i in train_indices))
    log.info("split %d rows from %s: %s", len(rows), input_dir, sizes)
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``preprocess [--seed N]``; all paths come from ``paths`` (``$OPT_ML_ROOT``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__} preprocess",
        description="Split the dataset 80/10/10, stratified on the target.",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"shuffle seed (default {SEED})")
    args = parser.parse_args(argv)
    run(paths.processing_input_dir(), seed=args.seed)
    return 0
