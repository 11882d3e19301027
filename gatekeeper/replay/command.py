"""``gatekeeper replay``: replay a recorded rollout or a historic Prometheus window.

::

    gatekeeper replay FILE --spec SPEC [--interval 1m] [--steps 5%:2m,25%:5m]
        [--output json|table] [--html PAGE]
    gatekeeper replay --prometheus URL --spec SPEC --baseline SEL --canary SEL --start T --end T
    gatekeeper replay --labelled INDEX.csv --spec SPEC [--scheduler tcp://HOST:PORT]

``T`` is RFC 3339 (``2024-05-01T12:00:00Z``) or epoch seconds. The exit code is the final
decision's, as ``gatekeeper judge``: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (the metric
source failed), 4 bad input or usage. ``--output json`` prints the summary with the keys
``decision``, ``decided_after_seconds``, ``canary_bad_before_decision``, ``looks`` and
``timeline`` (and a few more). ``--steps`` gives the rollout's analysis steps (a recorded
table has no step boundaries): the looks are then numbered across them as the controller's
one analysis per rollout does (:mod:`gatekeeper.replay.steps`). ``--labelled`` evaluates a
labelled set instead (:mod:`gatekeeper.replay.labelled_command`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gatekeeper import engine
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay import bounds, labelled_command
from gatekeeper.replay.core import Replay, bad_metric_of, replay_recorded, replay_source
from gatekeeper.replay.html import write_page
from gatekeeper.replay.steps import StepPlan, parse_steps
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.sources.recorded import RecordedRollout, parse_time, read_recorded
from gatekeeper.spec import AnalysisSpec, format_duration, load_spec, parse_duration
from gatekeeper.stats.results import Decision

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2, 3, 4
EXIT_CODES = {
    Decision.PASS: EXIT_PASS,
    Decision.FAIL: EXIT_FAIL,
    Decision.INCONCLUSIVE: EXIT_INCONCLUSIVE,
    Decision.ERROR: EXIT_ERROR,
}
_PROMETHEUS_NEEDS = ("baseline", "canary", "start", "end")


def register(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand; its handler (``args.run``) returns the exit code.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``gatekeeper`` command's subparsers.

    Returns
    -------
    argparse.ArgumentParser
        The ``replay`` parser.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="replay a recorded rollout or a historic Prometheus window look by look",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "file", metavar="FILE", nargs="?", help="recorded rollout (CSV, or Parquet: *.parquet)"
    )
    parser.add_argument("--spec", required=True, metavar="SPEC", help="analysis spec file")
    parser.add_argument("--interval", help="look spacing such as 1m (default: the spec's)")
    parser.add_argument(
        "--steps",
        metavar="PLAN",
        help="the rollout's analysis steps, WEIGHT%%:DURATION or DURATION, comma-separated "
        "(e.g. 5%%:2m,25%%:5m,50%%:10m); default: one step over the whole window",
    )
    parser.add_argument("--output", choices=("json", "table"), default="table")
    parser.add_argument(
        "--every-look", action="store_true", help="replay the looks after the decision too"
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        type=Path,
        help="also write the deciding verdict's page, with the timeline of looks, to FILE",
    )
    parser.add_argument(
        "--bad-metric", metavar="NAME", help="RATIO metric whose canary bad events are counted"
    )
    parser.add_argument("--start", metavar="T", help="analysis start (RFC 3339 or epoch s)")
    parser.add_argument("--end", metavar="T", help="analysis end (RFC 3339 or epoch s)")
    parser.add_argument(
        "--max-window",
        default=f"{bounds.DEFAULT_MAX_WINDOW_SECONDS / 86_400:.0f}d",
        help="longest window to replay (default 7d); a longer one is bad input",
    )
    remote = parser.add_argument_group("a historic window from Prometheus")
    remote.add_argument("--prometheus", metavar="URL", help="Prometheus HTTP API base URL")
    remote.add_argument("--baseline", metavar="SEL", help='label matchers, e.g. track="stable"')
    remote.add_argument("--canary", metavar="SEL", help='label matchers, e.g. track="canary"')
    remote.add_argument("--timeout", type=float, default=10.0, help="seconds per query")
    labelled_command.add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Replay as ``args`` say, print the result, and return the exit code.

    Bad input (spec, file, flags) raises the domain errors, which ``gatekeeper``'s main
    prints with every offending field (exit 4).
    """
    if args.labelled is not None:
        _check_labelled_flags(args)
        spec = _spec(Path(args.spec), queries=False)
        interval = _duration(args.interval) if args.interval else None
        return labelled_command.run_labelled(args, spec, interval)
    for flag in ("scheduler", "workers"):
        if getattr(args, flag) is not None:
            raise InvalidArgument.single(f"--{flag}", "applies to --labelled INDEX only")
    replay = _replay(args)
    if args.html is not None:
        label = Path(args.file).name if args.file else f"{args.canary} vs {args.baseline}"
        write_page(args.html, replay, label=label, prometheus=args.prometheus)
    if args.output == "json":
        print(json.dumps(replay.to_json(), indent=2, allow_nan=False))
    else:
        print(replay_table(replay))
    return EXIT_CODES[replay.summary.decision]


