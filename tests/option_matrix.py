"""The option matrix every template test renders: one definition, used by all of them.

Built like ``itertools.product`` over the choice prompts of cookiecutter.json, minus what the
pre_gen hook refuses (test_render.test_filter_matches_the_hook keeps the filter equal to the rule).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COOKIECUTTER_JSON: dict = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
OPTIONS = ("deployment", "monitoring", "api_gateway")


def is_valid_combination(combo: dict[str, str]) -> bool:
    """What the pre_gen hook accepts: serverless endpoints have neither data capture nor Model
    Monitor, and a batch deployment has no endpoint an API could front."""
    if combo["deployment"] == "serverless" and combo["monitoring"] == "yes":
        return False
    return not (combo["deployment"] == "batch" and combo["api_gateway"] == "yes")


def combination_id(combo: dict[str, str]) -> str:
    return "-".join(
        (
            combo["deployment"],
            "monitoring" if combo["monitoring"] == "yes" else "nomonitoring",
            "api" if combo["api_gateway"] == "yes" else "noapi",
        )
    )


ALL_COMBINATIONS = [
    dict(zip(OPTIONS, values, strict=True))
    for values in itertools.product(*(COOKIECUTTER_JSON[option] for option in OPTIONS))
]
ACCEPTED_COMBINATIONS = [combo for combo in ALL_COMBINATIONS if is_valid_combination(combo)]
REFUSED_COMBINATIONS = [combo for combo in ALL_COMBINATIONS if not is_valid_combination(combo)]

# The one batch render the batch-only tests share (the render budget is the suite's time
# budget): monitoring=yes is the batch render with the most in it. Every accepted combination is
# rendered and exercised (batch with monitoring=no too: its deploy leaves capture out of the
# schedule, tests/iam records its loop on both accounts).
BATCH_COMBINATION = {"deployment": "batch", "monitoring": "yes", "api_gateway": "no"}
COMBINATIONS = list(ACCEPTED_COMBINATIONS)
DEFAULT_COMBINATION = {option: COOKIECUTTER_JSON[option][0] for option in OPTIONS}
# The renders whose pre-commit hooks test_workflows runs (cfn-lint's included: test_infra
# lints every other distinct template, with the hook's own arguments).
PRE_COMMIT_COMBINATIONS = (COMBINATIONS[0], COMBINATIONS[-1])

# problem_type changes the model (its data, metrics, response), not the infra or the workflows:
# each problem type is rendered once, with the other options at their defaults (the default
# problem type's render is DEFAULT_COMBINATION's, shared). tests/test_problem_types.py runs each
# one's own suite and its local loop.
PROBLEM_TYPES: list[str] = list(COOKIECUTTER_JSON["problem_type"])
DEFAULT_PROBLEM_TYPE = PROBLEM_TYPES[0]


def problem_type_answers(problem_type: str) -> dict[str, str]:
    """The answers of ``problem_type``'s render (no key for the default: the same render)."""
    if problem_type == DEFAULT_PROBLEM_TYPE:
        return dict(DEFAULT_COMBINATION)
    return {**DEFAULT_COMBINATION, "problem_type": problem_type}
