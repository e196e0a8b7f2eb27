"""`make bench` prints its figures as JSON, and nothing else, on stdout.

What the measured commands print, and the render's post-generation hook (its next-steps lines,
written by a subprocess straight to file descriptor 1), goes to stderr: a caller that parses
stdout (`make bench | jq`) would otherwise get those lines first and fail.
"""

from __future__ import annotations

import json
import subprocess
import sys

from gitops_testkit import TEMPLATE_DIR

NOISY_MEASURE = """
import subprocess, sys
import scripts.bench as bench

def measure():
    print("a line from the bench itself")
    subprocess.run([sys.executable, "-c", "print('a line from a measured command')"], check=True)
    return {"figure": 1.5}

bench.measure = measure
sys.exit(bench.main())
"""


def test_only_the_figures_reach_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NOISY_MEASURE],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"figure": 1.5}
    assert "a line from the bench itself" in done.stderr
    assert "a line from a measured command" in done.stderr
