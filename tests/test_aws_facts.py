"""ci_scripts/aws_facts.json agrees with the installed botocore (else: `make aws-facts`).

The pre_gen hook cannot import botocore (it runs under `uvx cookiecutter`), so it trusts this file;
these tests are what keeps the file honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import gen_aws_facts

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
COMMITTED = json.loads(gen_aws_facts.FACTS_PATH.read_text("utf-8"))


@pytest.fixture(scope="module")
def fresh() -> dict:
    return gen_aws_facts.build_facts()


def test_committed_facts_equal_the_installed_botocore(fresh):
    committed, current = gen_aws_facts.comparable(COMMITTED), gen_aws_facts.comparable(fresh)
    stale = sorted(
        key for key in committed.keys() | current.keys() if committed.get(key) != current.get(key)
    )
    assert stale == [], (
        f"ci_scripts/aws_facts.json differs from botocore {fresh['generated_with_botocore']} "
        f"in {stale}; run `make aws-facts` and commit the result"
    )


def test_file_is_exactly_what_the_generator_writes():
    """Hand edits show up as a formatting difference even when the data still parses."""
    assert gen_aws_facts.FACTS_PATH.read_text("utf-8") == gen_aws_facts.dumps(COMMITTED)
    assert gen_aws_facts.FACTS_PATH == TEMPLATE_DIR / "ci_scripts" / "aws_facts.json"


def test_check_mode_exits_zero_when_current():
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.gen_aws_facts", "--check"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_check_mode_names_the_stale_file(tmp_path, monkeypatch, capsys):
    stale = dict(COMMITTED, sagemaker_regions=[*COMMITTED["sagemaker_regions"], "eu-west-9"])
    path = tmp_path / "aws_facts.json"
    path.write_text(gen_aws_facts.dumps(stale), encoding="utf-8")
    monkeypatch.setattr(gen_aws_facts, "FACTS_PATH", path)
    assert gen_aws_facts.main(["--check"]) == 1
    assert capsys.readouterr().err.startswith("error: aws_facts.json: differs from botocore")


def test_facts_cover_the_template_defaults():
    """Every default answer of cookiecutter.json is one the hook accepts."""
    defaults = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text("utf-8"))
    assert defaults["aws_region"] in COMMITTED["sagemaker_regions"]
    for field, kind in (
        ("processing_instance_type", "processing"),
        ("training_instance_type", "training"),
        ("endpoint_instance_type", "endpoint"),
    ):
        assert defaults[field] in COMMITTED["instance_types"][kind], field


def test_every_instance_family_is_classified_by_its_storage(fresh, monkeypatch):
    """KmsKeyId is decided by whether an instance type has local instance store (aws_facts.json
    instance_store), not by its name: g4dn, g5 and p3dn have it, c5n and inf2 do not. A family
    botocore adds that the table does not know stops the generator."""
    families = set(fresh["instance_store"]["families"])
    assert {"g4dn", "g5", "p3dn", "m5d", "p4d", "trn1"} <= families
    assert not {"c5n", "inf2", "m5", "p3", "c6gn"} & families
    monkeypatch.setattr(
        gen_aws_facts, "EBS_ONLY_FAMILIES", gen_aws_facts.EBS_ONLY_FAMILIES - {"m5"}
    )
    with pytest.raises(SystemExit, match=r"\['m5'\]"):
        gen_aws_facts.build_facts()


def test_has_instance_store_reads_the_facts():
    from ci_scripts.manifest_rules import has_instance_store, volume_kms_key

    assert has_instance_store("ml.g4dn.xlarge") and has_instance_store("ml.p3dn.24xlarge")
    assert not has_instance_store("ml.c5n.xlarge") and not has_instance_store("ml.m5.large")
    assert volume_kms_key("k", "ml.g5.2xlarge") is None
    assert volume_kms_key("k", "ml.m5.large") == "k" and volume_kms_key(None, "ml.m5.large") is None
