"""Real tabular data: a CSV with a string label, categories and missing values, end to end.

``data adopt`` infers the schema and refuses, one line per column, what cannot be a feature; then
the local pipeline (preprocess, tuning trials, evaluate), a staging deploy and its smoke test run
on the adopted data with no platform code edited; the endpoint answers JSON with nulls and
strings with a class name; the monitor raises no drift on traffic drawn from the same data, run
after run, and finds a shifted category.
"""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from option_matrix import DEFAULT_COMBINATION

from ci_scripts import dataset
from scripts.demo import Demo

HEADER = ["customer_id", "plan", "region", "tenure", "monthly_charges", "autopay", "status"]
PLANS = ("basic", "pro", "max")
REGIONS = ("north", "south", 'east, "far"', "")  # a comma and quotes inside, and missing values


def customers(rows: int, seed: int, plans: tuple[str, ...] = PLANS) -> list[list[str]]:
    """A churn-like table: the label is a name, the plan drives it, values are missing."""
    rng = random.Random(seed)
    table = []
    for i in range(rows):
        plan, tenure, autopay = rng.choice(plans), rng.randint(1, 72), rng.choice(["yes", "no"])
        score = (
            2.0 * (plan == "basic") + 1.5 * (tenure < 12) + (autopay == "no") + rng.gauss(0, 0.2)
        )
        table.append(
            [
                f"C{seed}-{i:05d}",
                plan,
                rng.choice(REGIONS),
                "" if rng.random() < 0.1 else str(tenure),
                "" if rng.random() < 0.05 else f"{rng.uniform(20, 120):.2f}",
                autopay,
                "churned" if score > 1.7 else "stayed",
            ]
        )
    return table


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- the inference and its refusals, without a repo -------------------------------------------
def test_the_schema_is_inferred_from_the_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", HEADER, customers(120, 1))
    found = dataset.adopt(path, "status", "binary_classification", drop=("customer_id",))
    assert found.kinds == {
        "plan": "categorical",
        "region": "categorical",
        "tenure": "numeric",
        "monthly_charges": "numeric",
        "autopay": "boolean",
    }
    assert found.classes == ("churned", "stayed")
    assert found.header == ["status", *found.kinds]
    source = dataset.schema_source(found, "c.csv")
    namespace: dict = {}
    exec(compile(source, "schema.py", "exec"), namespace)  # the written file is valid Python
    assert namespace["CLASSES"] == ("churned", "stayed")
    assert set(namespace["FEATURES"]) == set(found.kinds)


@pytest.mark.parametrize(
    ("column", "values", "reason"),
    [
        ("id", [str(i) for i in range(40)], "looks like an ID (a different whole number per row)"),
        ("code", [f"x{i}" for i in range(40)], "looks like an ID (a different value per row)"),
        ("same", ["a"] * 40, "constant ('a' everywhere)"),
        ("blank", [""] * 40, "every value is empty"),
        ("note", [f"note {i}" for i in (*range(90), *range(30))], "free text (90 distinct"),
    ],
)
def test_what_cannot_be_a_feature_is_refused_one_line_each(
    tmp_path: Path, column: str, values: list[str], reason: str
) -> None:
    rows = [[v, "yes" if i % 2 else "no", str(i % 7)] for i, v in enumerate(values)]
    path = write_csv(tmp_path / "c.csv", [column, "label", "x"], rows)
    with pytest.raises(dataset.AdoptError) as caught:
        dataset.adopt(path, "label", "binary_classification")
    [line] = caught.value.reasons  # one line, naming the column, the reason and the way out
    assert line.startswith(f"column {column!r}: {reason}") and f"--drop {column}" in line
    found = dataset.adopt(path, "label", "binary_classification", drop=(column,))
    assert list(found.kinds) == ["x"]


