"""Run the ``gatekeeper`` command as a separate process, the way CI jobs and people call it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gatekeeper(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m gatekeeper.cli ARGS`` from the repository root; never raises on exit codes."""
    return subprocess.run(
        [sys.executable, "-m", "gatekeeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
