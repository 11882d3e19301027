"""Write docs/ui-fail.png: the verdict page of a replayed rollout that FAILs (for README.md).

A seeded simulated rollout (errors 10x from minute 2) is replayed with ``gatekeeper replay
--html``, and Debian's chromium takes the screenshot headless. Usage: ``make ui-screenshot``
(or ``python tools/ui_screenshot.py [OUT.png]``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gatekeeper import cli, simulate  # noqa: E402

OUT = ROOT / "docs" / "ui-fail.png"
T0 = 1714572000.0  # 2024-05-01T14:00:00Z
SPEC = """interval: 1m
metrics:
  - {name: error-rate, kind: RATIO, critical: true}
  - {name: latency, kind: HISTOGRAM, quantile: 0.99, critical: true}
"""
SCENARIO = simulate.Scenario(
    seconds=900.0,
    rps=100.0,
    canary_weight=0.25,
    pods_canary=2,
    fault=simulate.Fault(simulate.FaultKind.ERRORS, 10.0, onset_seconds=120.0),
    seed=3,
)
WINDOW = "1100,1500"


def main(out: Path = OUT) -> int:
    """Replay, render, screenshot; the exit code of chromium (0 when written)."""
    browser = shutil.which("chromium")
    if browser is None:
        print("chromium is not installed: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        recorded = simulate.write_recorded(
            simulate.simulate(SCENARIO), work / "checkout-v3.csv", start=T0
        )
        spec = work / "spec.yaml"
        spec.write_text(SPEC)
        page = work / "page.html"
        cli.main(["replay", str(recorded), "--spec", str(spec), "--html", str(page)])
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={work / 'profile'}",
            f"--window-size={WINDOW}",
            f"--screenshot={out}",
            page.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    print(f"wrote {out}" if done.returncode == 0 else done.stderr.decode(), file=sys.stderr)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
