"""The IAM and OIDC judge's helpers (tests/iam/*.py) import each other by module name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
