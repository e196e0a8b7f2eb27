"""Preprocess: an exact, stratified, deterministic 80/10/10 split that loses no row.

Expectations are computed from the dataset (its rows, classes, columns), not written down, so a
new dataset needs no edit here.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from ci_scripts.runtime import preprocess
from ci_scripts.runtime.errors import StepError
from ci_scripts.runtime.features import FEATURES, TARGET
from ci_scripts.runtime.model import CLASSES

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


def expected_sizes(targets: list[str]) -> dict[str, int]:
    """The split sizes the stated rule gives: per class (or all rows for a regression)."""
    strata = Counter(targets) if CLASSES is not None else Counter({"all": len(targets)})
    sizes = Counter()
    for count in strata.values():
        sizes.update(dict(zip(SPLITS, preprocess.split_counts(count, [80, 10, 10]), strict=True)))
    return dict(sizes)


def test_split_is_80_10_10_and_stratified(
    opt_ml_root: Path, dataset_path: Path, stage_dataset
) -> None:
    stage_dataset(opt_ml_root)
    assert preprocess.main([]) == 0
    parts = split_rows(opt_ml_root)
    targets = [row[0] for row in dataset_rows(dataset_path)]
    total = len(targets)
    sizes = {split: len(rows) for split, rows in parts.items()}
    assert sizes == expected_sizes(targets)
    for split, size in sizes.items():
        assert size == pytest.approx(total * preprocess.SHARES[split] / 100, abs=len(set(targets)))
    if CLASSES is None:
        return
    overall = Counter(targets)
    for split, rows in parts.items():
        counts = Counter(row[0] for row in rows)
        assert set(counts) == set(overall), split
        for label, count in overall.items():  # each class keeps its share, up to rounding
            assert counts[label] / len(rows) == pytest.approx(
                count / total, abs=1 / len(rows) + 0.01
            ), (split, label)


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
    last = lines[0].rsplit(",", 1)[1]
    # Drop the last column from every line.
    path = write_input(opt_ml_root, "\n".join(line.rsplit(",", 1)[0] for line in lines))
    with pytest.raises(StepError, match=rf"missing column.*{last}") as caught:
        preprocess.main([])
    assert str(path) in str(caught.value)


def test_bad_value_names_line_and_column(opt_ml_root: Path, dataset_path: Path) -> None:
    header, first, *_ = dataset_path.read_text().splitlines()
    broken = first.split(",")
    column = header.split(",").index(FEATURES[0])
    broken[column] = "abc"
    write_input(opt_ml_root, "\n".join([header, first, ",".join(broken)]))
    with pytest.raises(StepError, match=rf"line 3, column '{FEATURES[0]}': 'abc' is not a number"):
        preprocess.main([])


def test_too_few_rows_is_an_error(opt_ml_root: Path, dataset_path: Path) -> None:
    header, *rows = dataset_path.read_text().splitlines()
    if CLASSES is None:
        few = rows[:5]  # 4/1/0: an empty test split
    else:  # one row of a second class: it cannot be in all three splits
        first = rows[0].split(",")[0]
        other = next(row for row in rows if row.split(",")[0] != first)
        few = [*(row for row in rows if row.split(",")[0] == first), other]
    write_input(opt_ml_root, "\n".join([header, *few]))
    with pytest.raises(StepError, match=r"too few rows"):
        preprocess.main([])


def test_split_rows_are_the_test_split_preprocess_writes(
    opt_ml_root: Path, dataset_path: Path, stage_dataset
) -> None:
    stage_dataset(opt_ml_root)
    preprocess.main([])
    written = [list(row[1:]) for row in split_rows(opt_ml_root)["test"]]
    assert preprocess.split_rows(dataset_path, "test") == written


@pytest.mark.same_for_every_model
def test_cli_reports_errors_in_one_line(opt_ml_root: Path, run_cli) -> None:
    result = run_cli("preprocess", root=opt_ml_root)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {opt_ml_root / 'processing' / 'input' / 'data'}: directory not found"
    ]


@pytest.mark.same_for_every_model
def test_cli_rejects_an_unknown_command(opt_ml_root: Path, run_cli) -> None:
    result = run_cli("fit", root=opt_ml_root)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "usage: python -m" in lines[0]
    assert "'fit'" in lines[0]


def test_a_processing_step_error_is_the_jobs_exit_message(opt_ml_root: Path, capsys) -> None:
    """The dispatcher's error line also goes to output/message: SageMaker returns it as the
    processing job's ExitMessage (status names the step and that line)."""
    from ci_scripts.runtime import __main__, paths

    assert __main__.main(["preprocess"]) == 1  # no input dataset staged
    line = capsys.readouterr().err.strip().removeprefix("error: ")
    assert paths.exit_message_file().read_text(encoding="utf-8").strip() == line
    assert not paths.failure_file().exists()  # that one is train's (FailureReason)
