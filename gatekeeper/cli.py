"""The ``gatekeeper`` command.

Every command that judges exits 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (including
unexpected exceptions and an unreachable server), 4 bad input or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.client import GatekeeperClient, Security
from gatekeeper.errors import GatekeeperError, InvalidArgument, PermanentError
from gatekeeper.present import decision_name, verdict_table
from gatekeeper.server import app, logs
from gatekeeper.server.dispatch import DEFAULT_INLINE_MAX_POINTS

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


def read_request(path: Path) -> pb.JudgeRequest:
    """Read a JudgeRequest file (protobuf JSON mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.single("FILE", f"cannot read {path}: {exc}") from None
    return wire.parse_judge_request(text, json=True)


def judge_file(path: Path) -> pb.Verdict:
    """Judge a JudgeRequest file (protobuf JSON mapping) in this process."""
    judged = wire.judge_input(read_request(path))
    return wire.verdict_message(engine.judge(judged.metrics, judged.settings))


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _security(args: argparse.Namespace) -> Security:
    try:
        return Security.from_files(
            tls=args.tls,
            ca=_optional_path(args.tls_ca),
            cert=_optional_path(args.tls_cert),
            key=_optional_path(args.tls_key),
            server_name=args.tls_server_name,
            token_file=_optional_path(args.auth_token_file),
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read a TLS or token file: {exc}") from None


def judge_remote(path: Path, args: argparse.Namespace) -> pb.Verdict:
    """Judge a JudgeRequest file on the server at ``args.server``."""
    request = read_request(path)
    with GatekeeperClient(args.server, timeout=args.timeout, security=_security(args)) as client:
        return client.judge(request)


def _print_verdict(verdict: pb.Verdict, output: str) -> None:
    if output == "json":
        print(wire.verdict_json(verdict))
    else:
        print(verdict_table(verdict))


def _cmd_judge(args: argparse.Namespace) -> int:
    path = Path(args.file)
    verdict = judge_file(path) if args.server is None else judge_remote(path, args)
    _print_verdict(verdict, args.output)
    return EXIT_CODES[verdict.decision]


def _cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.examples)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise UsageError(f"no example requests (*.json) in {folder}")
    for path in files:
        verdict = judge_file(path)
        print(f"== {path.name}: {decision_name(verdict.decision)}")
        print(verdict_table(verdict))
        print()
    return EXIT_PASS


def _server_config(args: argparse.Namespace) -> app.ServerConfig:
    return app.ServerConfig(
        host=args.host,
        port=args.port,
        grace_seconds=args.grace_seconds,
        max_message_bytes=args.max_message_bytes,
        workers=args.workers,
        inline_max_points=args.inline_max_points,
        tls_cert=_optional_path(args.tls_cert),
        tls_key=_optional_path(args.tls_key),
        tls_client_ca=_optional_path(args.tls_client_ca),
        auth_token_file=_optional_path(args.auth_token_file),
        metrics_port=args.metrics_port,
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
    serve.add_argument("--tls-cert", metavar="PEM", help="server certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="server private key")
    serve.add_argument("--tls-client-ca", metavar="PEM", help="require client certs of this CA")
    serve.add_argument("--auth-token-file", metavar="FILE", help="require this bearer token")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics here")
    serve.add_argument("--log-format", choices=("json", "text"), default="text")
    serve.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    serve.set_defaults(run=_cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="gatekeeper", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="log tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    judge = commands.add_parser("judge", help="judge a JudgeRequest file (protobuf JSON mapping)")
    judge.add_argument("file", metavar="FILE")
    judge.add_argument("--output", choices=("json", "table"), default="table")
    _add_judge_client_flags(judge)
    judge.set_defaults(run=_cmd_judge)
    _add_serve(commands)
    demo = commands.add_parser("demo", help="judge the shipped example requests")
    demo.add_argument("--examples", default="examples", help="folder of example requests")
    demo.set_defaults(run=_cmd_demo)
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