def _replay(args: argparse.Namespace) -> Replay:
    remote = args.prometheus is not None
    _check_flags(args, remote=remote)
    spec = _spec(Path(args.spec), queries=remote)
    interval = _duration(args.interval) if args.interval else None
    start = _time("--start", args.start)
    end = _time("--end", args.end)
    limit = _duration(args.max_window, field="--max-window")
    steps = _steps(args.steps, interval or spec.interval_seconds)
    if not remote:
        rollout = _read(args.file)
        bounds.check_recorded(rollout, start=start, end=end, limit=limit)
        return replay_recorded(
            spec,
            rollout,
            interval_seconds=interval,
            start=start,
            end=end,
            every_look=args.every_look,
            bad_metric=_bad_metric(spec, args.bad_metric),
            steps=steps,
        )
    assert start is not None and end is not None
    bounds.check_span(start=start, end=end, limit=limit)
    source = PrometheusSource(args.prometheus, PrometheusOptions(timeout_seconds=args.timeout))
    try:
        return replay_source(
            spec,
            source=source,
            sides=engine.Sides(baseline=args.baseline, canary=args.canary),
            start=start,
            end=end,
            interval_seconds=interval,
            every_look=args.every_look,
            bad_metric=_bad_metric(spec, args.bad_metric),
            steps=steps,
        )
    finally:
        source.close()


def _read(path: str) -> RecordedRollout:
    """The recorded rollout; one that does not fit in memory is bad input (exit 4)."""
    try:
        return read_recorded(path)
    except MemoryError:
        raise InvalidArgument.single("FILE", f"{path} does not fit in memory") from None


def _check_labelled_flags(args: argparse.Namespace) -> None:
    others = {"FILE": args.file, "--prometheus": args.prometheus, "--start": args.start}
    others |= {"--end": args.end, "--bad-metric": args.bad_metric, "--steps": args.steps}
    given = [flag for flag, value in others.items() if value is not None]
    if args.every_look:
        given.append("--every-look")
    if given:
        raise InvalidArgument.single(given[0], f"{given[0]} does not apply to --labelled INDEX")


def _check_flags(args: argparse.Namespace, *, remote: bool) -> None:
    if remote and args.file is not None:
        raise InvalidArgument.single("FILE", "give a recorded FILE or --prometheus, not both")
    if not remote and args.file is None:
        raise InvalidArgument.single("FILE", "give a recorded rollout FILE, or --prometheus URL")
    if remote:
        missing = [f"--{name}" for name in _PROMETHEUS_NEEDS if getattr(args, name) is None]
        if missing:
            raise InvalidArgument.single(
                missing[0], f"--prometheus needs {', '.join(missing)} as well"
            )
    elif args.baseline is not None or args.canary is not None:
        raise InvalidArgument.single(
            "--baseline",
            "--baseline and --canary select sides in Prometheus; a recorded "
            "rollout has its side column",
        )


def _spec(path: Path, *, queries: bool) -> AnalysisSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.single("--spec", f"cannot read {path}: {exc}") from None
    return load_spec(text, field="--spec", queries=queries)


def _steps(text: str | None, interval: float) -> StepPlan | None:
    return None if text is None else parse_steps(text, interval_seconds=interval)


def _duration(text: str, *, field: str = "--interval") -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InvalidArgument.single(field, str(exc)) from None
    if seconds <= 0:
        raise InvalidArgument.single(field, "must be longer than 0s")
    return seconds


def _time(flag: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InvalidArgument.single(flag, str(exc)) from None


def _bad_metric(spec: AnalysisSpec, name: str | None) -> str | None:
    try:
        return bad_metric_of(spec, name)
    except ValueError as exc:
        raise InvalidArgument.single("--bad-metric", str(exc)) from None


# --- the table ------------------------------------------------------------------------------


def _headline(replay: Replay) -> list[str]:
    summary = replay.summary
    if summary.decided_after_seconds is not None:
        when = f"after {format_duration(summary.decided_after_seconds)}"
    else:
        when = "undecided at the end"
    lines = [
        f"{summary.decision.value} {when} (look {summary.looks} of {summary.planned_looks}, "
        f"every {format_duration(summary.interval_seconds)}): {summary.summary}"
    ]
    lines.append(f"analysis steps: {replay.steps.origin}")
    if summary.canary_bad_before_decision is not None:
        lines.append(
            f"canary bad events before the decision: {summary.canary_bad_before_decision:,.0f} "
            f"of {summary.canary_requests_before_decision or 0:,.0f} ({summary.bad_metric})"
        )
    return lines


def replay_table(replay: Replay) -> str:
    """The summary and one line per replayed look: decision, score, each metric's outcome."""
    header = ["look", "step", "elapsed", "decision", "score"]
    names = [m.name for m in replay.verdicts[0].metrics] if replay.verdicts else []
    rows = []
    for look, verdict in enumerate(replay.verdicts, start=1):
        mark = "*" if look == replay.summary.looks else ""
        cells = [
            f"{look}{mark}",
            replay.steps.label(look),
            format_duration(look * replay.summary.interval_seconds),
            verdict.decision.value,
            f"{verdict.score:.0f}",
        ]
        cells += [f"{m.outcome.value} p={m.p_value:.2g}" for m in verdict.metrics]
        rows.append(cells)
    columns = header + names
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    lines = [*_headline(replay), ""]
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("(* the controller's last look; + an extra look past the plan)")
    return "\n".join(line.rstrip() for line in lines)
