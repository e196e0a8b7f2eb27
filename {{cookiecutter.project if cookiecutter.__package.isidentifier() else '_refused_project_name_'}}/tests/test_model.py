"""The team's own tests of its model: add yours here (the platform's contract is checked in
test_platform_contract.py)."""

import pytest

from {{ cookiecutter.__package }} import model, schema


def test_declarations_agree() -> None:
    assert model.PRIMARY_METRIC in model.METRICS
    assert set(model.MAX_METRIC_DROP) <= set(model.METRICS)
    assert len(set(schema.FEATURES)) == len(schema.FEATURES)
    assert schema.TARGET not in schema.FEATURES


@pytest.mark.parametrize("name", list(model.HYPERPARAMETERS))
def test_a_bad_hyperparameter_value_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        model.HYPERPARAMETERS[name].parse("-1")
