"""The ``gatekeeper`` command.

Every command that judges exits 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (including
unexpected exceptions and an unreachable server), 4 bad input or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn

from controller import cli as controller_cli
from gatekeeper import demo, engine, inputs, kayenta_import, preflight, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient, Security
from gatekeeper.errors import GatekeeperError, InvalidArgument, PermanentError
from gatekeeper.inputs import InputLimits
from gatekeeper.limits import DEFAULT_MAX_METRICS
from gatekeeper.present import compare_verdicts, comparison_table, verdict_table
from gatekeeper.replay import command as replay_command
from gatekeeper.server import analysis as analysis_limits
from gatekeeper.server import app, logs
from gatekeeper.server.dispatch import DEFAULT_INLINE_MAX_POINTS
from gatekeeper.sources import prometheus, recorded
from gatekeeper.sources.base import Window
from gatekeeper.sources.prometheus import PrometheusOptions, PrometheusSource
from gatekeeper.spec import load_spec, parse_duration

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2, 3, 4
EXIT_CODES = {
    pb.DECISION_PASS: EXIT_PASS,
    pb.DECISION_FAIL: EXIT_FAIL,
    pb.DECISION_INCONCLUSIVE: EXIT_INCONCLUSIVE,
    pb.DECISION_ERROR: EXIT_ERROR,
}

log = logging.getLogger("gatekeeper.cli")


class UsageError(Exception):
    """Bad command-line usage (exit 4)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def read_request(path: Path, limits: InputLimits | None = None) -> pb.JudgeRequest:
    """Read a JudgeRequest file (protobuf JSON mapping), bounded in size and waiting time
    (:mod:`gatekeeper.inputs`); running out of memory on it is bad input too."""
    limits = limits or InputLimits()
    try:
        data = inputs.read_bounded(
            path, max_bytes=limits.max_bytes, timeout_seconds=limits.timeout_seconds
        )
        return wire.parse_judge_request(data.decode("utf-8"), json=True)
    except UnicodeDecodeError as exc:
        raise InvalidArgument.single("FILE", f"cannot read {path}: {exc}") from None
    except MemoryError:
        raise InvalidArgument.single(
            "FILE", f"{path} does not fit in memory once decoded; see --max-input-bytes"
        ) from None


def _input_limits(args: argparse.Namespace) -> InputLimits:
    if args.max_input_bytes < 1 or not args.read_timeout > 0:
        raise UsageError("--max-input-bytes and --read-timeout must be > 0")
    return InputLimits(max_bytes=args.max_input_bytes, timeout_seconds=args.read_timeout)


def judge_file(path: Path, limits: InputLimits | None = None) -> pb.Verdict:
    """Judge a JudgeRequest file (protobuf JSON mapping) in this process."""
    judged = wire.judge_input(read_request(path, limits))
    return wire.verdict_message(engine.judge(judged.metrics, judged.settings))


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _security(args: argparse.Namespace) -> Security:
    try:
        return Security.from_flags(args)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read a TLS or token file: {exc}") from None


def judge_remote(path: Path, args: argparse.Namespace) -> pb.Verdict:
    """Judge a JudgeRequest file on the server at ``args.server``."""
    request = read_request(path, _input_limits(args))
    with GatekeeperClient(args.server, timeout=args.timeout, security=_security(args)) as client:
        return client.judge(request)


def _print_verdict(verdict: pb.Verdict, output: str) -> None:
    if output == "json":
        print(wire.verdict_json(verdict))
    else:
        print(verdict_table(verdict))


