"""The ``gatekeeper`` command.

Every command that judges exits 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 ERROR (including
unexpected exceptions and an unreachable server), 4 bad input or usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from gatekeeper import engine, wire
from gatekeeper.api.v1 import gatekeeper_pb2 as pb
from gatekeeper.errors import GatekeeperError, InvalidArgument, PermanentError
from gatekeeper.present import decision_name, verdict_table

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


def judge_file(path: Path) -> pb.Verdict:
    """Judge a JudgeRequest file (protobuf JSON mapping) in this process."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument.single("FILE", f"cannot read {path}: {exc}") from None
    request = wire.parse_judge_request(text, json=True)
    judged = wire.judge_input(request)
    return wire.verdict_message(engine.judge(judged.metrics, judged.settings))


def _print_verdict(verdict: pb.Verdict, output: str) -> None:
    if output == "json":
        print(wire.verdict_json(verdict))
    else:
        print(verdict_table(verdict))


def _cmd_judge(args: argparse.Namespace) -> int:
    verdict = judge_file(Path(args.file))
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="gatekeeper", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="log tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    judge = commands.add_parser("judge", help="judge a JudgeRequest file (protobuf JSON mapping)")
    judge.add_argument("file", metavar="FILE")
    judge.add_argument("--output", choices=("json", "table"), default="table")
    judge.set_defaults(run=_cmd_judge)
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
