"""batch_check: a bad batch input file fails in one line naming the file and line, before any
row is scored; a good one gives the row counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_scripts.runtime import batch_check
from ci_scripts.runtime.errors import StepError
from ci_scripts.runtime.features import FEATURES

N = len(FEATURES)


def line(row_id: str, values: list[str] | None = None) -> str:
    return ",".join([row_id, *(values if values is not None else ["1.5"] * N)])


def write(directory: Path, name: str, *lines: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    return path


def test_good_files_give_row_counts_per_key(tmp_path: Path) -> None:
    write(tmp_path, "a.csv", line("r1"), line("r2"))
    write(tmp_path, "2026/12/b.csv", line("r1"))  # the same id in another file is fine
    write(tmp_path, ".hidden", "junk")
    assert batch_check.check_dir(tmp_path) == {"2026/12/b.csv": 1, "a.csv": 2}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([line("r1"), line("r2", ["1.5"] * (N - 1))], f"in/a.csv:2: expected {N + 1} columns"),
        ([line("r1"), line("", None)], "in/a.csv:2: empty id"),
        ([line("r1"), line("r2"), line("r1")], "in/a.csv:3: duplicate id 'r1' (first on line 1)"),
        ([line("r1", ["x", *["1"] * (N - 1)])], f"in/a.csv:1: column '{FEATURES[0]}': 'x' is not"),
        ([line("r1", ["nan", *["1"] * (N - 1)])], "in/a.csv:1: column"),
        ([line("r1"), "", line("r2")], "in/a.csv:2: empty line"),
        ([], "in/a.csv:1: empty file"),
    ],
    ids=["columns", "empty-id", "duplicate-id", "not-a-number", "nan", "blank-line", "empty"],
)
def test_bad_file_is_named_with_its_line(tmp_path: Path, lines: list[str], expected: str) -> None:
    write(tmp_path, "a.csv", *lines)
    with pytest.raises(StepError) as caught:
        batch_check.check_dir(tmp_path, "in/")
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_cli_writes_the_summary_and_fails_in_one_line(tmp_path: Path, run_cli) -> None:
    inputs = tmp_path / "processing" / "input" / "batch"
    write(inputs, "a.csv", line("r1"), line("r2"))
    ok = run_cli("batch_check", root=tmp_path)
    assert ok.returncode == 0, ok.stderr
    summary = tmp_path / "processing" / "output" / "batch_check" / "summary.json"
    assert json.loads(summary.read_text()) == {"files": {"a.csv": 2}, "rows": 2}
    write(inputs, "b.csv", line("r1"), "r2,1")
    bad = run_cli("batch_check", "--label", "s3://bucket/in/", root=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: s3://bucket/in/b.csv:2: ")


def test_batch_capture_gives_the_monitor_one_record_per_row(tmp_path: Path, run_cli) -> None:
    """A batch run's files as capture records capture.py reads: the row id as inference id
    (labels join on it), the features as the request, serve's CSV answer as the prediction."""
    from ci_scripts.runtime import capture, model, serve

    answer = model.response(model_like_prediction())[0]
    columns = ",".join(str(v) for v in serve.csv_values(answer))
    inputs = tmp_path / "processing" / "input" / "batch_input"
    outputs = tmp_path / "processing" / "input" / "batch_output"
    write(inputs, "day/a.csv", line("r1"), line("r2"))
    write(outputs, "day/a.csv.out", f"r1,{columns}", f"r2,{columns}")
    write(inputs, "b.csv", line("x1"))
    write(outputs, "b.csv.out", f"other,{columns}")  # ids disagree: skipped, not fatal
    write(inputs, "c.csv", line("y1"))  # no output (yet): not read

    result = run_cli("batch_capture", "--time", "2026-12-01T03:00:00Z", root=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "2 row(s) as capture records, 1 skipped" in result.stdout
    found = capture.read_folder(tmp_path / "processing" / "output" / "capture")
    assert found.skipped == 0
    assert [r.inference_id for r in found.records] == ["r1", "r2"]
    assert found.records[0].rows == [["1.5"] * N]
    assert found.records[0].predictions[0].answer == answer
    assert found.records[0].time.isoformat() == "2026-12-01T03:00:00+00:00"


def model_like_prediction():
    """One row of ``model.predict``'s output for every problem type (arrays of one row)."""
    import numpy as np

    from ci_scripts.runtime import model

    arrays = {}
    for name, prop in model.PREDICTION_SCHEMA["properties"].items():
        if prop.get("type") == "array":
            arrays[name] = np.full((1, len(model.CLASSES)), 1 / len(model.CLASSES))
        elif "enum" in prop:
            arrays[name] = np.array([model.CLASSES[-1]])
        else:
            arrays[name] = np.array([float(prop.get("minimum", 0))])
    return arrays


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "data" / "batch").is_dir(),
    reason="only a deployment=batch render ships data/batch/sample.csv",
)
def test_the_shipped_sample_is_a_valid_batch_input() -> None:
    """data/batch/sample.csv (written at render time from the dataset) passes the check, with
    the features in training order: its values are the dataset's, column for column."""
    import csv

    from ci_scripts.runtime.features import TARGET

    repo = Path(__file__).resolve().parents[2]
    counts = batch_check.check_dir(repo / "data" / "batch")
    assert counts["sample.csv"] > 0
    with (repo / "data" / "dataset.csv").open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    order = [header.index(name) for name in FEATURES]
    first = (repo / "data" / "batch" / "sample.csv").read_text().splitlines()[0].split(",")
    assert first[0] == "row-2" and first[1:] == [rows[0][i] for i in order]
    assert TARGET in header
