"""Preprocess: an exact, stratified, deterministic 80/10/10 split that loses no row."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from {{ cookiecutter.__package }} import preprocess
from {{ cookiecutter.__package }}.errors import StepError
from {{ cookiecutter.__package }}.features import FEATURES, TARGET

SPLITS = ("train", "validation", "test")


def read_rows(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with path.open(newline="") as handle:
        header, *rows = csv.reader(handle)
    return header, [tuple(row) for row in rows]


def split_rows(root: Path) -> dict[str, list[tuple[str, ...]]]:
    out = {}
    for split in SPLITS:
        header, rows = read_rows(root / "processing" / split / f"{split}.csv")
        assert header == [TARGET, *FEATURES]
        out[split] = rows
    return out


def dataset_rows(dataset: Path) -> list[tuple[str, ...]]:
    """The dataset's rows in the (target, *features) column order preprocess writes."""
    header, rows = read_rows(dataset)
    order = [header.index(name) for name in (TARGET, *FEATURES)]
    return [tuple(row[i] for i in order) for row in rows]


def test_split_is_80_10_10_and_stratified(
    opt_ml_root: Path, dataset_path: Path, stage_dataset
) -> None:
    stage_dataset(opt_ml_root)
    assert preprocess.main([]) == 0
    parts = split_rows(opt_ml_root)
    total = len(dataset_rows(dataset_path))
    assert total == 569
    assert {split: len(rows) for split, rows in parts.items()} == {
        "train": 455,
        "validation": 57,
        "test": 57,
    }
    overall = Counter(row[0] for row in dataset_rows(dataset_path))
    for split, rows in parts.items():
        counts = Counter(row[0] for row in rows)
        assert set(counts) == {"0", "1"}, split
        share = counts["1"] / len(rows)
        assert share == pytest.approx(overall["1"] / total, abs=0.01), split


def test_no_row_is_lost_or_duplicated(opt_ml_root: Path, dataset_path: Path, stage_dataset) -> None:
    stage_dataset(opt_ml_root)
    preprocess.main([])
    parts = split_rows(opt_ml_root)
    combined = [row for rows in parts.values() for row in rows]
    assert Counter(combined) == Counter(dataset_rows(dataset_path))
    header, baseline = read_rows(opt_ml_root / "processing" / "baseline" / "baseline.csv")
    assert header == list(FEATURES)
    assert baseline == [row[1:] for row in parts["train"]]


def test_split_is_deterministic_and_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage_dataset
) -> None:
    outputs = []
    for name, argv in (("a", []), ("b", []), ("c", ["--seed", "7"])):
        root = tmp_path / name
        monkeypatch.setenv("OPT_ML_ROOT", str(root))
        stage_dataset(root)
        preprocess.main(argv)
        outputs.append([(root / "processing" / s / f"{s}.csv").read_bytes() for s in SPLITS])
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


@pytest.mark.parametrize("total", [*range(0, 60), 212, 357, 569, 1001])
def test_split_counts_are_exact(total: int) -> None:
    counts = preprocess.split_counts(total, [80, 10, 10])
    assert sum(counts) == total
    for count, share in zip(counts, [80, 10, 10], strict=True):
        assert abs(count - total * share / 100) < 1


def test_columns_may_come_in_any_order(opt_ml_root: Path, dataset_path: Path) -> None:
    header, rows = read_rows(dataset_path)
    reversed_file = opt_ml_root / "processing" / "input" / "data" / "reversed.csv"
    reversed_file.parent.mkdir(parents=True)
    with reversed_file.open("w", newline="") as handle:
        csv.writer(handle).writerows([header[::-1], *(row[::-1] for row in rows)])
    preprocess.main([])
    combined = [row for rows in split_rows(opt_ml_root).values() for row in rows]
    assert Counter(combined) == Counter(dataset_rows(dataset_path))


def write_input(root: Path, text: str) -> Path:
    path = root / "processing" / "input" / "data" / "bad.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_column_is_named(opt_ml_root: Path, dataset_path: Path) -> None:
    lines = dataset_path.read_text().splitlines()
    # Drop the last column (worst_fractal_dimension) from every line.
    path = write_input(opt_ml_root, "\n".join(line.rsplit(",", 1)[0] for line in lines))
    with pytest.raises(StepError, match=r"missing column.*worst_fractal_dimension") as caught:
        preprocess.main([])
    assert str(path) in str(caught.value)


def test_bad_value_names_line_and_column(opt_ml_root: Path, dataset_path: Path) -> None:
    header, first, *_ = dataset_path.read_text().splitlines()
    broken = first.split(",")
    broken[1] = "abc"  # mean_radius
    write_input(opt_ml_root, "\n".join([header, first, ",".join(broken)]))
    with pytest.raises(StepError, match=r"line 3, column 'mean_radius': 'abc' is not a number"):
        preprocess.main([])


def test_too_few_rows_per_class_is_an_error(opt_ml_root: Path, dataset_path: Path) -> None:
    header, *rows = dataset_path.read_text().splitlines()
    write_input(opt_ml_root, "\n".join([header, *rows[:40]]))
    with pytest.raises(StepError, match=r"too few rows of class|single class"):
        preprocess.main([])


def test_cli_reports_errors_in_one_line(opt_ml_root: Path, run_cli) -> None:
    result = run_cli("preprocess", root=opt_ml_root)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {opt_ml_root / 'processing' / 'input' / 'data'}: directory not found"
    ]


def test_cli_rejects_an_unknown_command(opt_ml_root: Path, run_cli) -> None:
    result = run_cli("fit", root=opt_ml_root)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "usage: python -m" in lines[0]
    assert "'fit'" in lines[0]
