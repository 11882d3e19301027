"""What a judgement will cost, estimated from the request before it is judged.

Data points alone misjudge it: 10,000 RATIO metrics of one interval each are only 20,000
points, yet a sequential look that guards both directions tests every metric twice with
anytime-valid bounds, about 5 ms each, and took 50 s. The estimate is in milliseconds of
one core, per metric::

    directions x (fixed[kind] x looked[kind] + points x per_point[kind])

with ``looked`` and the per-point cost those of a sequential look when the request has a
``Look``. The coefficients were measured on the judge on 2 shared cores
(``benchmarks/hostile_load.py`` compares estimate and measurement); they need only be
right within a factor of two or so, since the estimate only decides whether a request is
judged inline (cheap) or in a judge worker.
"""

from __future__ import annotations

from gatekeeper.api.v1 import gatekeeper_pb2 as pb

#: Milliseconds of a metric with hardly any data, by kind, for a fixed-sample judgement.
FIXED_MS = {
    pb.METRIC_KIND_RATIO: 1.0,
    pb.METRIC_KIND_VALUES: 0.3,
    pb.METRIC_KIND_HISTOGRAM: 0.5,
}
#: How much more a metric's fixed part costs at a sequential look.
LOOKED = {
    pb.METRIC_KIND_RATIO: 1.8,
    pb.METRIC_KIND_VALUES: 1.0,
    pb.METRIC_KIND_HISTOGRAM: 1.5,
}
#: Milliseconds per data point (a bucket for histograms), fixed-sample and at a look.
PER_POINT_MS = {
    pb.METRIC_KIND_RATIO: (0.001, 0.04),
    pb.METRIC_KIND_VALUES: (0.001, 0.001),
    pb.METRIC_KIND_HISTOGRAM: (0.003, 0.004),
}
#: The most expensive kind, for metrics whose kind is not (yet) valid.
_WORST = pb.METRIC_KIND_RATIO


def _points(series: pb.Series) -> int:
    points = len(series.values) + len(series.counts)
    if series.histograms:
        points += len(series.histograms) * max(1, len(series.histograms[0].counts))
    for pod in series.pods:
        points += len(pod.values) + len(pod.counts)
        if pod.histograms:
            points += len(pod.histograms) * max(1, len(pod.histograms[0].counts))
    return points


def estimated_ms(request: pb.JudgeRequest) -> float:
    """The estimated judge time of ``request``, in milliseconds of one core.

    Parameters
    ----------
    request : JudgeRequest
        Decoded, not necessarily valid (unknown kinds count as the most expensive).

    Returns
    -------
    float
        The estimate (see the module for the model).
    """
    looked = request.HasField("look")
    total = 0.0
    for metric in request.metrics:
        kind = metric.config.kind if metric.config.kind in FIXED_MS else _WORST
        directions = 2.0 if metric.config.direction == pb.DIRECTION_EITHER else 1.0
        fixed = FIXED_MS[kind] * (LOOKED[kind] if looked else 1.0)
        per_point = PER_POINT_MS[kind][1 if looked else 0]
        points = _points(metric.baseline) + _points(metric.canary)
        total += directions * (fixed + points * per_point)
    return total
