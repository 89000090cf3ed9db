"""The CDK app's tests run in infra/.venv (`make infra-check`), from the infra folder or the repository root."""

from __future__ import annotations

import sys
from pathlib import Path

INFRA = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(INFRA), str(INFRA.parent)]
