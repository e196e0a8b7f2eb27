"""ci_scripts.batch: the join check both backends run on a batch run's outputs, and the names."""

from __future__ import annotations

import pytest

from ci_scripts import batch
from ci_scripts.errors import CIError
from ci_scripts.model_contract import ModelContract

BINARY = ModelContract(source="test")  # label in {0, 1}, probability in [0, 1]
MULTICLASS = ModelContract(
    source="test",
    classes=(0, 1, 2),
    prediction_schema={
        "type": "object",
        "properties": {
            "label": {"enum": [0, 1, 2]},
            "probabilities": {"type": "array", "items": {"type": "number"}},
        },
    },
)
INPUTS = {"day/a.csv": "r1,1.0,2.0\nr2,3.0,4.0\n", "b.csv": "x,5.0,6.0\n"}


def test_good_outputs_count_every_row() -> None:
    outputs = {"day/a.csv": "r1,1,0.9\nr2,0,0.1\n", "b.csv": "x,1,0.5\n"}
    assert batch.check_outputs(INPUTS, outputs, BINARY, "s3://b/out/") == 3


def test_a_list_prediction_takes_one_column_per_class() -> None:
    outputs = {"day/a.csv": "r1,2,0.1,0.2,0.7\nr2,0,0.8,0.1,0.1\n", "b.csv": "x,1,0.2,0.6,0.2\n"}
    assert batch.check_outputs(INPUTS, outputs, MULTICLASS) == 3
    assert batch.prediction_width(MULTICLASS.prediction_schema, MULTICLASS.classes) == 4


@pytest.mark.parametrize(
    ("a_out", "expected"),
    [
        (None, "s3://b/out/day/a.csv.out: missing (input day/a.csv has no output)"),
        ("r1,1,0.9\n", "s3://b/out/day/a.csv.out: 1 line(s) for 2 input row(s)"),
        ("r2,0,0.1\nr1,1,0.9\n", "s3://b/out/day/a.csv.out:1: id 'r2', expected 'r1'"),
        ("r1,1\nr2,0\n", "s3://b/out/day/a.csv.out:1: 1 prediction column(s), expected 2"),
        ("r1,1,nan\nr2,0,0.1\n", "s3://b/out/day/a.csv.out:1: prediction is not numeric"),
        ("r1,1,0.9\nr2,7,0.1\n", "s3://b/out/day/a.csv.out:2: 7 is not one of [0, 1]"),
    ],
    ids=["missing", "short", "order", "columns", "nan", "schema"],
)
def test_a_broken_join_names_the_output_file_and_line(a_out, expected: str) -> None:
    outputs = {"day/a.csv": a_out, "b.csv": "x,1,0.5\n"}
    with pytest.raises(CIError) as caught:
        batch.check_outputs(INPUTS, outputs, BINARY, "s3://b/out/")
    assert str(caught.value).startswith(expected)


def test_names_and_filters() -> None:
    assert batch.output_key("day/a.csv") == "day/a.csv.out"
    assert (
        batch.smoke_prefix("s3://b/batch/staging/output/") == "s3://b/batch/staging/output_smoke/"
    )
    assert batch.data_processing(30) == {
        "InputFilter": "$[1:]",
        "JoinSource": "Input",
        "OutputFilter": "$[0,31:]",
    }
