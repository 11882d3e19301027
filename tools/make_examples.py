"""Write the example JudgeRequests in examples/ (seeded: the same files every run).

Usage: python tools/make_examples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from google.protobuf import json_format

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gatekeeper.api.v1 import gatekeeper_pb2 as pb  # noqa: E402
from gatekeeper.stats.model import HistogramSeries, RatioSeries  # noqa: E402
from tests import traffic  # noqa: E402


def counts(series: RatioSeries) -> pb.Series:
    return pb.Series(
        counts=[pb.Counts(bad=b, total=t) for b, t in zip(series.bad, series.total, strict=True)]
    )


def buckets(series: HistogramSeries) -> pb.Series:
    bounds = [float(b) for b in series.upper_bounds]
    return pb.Series(
        histograms=[pb.Histogram(upper_bounds=bounds, counts=list(row)) for row in series.counts]
    )


def values(samples: np.ndarray) -> pb.Series:
    return pb.Series(values=[round(float(v), 6) for v in samples])


def ratio(name: str, baseline: RatioSeries, canary: RatioSeries, **config: object) -> pb.Metric:
    return pb.Metric(
        config=pb.MetricConfig(name=name, kind=pb.METRIC_KIND_RATIO, **config),  # type: ignore[arg-type]
        baseline=counts(baseline),
        canary=counts(canary),
    )


def histogram(
    name: str, baseline: list[np.ndarray], canary: list[np.ndarray], **config: object
) -> pb.Metric:
    return pb.Metric(
        config=pb.MetricConfig(name=name, kind=pb.METRIC_KIND_HISTOGRAM, **config),  # type: ignore[arg-type]
        baseline=buckets(traffic.histograms(baseline)),
        canary=buckets(traffic.histograms(canary)),
    )


def examples() -> dict[str, pb.JudgeRequest]:
    rng = np.random.default_rng(20261127)
    minute = 60.0
    out: dict[str, pb.JudgeRequest] = {}

    base_err = traffic.pod_counts(
        rng, pods=10, intervals=10, requests_per_pod=200, error_rate=0.0005, sigma=0.3
    )
    bad_err = traffic.pod_counts(
        rng, pods=10, intervals=10, requests_per_pod=200, error_rate=0.009, sigma=0.3
    )
    out["error-regression"] = pb.JudgeRequest(
        metrics=[ratio("error-rate", base_err, bad_err, critical=True)], interval_seconds=minute
    )

    base_lat = [traffic.latencies(rng, n=3000, median=0.05) for _ in range(10)]
    slow_lat = [
        traffic.latencies(rng, n=300, median=0.05, slow_share=0.03, slow_factor=6.0)
        for _ in range(10)
    ]
    out["p99-regression"] = pb.JudgeRequest(
        metrics=[histogram("latency-p99", base_lat, slow_lat, critical=True, quantile=0.99)],
        interval_seconds=minute,
    )

    out["quiet-canary"] = pb.JudgeRequest(
        metrics=[
            ratio(
                "error-rate",
                traffic.fixed_counts(2, 2400, 3),
                traffic.fixed_counts(0, 2, 3),
                critical=True,
            )
        ],
        interval_seconds=minute,
    )

    out["sparse-errors"] = pb.JudgeRequest(
        metrics=[
            ratio(
                "error-rate",
                traffic.fixed_counts(0, 10_000, 10),
                traffic.fixed_counts(3, 1_000, 10),
                critical=True,
            )
        ],
        interval_seconds=minute,
    )

    out["zero-error-healthy"] = pb.JudgeRequest(
        metrics=[
            ratio(
                "error-rate",
                traffic.fixed_counts(0, 10_000, 10),
                traffic.fixed_counts(0, 1_000, 10),
                critical=True,
                absolute_tolerance=0.001,
            )
        ],
        interval_seconds=minute,
    )

    # Errors in bursts, none at all in the baseline: the default mode FAILs, KAYENTA mode's
    # rank test over per-interval rates sees 8 of 10 canary intervals alike and passes.
    out["kayenta/sparse-errors-compare"] = pb.JudgeRequest(
        metrics=[
            ratio(
                "error-rate",
                traffic.fixed_counts(0, 10_000, 10),
                RatioSeries(
                    bad=np.array([0, 0, 12, 0, 0, 0, 18, 0, 0, 0], dtype=float),
                    total=np.full(10, 1_000.0),
                ),
                critical=True,
            )
        ],
        interval_seconds=minute,
    )

    good_base = traffic.pod_counts(
        rng, pods=10, intervals=20, requests_per_pod=150, error_rate=0.002, sigma=0.5
    )
    good_can = traffic.pod_counts(
        rng, pods=2, intervals=20, requests_per_pod=150, error_rate=0.002, sigma=0.5
    )
    cpu_base = rng.normal(0.40, 0.05, 40).clip(0.01)
    cpu_can = rng.normal(0.40, 0.05, 40).clip(0.01)
    out["healthy"] = pb.JudgeRequest(
        metrics=[
            ratio("error-rate", good_base, good_can, critical=True, absolute_tolerance=0.0005),
            histogram(
                "latency-p99",
                [traffic.latencies(rng, n=1500, median=0.05) for _ in range(20)],
                [traffic.latencies(rng, n=300, median=0.05) for _ in range(20)],
                tolerance=0.2,
            ),
            pb.Metric(
                config=pb.MetricConfig(
                    name="cpu-per-pod", kind=pb.METRIC_KIND_VALUES, tolerance=0.3
                ),
                baseline=values(cpu_base),
                canary=values(cpu_can),
            ),
        ],
        interval_seconds=minute,
    )
    return out


def main() -> None:
    folder = ROOT / "examples"
    folder.mkdir(exist_ok=True)
    for name, request in examples().items():
        text = json_format.MessageToJson(request, indent=1)
        (folder / f"{name}.json").write_text(text + "\n")
        print(f"examples/{name}.json")


if __name__ == "__main__":
    main()
