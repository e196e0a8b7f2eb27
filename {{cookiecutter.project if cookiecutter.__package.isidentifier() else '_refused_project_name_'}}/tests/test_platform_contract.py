"""The platform's contract check on this repo's model and data (ci_scripts/runtime/contract.py).

It runs the platform's real step code on data/dataset.csv: preprocess, train with every declared
hyperparameter, save and load, evaluate every metric, serve JSON and CSV requests. A failure names
what a pipeline run would have failed on.
"""

from pathlib import Path

from ci_scripts.runtime import contract

REPO = Path(__file__).resolve().parents[1]


def test_the_model_and_data_meet_the_platform_contract(tmp_path: Path) -> None:
    verdict = contract.check(REPO, tmp_path)
    assert verdict.passes_gate, (
        f"{verdict.primary_metric}={verdict.metrics[verdict.primary_metric]:.4f} on the test split"
        " misses the gate (model.THRESHOLD): the pipeline would not register this model"
    )
