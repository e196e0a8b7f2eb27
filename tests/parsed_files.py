"""Rendered YAML parsed once per worker, with libyaml where the document is plain YAML.

Why: the IAM tests read the same rendered workflows and bootstrap template for every one of
their cases (a few hundred reads in a run), and PyYAML's pure-Python parser spends tens of
milliseconds on each workflow and cfn-lint's loader seconds on each template. A render's files
never change once bake_once made it, so a parse keyed by the file's bytes is reused; callers get
their own copy, so no test can change what the next one reads.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import cfn_yaml

# libyaml's parser, the same SafeLoader constructors: the documents are the ones PyYAML builds
# (the fallback keeps the tests running where PyYAML was built without libyaml).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str | bytes) -> Any:
    """``yaml.safe_load`` through libyaml."""
    return yaml.load(text, Loader=SAFE_LOADER)


def workflow(path: Path) -> Any:
    """The parsed YAML file (a workflow, an action), parsed once per content."""
    return copy.deepcopy(_yaml(path.read_bytes()))


def cfn_template(path: Path) -> dict[str, Any]:
    """The CloudFormation template as cfn-lint reads it (intrinsic tags, line marks)."""
    return copy.deepcopy(_cfn(path.read_bytes(), str(path)))


@cache
def _yaml(content: bytes) -> Any:
    return load_yaml(content)


@cache
def _cfn(content: bytes, name: str) -> dict[str, Any]:
    return cfn_yaml.loads(content.decode("utf-8"), name)
