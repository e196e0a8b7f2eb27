"""Every option combination's rendered infra/ passes checkov, the scanner security reviewers run.

One checkov process for all combinations (it takes ~15 s to start and load its checks), over the
renders the other template tests share, each distinct file once (api.yml is the same in every API
render). A check that does not apply is skipped in the template itself (a `checkov: skip:` entry
in the resource's Metadata, with its reason), never here: this test passes no --skip-check, and
fails on a skip without a reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from distinct_files import distinct_by_content
from option_matrix import COMBINATIONS

CHECKOV = Path(sys.executable).with_name("checkov")


def run_checkov(files: list[Path]) -> dict:
    """checkov over ``files`` offline (--skip-download: no guideline or policy download)."""
    command = [str(CHECKOV if CHECKOV.exists() else shutil.which("checkov"))]
    command += ["--framework", "cloudformation", "--skip-download", "-o", "json"]
    for path in files:
        command += ["-f", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.slow  # ~10 s of checkov: started early
def test_every_combination_renders_checkov_clean_infra(bake_once):
    files = sorted(
        path for combo in COMBINATIONS for path in bake_once(**combo).glob("infra/*.yml")
    )
    with_api = sum(combo["api_gateway"] == "yes" for combo in COMBINATIONS)
    assert len(files) == len(COMBINATIONS) + with_api

    distinct = distinct_by_content(files)  # each of the others is byte-identical to one of these

    report = run_checkov(distinct)

    assert report["check_type"] == "cloudformation"
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} {Path(c['file_path']).parent.parent.name}"
        for c in results["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    scanned = {Path(c["file_abs_path"]) for c in results["passed_checks"]}
    assert scanned == set(distinct)  # every file was read, none silently dropped
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 5, f"{skipped['check_id']} {skipped['resource']}: {reason!r}"
