"""The real-client matrix: shared fake provider, one service per module, drivers in subprocesses."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # fake_provider, expected (--import-mode=importlib does not add it)
