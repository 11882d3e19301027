"""`gatekeeper judge` and `replay` on hostile input (issue 19, item 8): bounded, never stuck.

Each case runs the real command as CI jobs do (a separate process) and expects exit 4
(bad input) with a message naming the limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from gatekeeper import simulate
from gatekeeper.simulate import Scenario
from tests.process import ROOT, gatekeeper

EXAMPLES = ROOT / "examples"
T0 = 1714572000.0  # 2024-05-01T14:00:00Z


def test_judge_on_dev_zero_exits_4_naming_the_limit() -> None:
    done = gatekeeper("judge", "/dev/zero", "--max-input-bytes", "5000000", timeout=60)
    assert done.returncode == 4, done.stderr
    assert "larger than the limit of 5000000 bytes" in done.stderr
    assert "--max-input-bytes" in done.stderr


def test_judge_on_a_2_gb_file_exits_4_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used
    done = gatekeeper("judge", str(huge), timeout=60)
    assert done.returncode == 4, done.stderr
    assert f"it has {2 * 1024**3} bytes" in done.stderr


def test_judge_on_a_fifo_without_a_writer_gives_up_after_the_read_timeout(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "request.fifo"
    os.mkfifo(fifo)
    done = gatekeeper("judge", str(fifo), "--read-timeout", "1", timeout=60)
    assert done.returncode == 4, done.stderr
    assert "no data from" in done.stderr and "--read-timeout" in done.stderr


def test_judge_reads_a_fifo_whose_writer_comes_later(tmp_path: Path) -> None:
    fifo = tmp_path / "request.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        time.sleep(0.5)
        fifo.write_bytes((EXAMPLES / "healthy.json").read_bytes())

    writer = threading.Thread(target=write)
    writer.start()
    done = gatekeeper("judge", str(fifo), "--output", "json", "--read-timeout", "20", timeout=60)
    writer.join()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"] == "DECISION_PASS"


def test_judge_on_per_bucket_histogram_counts_exits_4_naming_interval_and_bucket(
    tmp_path: Path,
) -> None:
    request = {
        "metrics": [
            {
                "config": {"name": "latency", "kind": "METRIC_KIND_HISTOGRAM"},
                "baseline": {
                    "histograms": [
                        {"upperBounds": [0.1, 0.5, 1, "Infinity"], "counts": [5, 8, 9, 10]}
                    ]
                },
                "canary": {
                    "histograms": [
                        {
                            "upperBounds": [0.1, 0.5, 1, "Infinity"],
                            "counts": [5000, 3000, 1500, 500],
                        }
                    ]
                },
            }
        ]
    }
    path = tmp_path / "per-bucket.json"
    path.write_text(json.dumps(request))
    done = gatekeeper("judge", str(path), timeout=60)
    assert done.returncode == 4, done.stderr
    assert "metrics[0].canary.histograms[0].counts[1]" in done.stderr
    assert "interval 0" in done.stderr and "cumulative" in done.stderr


MEMORY_LIMITED = """
import resource, sys
from gatekeeper import cli
pages = int(open("/proc/self/statm").read().split()[0])
used = pages * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 150 * 2**20, resource.RLIM_INFINITY))
sys.exit(cli.main(["judge", sys.argv[1], "--max-input-bytes", str(2**30)]))
"""


def test_running_out_of_memory_on_the_input_is_exit_4_not_3(tmp_path: Path) -> None:
    """A real memory limit (RLIMIT_AS) on the process, and an input that does not fit."""
    values = ",".join(["1.5"] * 30_000_000)  # 120 MB of JSON, far more once decoded
    path = tmp_path / "big.json"
    path.write_text(
        '{"metrics": [{"config": {"name": "v", "kind": "METRIC_KIND_VALUES"}, '
        f'"baseline": {{"values": [{values}]}}, "canary": {{"values": [1]}}}}]}}'
    )
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 4, done.stderr
    assert "does not fit in memory" in done.stderr


SPEC = "interval: 1m\nmetrics:\n  - {name: error-rate, kind: RATIO, critical: true}\n"


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    traffic = simulate.simulate(Scenario(seconds=600.0, rps=50.0, seed=2))
    return simulate.write_recorded(traffic, tmp_path / "r.csv", start=T0)


@pytest.mark.parametrize("stray", [0.0, 4102444800.0])  # 1970-01-01 and 2100-01-01
def test_replay_refuses_a_stray_row_that_stretches_the_window(
    tmp_path: Path, recorded: Path, stray: float
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    table = pd.read_csv(recorded)
    row = table[table["metric"] == "error-rate"].iloc[[0]].copy()
    row["time"] = stray
    pd.concat([table, row]).to_csv(recorded, index=False)
    done = gatekeeper("replay", str(recorded), "--spec", str(spec), timeout=120)
    assert done.returncode == 4, done.stderr
    assert "--max-window 7d" in done.stderr
    year = "1970-01-01" if stray == 0.0 else "2100-01-01"
    assert f"error-rate at {year}" in done.stderr


def test_replay_max_window_is_a_flag(tmp_path: Path, recorded: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    done = gatekeeper("replay", str(recorded), "--spec", str(spec), "--max-window", "5m")
    assert done.returncode == 4, done.stderr
    assert "--max-window 5m" in done.stderr
    assert gatekeeper("replay", str(recorded), "--spec", str(spec)).returncode in (0, 2)
    done = gatekeeper(
        "replay",
        str(recorded),
        "--spec",
        str(spec),
        "--start",
        "2024-05-01T00:00:00Z",
        "--end",
        "2024-06-01T00:00:00Z",
    )
    assert done.returncode == 4 and "--end" in done.stderr


MEMORY_LIMITED_REPLAY = """
import resource, sys
from gatekeeper import cli
pages = int(open("/proc/self/statm").read().split()[0])
used = pages * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 100 * 2**20, resource.RLIM_INFINITY))
sys.exit(cli.main(["replay", sys.argv[1], "--spec", sys.argv[2]]))
"""


def test_a_recording_that_does_not_fit_in_memory_is_exit_4(tmp_path: Path) -> None:
    """A guard more than a finding: replay's reader already turned ENOMEM into exit 4."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    path = tmp_path / "huge.csv"
    with path.open("w") as handle:
        handle.write("time,side,metric,bad,total\n")
        handle.writelines(
            f"{T0 + 60 * (k % 100)},canary,error-rate,1,100\n" for k in range(5_000_000)
        )
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_LIMITED_REPLAY, str(path), str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 4, done.stderr
    assert "memory" in done.stderr.lower()  # ENOMEM while reading, or MemoryError after
