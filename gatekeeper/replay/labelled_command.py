"""``gatekeeper replay --labelled INDEX.csv``: evaluate a labelled set, locally or on Dask.

::

    gatekeeper replay --labelled INDEX.csv --spec SPEC [--workers N] [--output json|table]
    gatekeeper replay --labelled INDEX.csv --spec SPEC --scheduler tcp://HOST:PORT

The index is :func:`gatekeeper.replay.read_labelled`'s (columns ``file`` and ``label``).
With ``--scheduler`` the replays run on that Dask cluster (the ``dask`` extra), and the
rollout files must be readable by its workers at the paths the index gives. Exit codes:
0 once the set is evaluated, 3 when the scheduler cannot be reached, 4 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from gatekeeper.errors import InvalidArgument, Unavailable
from gatekeeper.replay.batch import Evaluation, evaluate, read_labelled
from gatekeeper.spec import AnalysisSpec, format_duration

EXIT_EVALUATED = 0
SCHEDULER_SCHEMES = ("tcp", "tls")
#: Seconds to wait for the scheduler to answer.
CONNECT_TIMEOUT_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--labelled``, ``--scheduler``, ``--workers`` and ``--progress`` to ``parser``."""
    group = parser.add_argument_group("a labelled set (good and bad rollouts)")
    group.add_argument("--labelled", metavar="INDEX", help="CSV index: file,label (good|bad)")
    group.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="replay on this Dask scheduler"
    )
    group.add_argument(
        "--workers", type=int, metavar="N", help="local processes (or the cluster's slots)"
    )
    group.add_argument(
        "--progress", action="store_true", help="show the progress bar even off a terminal"
    )


def run_labelled(args: argparse.Namespace, spec: AnalysisSpec, interval: float | None) -> int:
    """Evaluate ``args.labelled`` with ``spec``, print the result, return the exit code."""
    if args.workers is not None and args.workers < 1:
        raise InvalidArgument.single("--workers", f"must be 1 or more, got {args.workers}")
    rollouts = read_labelled(args.labelled)
    with _executor(args.scheduler) as executor:
        found = evaluate(
            spec,
            rollouts,
            interval_seconds=interval,
            workers=args.workers,
            executor=executor,
            progress=True if args.progress else None,
        )
    if args.output == "json":
        print(json.dumps(_json(found), indent=2, allow_nan=False))
    else:
        print(evaluation_table(found))
    return EXIT_EVALUATED


def _check_address(address: str) -> None:
    parts = urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in SCHEDULER_SCHEMES or not parts.hostname or port is None:
        raise InvalidArgument.single(
            "--scheduler",
            f"must be tcp://HOST:PORT or tls://HOST:PORT (a Dask scheduler), got {address!r}",
        )


@contextmanager
def _executor(address: str | None) -> Iterator[Executor | None]:
    """No executor (the local pool) without an address; else the cluster's, closed after."""
    if address is None:
        yield None
        return
    _check_address(address)
    try:
        from distributed import Client  # noqa: PLC0415 (optional: the dask extra)
    except ImportError:
        raise InvalidArgument.single(
            "--scheduler", "needs the dask extra: pip install 'canary-gatekeeper[dask]'"
        ) from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except OSError as exc:
        raise Unavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        yield client.get_executor()


def _json(found: Evaluation) -> dict[str, Any]:
    rows = found.results.astype(object).where(found.results.notna(), None)
    return {**found.rates(), "results": rows.to_dict(orient="records")}


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else format_duration(round(value))


def _count(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def _share(rate: float, label: str) -> str:
    return f"{label} n/a" if math.isnan(rate) else f"{label} {rate:.0%}"


def evaluation_table(found: Evaluation) -> str:
    """One line per rollout (decision, when, canary bad events), then the rates."""
    table = found.results
    columns = ["rollout", "label", "decision", "decided after", "canary bad"]
    decided = table["decided_after_seconds"].to_numpy(dtype=float)
    served = table["canary_bad_before_decision"].to_numpy(dtype=float)
    rows = [
        [str(name), str(label), str(decision), _seconds(after), _count(bad)]
        for name, label, decision, after, bad in zip(
            table["name"], table["label"], table["decision"], decided, served, strict=True
        )
    ]
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [columns, ["-" * w for w in widths], *rows]
    ]
    bad = int((table["label"] == "bad").sum())
    lines += [
        "",
        f"{len(table)} rollouts ({bad} bad): "
        + ", ".join(
            [
                _share(found.catch_rate, "caught"),
                _share(found.false_rollback_rate, "false rollbacks"),
                _share(found.inconclusive_rate, "inconclusive"),
                _share(found.missed_rate, "missed"),
            ]
        ),
        f"time to detect: median {_seconds(found.median_time_to_detect_seconds)}, "
        f"mean {_seconds(found.mean_time_to_detect_seconds)}",
    ]
    return "\n".join(lines)
