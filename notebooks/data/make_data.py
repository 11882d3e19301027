"""Write the notebooks' recorded rollouts from seeded traffic.

Run from the repository: ``.venv/bin/python notebooks/data/make_data.py``.

- ``historic-rollout.csv``: one rollout over the step plan 5 % / 25 % / 50 % with a daily
  traffic curve, background error bursts, warming-up pods and a dedicated baseline; from
  minute 5 the canary serves 4x the baseline's errors. Times are RFC 3339.
- ``labelled/``: a labelled set (``index.csv``: file, label) of 15-minute rollouts, good
  (healthy canaries under the same noise) and bad (errors x1.5 to x10, tail and bulk latency
  regressions, a leak), as Parquet.

The same seeds give the same files; the tests replay them through the notebooks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gatekeeper import simulate
from gatekeeper.simulate import Fault, FaultKind, Scenario

HERE = Path(__file__).resolve().parent
START = 1714572000.0  # 2024-05-01T14:00:00Z

HISTORIC = Scenario(
    seconds=1200.0,
    rps=80.0,
    plan=simulate.EXAMPLE_PLAN,
    pods_canary=4,
    dedicated_baseline=True,
    warmup_seconds=60.0,
    diurnal_amplitude=0.3,
    start_hour=14.0,
    bursts_per_hour=6.0,
    slow_share=0.005,
    fault=Fault(FaultKind.ERRORS, 4.0, onset_seconds=300.0),
    seed=8,
)

#: Noise every labelled rollout shares.
NOISE = {
    "seconds": 900.0,
    "rps": 150.0,
    "canary_weight": 0.2,
    "pods_canary": 2,
    "dedicated_baseline": True,
    "warmup_seconds": 60.0,
    "bursts_per_hour": 6.0,
    "slow_share": 0.005,
    "diurnal_amplitude": 0.3,
}
GOOD = [Fault()] * 10
BAD = [
    Fault(FaultKind.ERRORS, 10.0),
    Fault(FaultKind.ERRORS, 10.0),
    Fault(FaultKind.ERRORS, 4.0),
    Fault(FaultKind.ERRORS, 2.0),
    Fault(FaultKind.ERRORS, 1.5),
    Fault(FaultKind.TAIL, 5.0, share=0.03),
    Fault(FaultKind.LATENCY, 1.5),
    Fault(FaultKind.LEAK, 8.0),
]


def labelled(folder: Path) -> pd.DataFrame:
    """Write the labelled set into ``folder``; returns its index."""
    rows = []
    for number, (label, fault) in enumerate(
        [("good", f) for f in GOOD] + [("bad", f) for f in BAD]
    ):
        name = f"{number:02d}-{label}-{fault.kind.value}"
        if fault.kind is not FaultKind.NONE:
            name += f"-x{fault.factor:g}"
        scenario = Scenario(**NOISE, fault=fault, seed=100 + number, start_hour=number % 24)
        path = folder / f"{name}.parquet"
        simulate.write_recorded(simulate.simulate(scenario), path, start=START + 3600 * number)
        rows.append({"file": path.name, "label": label})
    index = pd.DataFrame(rows)
    index.to_csv(folder / "index.csv", index=False)
    return index


def main() -> None:
    """Write every data file of the notebooks."""
    traffic = simulate.simulate(HISTORIC)
    simulate.write_recorded(traffic, HERE / "historic-rollout.csv", start=START, rfc3339=True)
    (HERE / "labelled").mkdir(exist_ok=True)
    labelled(HERE / "labelled")


if __name__ == "__main__":
    main()