@pytest.mark.parametrize(
    ("labels", "problem_type", "reason"),
    [
        (["a"] * 30, "binary_classification", "a single class ('a')"),
        (["a", "b", "c"] * 10, "binary_classification", "3 classes, a binary classifier needs"),
        (["1.5", "x"] * 15, "regression", "'x' is not a number"),
        (["a", ""] * 15, "multiclass_classification", "15 row(s) without a value"),
    ],
)
def test_a_target_that_cannot_be_learned_is_refused(
    tmp_path: Path, labels: list[str], problem_type: str, reason: str
) -> None:
    rows = [[label, str(i % 5)] for i, label in enumerate(labels)]
    path = write_csv(tmp_path / "c.csv", ["y", "x"], rows)
    with pytest.raises(dataset.AdoptError, match=re.escape(reason)):
        dataset.adopt(path, "y", problem_type)


# -- end to end on a render -------------------------------------------------------------------
def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_scripts", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def post(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_adopt_refuses_in_one_line_per_column_and_writes_nothing(bake_once, tmp_path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(bake_once(**DEFAULT_COMBINATION), repo, symlinks=True)
    before = (repo / "data" / "dataset.csv").read_bytes(), (repo / "pyproject.toml").read_bytes()
    rows = customers(60, 2)
    for row in rows:
        row.append("constant")
    source = write_csv(tmp_path / "c.csv", [*HEADER, "same"], rows)
    proc = cli(repo, "data", "adopt", str(source), "--target", "status")
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert [line.split(":", 2)[1].strip() for line in errors] == [
        "column 'customer_id'",
        "column 'same'",
    ], proc.stderr
    after = (repo / "data" / "dataset.csv").read_bytes(), (repo / "pyproject.toml").read_bytes()
    assert after == before
    wrong = cli(repo, "data", "adopt", str(source), "--target", "status", "--problem-type", "x")
    assert wrong.returncode == 1 and "this repo's model is binary_classification" in wrong.stderr


@pytest.mark.slow
def test_a_csv_of_names_categories_and_gaps_goes_through_the_loop(bake_once, tmp_path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(bake_once(**DEFAULT_COMBINATION), repo, symlinks=True)
    source = write_csv(tmp_path / "customers.csv", HEADER, customers(400, 3))
    adopted = cli(repo, "data", "adopt", str(source), "--target", "status", "--drop", "customer_id")
    assert adopted.returncode == 0, adopted.stderr
    assert "bias: off" in adopted.stdout and "next: make test" in adopted.stdout
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "Adopt customers.csv"], cwd=repo, check=True)

    demo = Demo(tmp_path)
    demo.repo = repo
    try:
        assert "version" in demo.run_pipeline().lower()
        demo.propose("staging")
        demo.merge()
        demo.deploy("staging")
        assert demo.smoke("staging").startswith("smoke-test staging: OK")
        url = json.loads((repo / ".mlops/endpoints/staging.router.json").read_text())["url"]
        instances = [
            {"plan": "pro", "region": None, "tenure": None, "monthly_charges": 50, "autopay": True},
            ["basic", 'east, "far"', "3", "", "no"],
            ["enterprise", "west", 40, 99.5, "yes"],  # categories it never saw: answered
        ]
        answer = post(
            f"{url}/invocations", json.dumps({"instances": instances}).encode(), "application/json"
        )
        labels = [p["label"] for p in answer["predictions"]]
        assert len(labels) == 3 and set(labels) <= {"churned", "stayed"}, answer
        csv_answer = post(f"{url}/invocations", b'basic,"east, ""far""",,30.5,no\n', "text/csv")
        assert csv_answer["predictions"][0]["label"] in ("churned", "stayed")

        def traffic(rows: list[list[str]]) -> None:
            """The customers in one request (the monitor reads every row a capture holds)."""
            body = json.dumps({"instances": [row[1:6] for row in rows]}).encode()
            answer = post(f"{url}/invocations", body, "application/json")
            assert len(answer["predictions"]) == len(rows)

        for seed in (11, 12):  # unshifted traffic, run after run: no drift
            traffic(customers(60, seed))
            proc = cli(repo, "monitor", "--env", "staging")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            rows = re.search(r"(\d+) captured rows", proc.stdout)  # the smoke test's too
            assert rows and int(rows[1]) >= 60, proc.stdout
        traffic(customers(60, 13, plans=("max",)))  # every customer moved to one plan
        proc = cli(repo, "monitor", "--env", "staging")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "plan" in proc.stdout
    finally:
        demo.down()