def _cmd_judge(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if args.compare:
        return _compare(path, args.output, _input_limits(args))
    if args.server is None:
        verdict = judge_file(path, _input_limits(args))
    else:
        verdict = judge_remote(path, args)
    _print_verdict(verdict, args.output)
    return EXIT_CODES[verdict.decision]


def judge_both_modes(
    path: Path, limits: InputLimits | None = None
) -> tuple[pb.Verdict, pb.Verdict]:
    """The request judged in the default mode and in KAYENTA mode."""
    request = read_request(path, limits)
    verdicts = []
    for mode in (pb.JUDGE_MODE_DEFAULT, pb.JUDGE_MODE_KAYENTA):
        request.mode = mode
        judged = wire.judge_input(request)
        verdicts.append(wire.verdict_message(engine.judge(judged.metrics, judged.settings)))
    return verdicts[0], verdicts[1]


def _compare(path: Path, output: str, limits: InputLimits) -> int:
    """``judge --compare``: both modes, metric by metric; exit code of the default mode."""
    ours, theirs = judge_both_modes(path, limits)
    if output == "json":
        print(
            json.dumps(
                {
                    "default": json.loads(wire.verdict_json(ours)),
                    "kayenta": json.loads(wire.verdict_json(theirs)),
                    "differences": [asdict(d) for d in compare_verdicts(ours, theirs)],
                },
                indent=2,
            )
        )
    else:
        print(comparison_table(ours, theirs))
    return EXIT_CODES[ours.decision]


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.speed < 0:
        raise UsageError(f"--speed must be >= 0 (0: no pacing), got {args.speed:g}")
    return demo.main(demo.DemoOptions(seed=args.seed, speed=args.speed, output=args.output))


def parse_time(text: str, *, field: str) -> float:
    """Unix seconds from RFC 3339 (``2026-11-27T02:30:00Z``) or epoch seconds."""
    try:
        return recorded.parse_time(text)
    except ValueError as exc:
        raise InvalidArgument.single(field, str(exc)) from None


def _duration(text: str, *, field: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidArgument.single(field, str(exc)) from None


def _analysis_window(args: argparse.Namespace) -> tuple[float, float]:
    if args.since is not None:
        if args.start is not None or args.end is not None:
            raise UsageError("give either --since or --start and --end")
        end = time.time()
        return end - _duration(args.since, field="--since"), end
    if args.start is None or args.end is None:
        if args.preflight:
            end = time.time() if args.end is None else parse_time(args.end, field="--end")
            return end - _duration(args.lookback, field="--lookback"), end
        raise UsageError("give --since DURATION, or --start T and --end T")
    return parse_time(args.start, field="--start"), parse_time(args.end, field="--end")


def _prometheus_options(args: argparse.Namespace) -> PrometheusOptions:
    headers = {}
    for item in args.prometheus_header or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--prometheus-header must be NAME=VALUE, got {item!r}")
        headers[name.strip()] = value
    token = None
    if args.prometheus_token_file:
        try:
            token = Path(args.prometheus_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --prometheus-token-file: {exc}") from None
    try:
        return PrometheusOptions(
            timeout_seconds=args.prometheus_timeout,
            deadline_seconds=args.prometheus_deadline,
            max_answer_bytes=args.prometheus_max_bytes,
            max_decompressed_bytes=args.prometheus_max_decompressed_bytes,
            bearer_token=token,
            ca_file=args.prometheus_ca,
            insecure_skip_verify=args.prometheus_insecure,
            headers=headers,
        )
    except ValueError as exc:  # names the option: timeout_seconds is --prometheus-timeout
        raise UsageError(f"bad --prometheus-* option: {exc}") from None


def _read_text(path: str, field: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.single(field, f"cannot read {path}: {exc}") from None


def analyze_local(args: argparse.Namespace) -> pb.Verdict:
    """Fetch from ``--prometheus`` and judge in this process."""
    spec = load_spec(_read_text(args.spec, "--spec"), field="--spec")
    start, end = _analysis_window(args)
    source = PrometheusSource(args.prometheus, _prometheus_options(args))
    try:
        if args.preflight:
            verdict = preflight.run(
                spec, source=source, baseline=args.baseline, end=end, lookback_seconds=end - start
            )
        else:
            step = _duration(args.interval, field="--interval") if args.interval else None
            window = Window(start=start, end=end, step=step or spec.interval_seconds)
            sides = engine.Sides(baseline=args.baseline, canary=args.canary or "")
            verdict = engine.analyze(
                spec, data=engine.PromQLData(source), sides=sides, window=window
            )
    finally:
        source.close()
    return wire.verdict_message(verdict)


def analyze_remote(args: argparse.Namespace) -> pb.Verdict:
    """Have the server at ``--server`` fetch and judge."""
    start, end = _analysis_window(args)
    request = pb.AnalyzeRequest(
        spec=_read_text(args.spec, "--spec") if args.spec else "",
        spec_name=args.spec_name or "",
        baseline_selector=args.baseline,
        canary_selector=args.canary or "",
        preflight=args.preflight,
    )
    request.start.FromDatetime(datetime.datetime.fromtimestamp(start, datetime.UTC))
    request.end.FromDatetime(datetime.datetime.fromtimestamp(end, datetime.UTC))
    if args.interval:
        request.interval.FromTimedelta(
            datetime.timedelta(seconds=_duration(args.interval, field="--interval"))
        )
    with GatekeeperClient(args.server, timeout=args.timeout, security=_security(args)) as client:
        return client.analyze(request)


def _cmd_analyze(args: argparse.Namespace) -> int:
    if (args.server is None) == (args.prometheus is None):
        raise UsageError("give either --prometheus URL (judge here) or --server HOST:PORT")
    if args.server is None and not args.spec:
        raise UsageError("--spec FILE is required without --server")
    if not args.preflight and not args.canary:
        raise UsageError("--canary SELECTOR is required (except with --preflight)")
    verdict = analyze_local(args) if args.server is None else analyze_remote(args)
    _print_verdict(verdict, args.output)
    return EXIT_CODES[verdict.decision]


def _cmd_import_kayenta(args: argparse.Namespace) -> int:
    conversion = kayenta_import.convert_text(_read_text(args.config, "CONFIG.json"), mode=args.mode)
    for message in conversion.messages:
        print(f"note: {message}", file=sys.stderr)
    text = conversion.yaml()
    if args.output_file:
        Path(args.output_file).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return EXIT_PASS


def _server_config(args: argparse.Namespace) -> app.ServerConfig:
    return app.ServerConfig(
        host=args.host,
        port=args.port,
        grace_seconds=args.grace_seconds,
        max_message_bytes=args.max_message_bytes,
        workers=args.workers,
        inline_max_points=args.inline_max_points,
        max_metrics=args.max_metrics,
        tls_cert=_optional_path(args.tls_cert),
        tls_key=_optional_path(args.tls_key),
        tls_client_ca=_optional_path(args.tls_client_ca),
        auth_token_file=_optional_path(args.auth_token_file),
        metrics_port=args.metrics_port,
        http_port=args.http_port,
        ui_verdicts=args.ui_verdicts,
        ui_max_bytes=args.ui_max_mb * 1024 * 1024,
        prometheus_url=args.prometheus,
        prometheus=_prometheus_options(args),
        spec_dir=_optional_path(args.spec_dir),
        allow_custom_queries=args.allow_custom_queries,
        max_points=args.max_points,
        max_window_seconds=_duration(args.max_window, field="--max-window"),
        max_spec_metrics=args.max_spec_metrics,
        max_queries=args.max_queries,
    )


def _announce(line: str) -> None:
    print(line, flush=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    logs.configure(fmt=args.log_format, level=args.log_level.upper())
    asyncio.run(app.serve(_server_config(args), announce=_announce))
    return EXIT_PASS


def _add_judge_client_flags(judge: argparse.ArgumentParser) -> None:
    remote = judge.add_argument_group("remote judging (gRPC)")
    remote.add_argument("--server", metavar="HOST:PORT", help="judge on this gatekeeper server")
    remote.add_argument("--timeout", type=float, default=30.0, help="seconds, retries included")
    remote.add_argument("--tls", action="store_true", help="use TLS with the system's CAs")
    remote.add_argument("--tls-ca", metavar="PEM", help="CA that signed the server certificate")
    remote.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    remote.add_argument("--tls-key", metavar="PEM", help="client key (mutual TLS)")
    remote.add_argument("--tls-server-name", metavar="NAME", help="name to verify instead")
    remote.add_argument("--auth-token-file", metavar="FILE", help="bearer token (one line)")


def _at_least(low: int, flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(
                f"{flag} must be a whole number >= {low}, got {text!r}"
            )
        return value

    return parse


def _add_serve(commands: argparse._SubParsersAction[_Parser]) -> None:
    serve = commands.add_parser("serve", help="serve the gRPC verdict service")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve.add_argument("--port", type=int, default=app.DEFAULT_PORT, help="0: any free port")
    serve.add_argument("--grace-seconds", type=float, default=app.DEFAULT_GRACE_SECONDS)
    serve.add_argument("--max-message-bytes", type=int, default=app.DEFAULT_MAX_MESSAGE_BYTES)
    serve.add_argument("--workers", type=int, help="judge processes (default: one per CPU)")
    serve.add_argument(
        "--inline-max-points",
        type=int,
        default=DEFAULT_INLINE_MAX_POINTS,
        help="requests up to this many data points are judged without the process pool",
    )
    serve.add_argument(
        "--max-metrics",
        type=int,
        default=DEFAULT_MAX_METRICS,
        help="metrics one Judge request may carry; more is INVALID_ARGUMENT",
    )
    serve.add_argument("--tls-cert", metavar="PEM", help="server certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="server private key")
    serve.add_argument("--tls-client-ca", metavar="PEM", help="require client certs of this CA")
    serve.add_argument("--auth-token-file", metavar="FILE", help="require this bearer token")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics here")
    serve.add_argument(
        "--http-port",
        type=int,
        help="serve the HTTP adapters (Argo Rollouts, Flagger, Kayenta) and the verdict pages "
        "(/ui/) here; off by default",
    )
    serve.add_argument(
        "--ui-verdicts",
        type=_at_least(0, "--ui-verdicts"),
        default=app.DEFAULT_UI_VERDICTS,
        metavar="N",
        help="verdicts kept in memory for the pages at /ui/ on the HTTP port (0: no pages)",
    )
    serve.add_argument(
        "--ui-max-mb",
        type=_at_least(1, "--ui-max-mb"),
        default=app.DEFAULT_UI_MAX_BYTES // (1024 * 1024),
        metavar="MB",
        help="encoded size those verdicts' data may take (the process holds about 1.4x); "
        "the oldest are forgotten first",
    )
    serve.add_argument("--log-format", choices=("json", "text"), default="text")
    serve.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    analysis = serve.add_argument_group("Analyze: metric source and specs")
    analysis.add_argument("--spec-dir", metavar="DIR", help="named specs (file stem = name)")
    analysis.add_argument(
        "--allow-custom-queries",
        action="store_true",
        help="let inline specs bring their own PromQL (otherwise built-in templates only)",
    )
    analysis.add_argument("--max-points", type=int, default=analysis_limits.DEFAULT_MAX_POINTS)
    analysis.add_argument("--max-window", default="7d", help="longest window a request may ask")
    analysis.add_argument(
        "--max-spec-metrics",
        type=int,
        default=analysis_limits.DEFAULT_MAX_SPEC_METRICS,
        help="metrics one spec may have",
    )
    analysis.add_argument(
        "--max-queries",
        type=int,
        default=analysis_limits.DEFAULT_MAX_QUERIES,
        help="queries one Analyze call may send (both sides, every role)",
    )
    _add_prometheus_flags(serve)
    serve.set_defaults(run=_cmd_serve)


def _add_prometheus_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Prometheus (or Thanos, Mimir, VictoriaMetrics)")
    group.add_argument("--prometheus", metavar="URL", help="the Prometheus HTTP API")
    group.add_argument(
        "--prometheus-timeout", type=float, default=10.0, help="seconds one attempt of a query"
    )
    group.add_argument(
        "--prometheus-deadline",
        type=float,
        default=prometheus.DEFAULT_DEADLINE_SECONDS,
        help="seconds for all queries and retries of one call (a caller's deadline may cut it)",
    )
    group.add_argument(
        "--prometheus-max-bytes",
        type=int,
        default=prometheus.DEFAULT_MAX_ANSWER_BYTES,
        help="largest answer received",
    )
    group.add_argument(
        "--prometheus-max-decompressed-bytes",
        type=int,
        default=prometheus.DEFAULT_MAX_DECOMPRESSED_BYTES,
        help="largest answer after gzip/deflate",
    )
    group.add_argument("--prometheus-token-file", metavar="FILE", help="bearer token")
    group.add_argument("--prometheus-ca", metavar="PEM", help="CA of the server certificate")
    group.add_argument("--prometheus-insecure", action="store_true", help="skip TLS checks")
    group.add_argument(
        "--prometheus-header",
        action="append",
        metavar="NAME=VALUE",
        help="extra header, e.g. X-Scope-OrgID=tenant (repeatable)",
    )


def _add_analyze(commands: argparse._SubParsersAction[_Parser]) -> None:
    analyze = commands.add_parser(
        "analyze", help="fetch baseline and canary from Prometheus and judge them"
    )
    analyze.add_argument("--spec", metavar="FILE", help="analysis spec (YAML or JSON)")
    analyze.add_argument("--spec-name", help="a spec the server was started with (--server)")
    analyze.add_argument("--baseline", required=True, metavar="SELECTOR", help='e.g. version="v1"')
    analyze.add_argument("--canary", metavar="SELECTOR", help='e.g. version="v2"')
    analyze.add_argument("--since", metavar="DURATION", help="window ending now, e.g. 30m")
    analyze.add_argument("--start", metavar="T", help="RFC 3339 or epoch seconds")
    analyze.add_argument("--end", metavar="T", help="RFC 3339 or epoch seconds")
    analyze.add_argument("--interval", metavar="DURATION", help="default: the spec's interval")
    analyze.add_argument(
        "--preflight", action="store_true", help="check the baseline has data over --lookback"
    )
    analyze.add_argument("--lookback", default="24h", help="preflight lookback (default 24h)")
    analyze.add_argument("--output", choices=("json", "table"), default="table")
    _add_prometheus_flags(analyze)
    _add_judge_client_flags(analyze)
    analyze.set_defaults(run=_cmd_analyze)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="gatekeeper", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="log tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    judge = commands.add_parser("judge", help="judge a JudgeRequest file (protobuf JSON mapping)")
    judge.add_argument("file", metavar="FILE")
    judge.add_argument("--output", choices=("json", "table"), default="table")
    judge.add_argument(
        "--compare",
        action="store_true",
        help="judge in the default and in KAYENTA mode and show where they differ",
    )
    judge.add_argument(
        "--max-input-bytes",
        type=int,
        default=inputs.DEFAULT_MAX_INPUT_BYTES,
        help="refuse a FILE larger than this (exit 4)",
    )
    judge.add_argument(
        "--read-timeout",
        type=float,
        default=inputs.DEFAULT_READ_TIMEOUT_SECONDS,
        help="seconds to wait for data from a FIFO or pipe (exit 4 after)",
    )
    _add_judge_client_flags(judge)
    judge.set_defaults(run=_cmd_judge)
    _add_serve(commands)
    _add_analyze(commands)
    replay_command.register(commands)
    controller_cli.register(commands)
    kayenta = commands.add_parser(
        "import-kayenta", help="convert a Kayenta canary config into an analysis spec"
    )
    kayenta.add_argument("config", metavar="CONFIG.json")
    kayenta.add_argument(
        "--mode",
        choices=kayenta_import.MODES,
        default="KAYENTA",
        help="KAYENTA: Kayenta's own judgement (default); DEFAULT: the two-boundary rule, "
        "allowed effect sizes as tolerances",
    )
    kayenta.add_argument("-o", "--output-file", metavar="FILE", help="write the spec here")
    kayenta.set_defaults(run=_cmd_import_kayenta)
    demo_parser = commands.add_parser(
        "demo", help="two simulated canary rollouts: one promoted, one rolled back"
    )
    demo_parser.add_argument("--seed", type=int, default=7, help="the simulation's seed")
    demo_parser.add_argument(
        "--speed", type=float, default=30.0, help="simulated seconds per second (0: no pacing)"
    )
    demo_parser.add_argument("--output", choices=("json", "table"), default="table")
    demo_parser.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        code: int = args.run(args)
    except UsageError as exc:
        print(f"gatekeeper: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InvalidArgument as exc:
        print("gatekeeper: bad input:", file=sys.stderr)
        for violation in exc.violations:
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PermanentError as exc:
        print(f"gatekeeper: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except GatekeeperError as exc:
        print(f"gatekeeper: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        if args.debug:
            log.error("unexpected error", exc_info=True)
        print(f"gatekeeper: internal error: {type(exc).__name__}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
