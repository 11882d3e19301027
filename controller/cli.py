"""``gatekeeper controller run | status | promote | abort | resume``.

``run`` starts the controller. The others act on one Canary: ``status`` prints where it
is; ``resume`` passes a manual gate (after an inconclusive pause: looks on),
``promote`` skips to full promotion, ``abort`` rolls back. Interventions are requests in
the annotation ``gatekeeper.dev/request: VERB/ID``; the controller carries each out once
and records its id in ``status.handledRequest``.

Exit codes as the other commands: 0 done, 3 error (the API server unreachable or
failing), 4 bad usage or no such Canary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from controller.clock import SystemClock
from controller.kube import Kube, load_api_client
from controller.leader import LeaderElector, LeaseConfig
from controller.main import DEFAULT_RESYNC_SECONDS, Controller
from controller.model import REQUEST_ANNOTATION, Phase, status_from_dict
from controller.notify import WebhookNotifier
from controller.reconcile import Reconciler
from controller.resources import CANARIES, KubeError
from gatekeeper.client import GatekeeperClient, Security

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 3, 4

log = logging.getLogger("controller.cli")


def _kube(args: argparse.Namespace) -> Kube:
    api = load_api_client(kubeconfig=args.kubeconfig, context=args.context, host=args.api_server)
    return Kube(api)


def _ui_url(value: str) -> str:
    """``--gatekeeper-ui-url``: an http(s) URL, or empty for none."""
    if value and urllib.parse.urlsplit(value).scheme not in ("http", "https"):
        raise argparse.ArgumentTypeError(
            f"--gatekeeper-ui-url must be an http(s) URL such as https://gatekeeper.example/ui, "
            f"got {value!r}"
        )
    return value


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _security(args: argparse.Namespace) -> Security:
    return Security.from_flags(args)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the controller until SIGTERM or SIGINT."""
    logging.getLogger("controller").setLevel(logging.INFO)
    kube = _kube(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with GatekeeperClient(
        args.gatekeeper, timeout=args.analyze_timeout, security=_security(args)
    ) as client:
        clock = SystemClock()
        identity = args.identity or os.environ.get("POD_NAME") or socket.gethostname()
        reconciler = Reconciler(
            kube=kube,
            analyzer=client,
            clock=clock,
            analyze_timeout=args.analyze_timeout,
            notifier=WebhookNotifier(args.notify_webhook) if args.notify_webhook else None,
            identity=identity,
            ui_url=args.gatekeeper_ui_url or None,
        )
        elector = None
        if args.leader_elect:
            config = LeaseConfig(
                namespace=args.lease_namespace
                or os.environ.get("POD_NAMESPACE")
                or "canary-gatekeeper",
                name=args.lease_name,
            )
            elector = LeaderElector(kube=kube, config=config, identity=identity, clock=clock)
        controller = Controller(
            kube=kube,
            reconciler=reconciler,
            clock=clock,
            namespace=args.namespace or None,
            resync_seconds=args.resync_seconds,
            elector=elector,
        )
        controller.run(stop)
    return EXIT_OK


def _get(args: argparse.Namespace) -> tuple[Kube, dict[str, Any]] | int:
    kube = _kube(args)
    try:
        canary = kube.get(CANARIES, namespace=args.namespace, name=args.name)
    except KubeError as exc:
        print(f"gatekeeper controller: error: {exc}")
        return EXIT_ERROR
    if canary is None:
        print(f"gatekeeper controller: no Canary {args.namespace}/{args.name}")
        return EXIT_BAD_INPUT
    return kube, canary


def status_lines(canary: dict[str, Any]) -> list[str]:
    """A Canary's status as ``key: value`` lines."""
    status = status_from_dict(canary.get("status"))
    raw = canary.get("status") or {}
    steps = len((canary.get("spec") or {}).get("steps") or [])
    meta = canary.get("metadata", {})
    lines = [
        f"canary:        {meta.get('namespace', 'default')}/{meta.get('name')}",
        f"phase:         {status.phase.value}",
        f"step:          {status.step_index} of {steps}",
        f"weight:        {status.weight}%",
        f"stable:        {status.stable_hash or '-'}",
        f"canary:        {status.canary_hash or '-'}",
        f"last decision: {status.last_decision or '-'}",
    ]
    if status.last_summary:
        lines.append(f"summary:       {status.last_summary}")
    if status.message:
        lines.append(f"message:       {status.message}")
    if raw.get("specError"):
        lines.append(f"spec error:    {raw['specError']}")
    return lines


def cmd_status(args: argparse.Namespace) -> int:
    """Print a Canary's status (``--output json``: the status object)."""
    found = _get(args)
    if isinstance(found, int):
        return found
    _, canary = found
    if args.output == "json":
        print(json.dumps(canary.get("status") or {}, indent=2, sort_keys=True))
    else:
        print("\n".join(status_lines(canary)))
    return EXIT_OK


_ALLOWED = {
    "resume": (Phase.PAUSED,),
    "promote": (Phase.PROGRESSING, Phase.PAUSED),
    "abort": (Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING),
}


def cmd_request(args: argparse.Namespace) -> int:
    """Ask the controller to resume, promote or abort a rollout."""
    found = _get(args)
    if isinstance(found, int):
        return found
    kube, canary = found
    phase = status_from_dict(canary.get("status")).phase
    if phase not in _ALLOWED[args.verb] and not args.force:
        allowed = ", ".join(p.value for p in _ALLOWED[args.verb])
        print(
            f"gatekeeper controller: {args.verb} needs phase {allowed}; "
            f"{args.namespace}/{args.name} is {phase.value} (--force sends it anyway)"
        )
        return EXIT_BAD_INPUT
    request = f"{args.verb}/{uuid.uuid4().hex[:12]}"
    try:
        kube.patch(
            CANARIES,
            namespace=args.namespace,
            name=args.name,
            patch={"metadata": {"annotations": {REQUEST_ANNOTATION: request}}},
        )
    except KubeError as exc:
        print(f"gatekeeper controller: error: {exc}")
        return EXIT_ERROR
    print(f"requested {args.verb} of {args.namespace}/{args.name} ({request})")
    return EXIT_OK


def _add_api_flags(parser: argparse.ArgumentParser) -> None:
    api = parser.add_argument_group("Kubernetes API")
    api.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster or ~/.kube)")
    api.add_argument("--context", help="kubeconfig context")
    api.add_argument("--api-server", metavar="URL", help="API server URL without credentials")


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="run the controller")
    run.add_argument("--namespace", default="", help="only this namespace (default: all)")
    run.add_argument(
        "--gatekeeper", default="gatekeeper:50051", metavar="HOST:PORT", help="verdict service"
    )
    run.add_argument("--analyze-timeout", type=float, default=30.0, help="seconds per Analyze")
    run.add_argument("--resync-seconds", type=float, default=DEFAULT_RESYNC_SECONDS)
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold a coordination.k8s.io Lease; only its holder acts (default: on)",
    )
    run.add_argument("--lease-name", default="canary-gatekeeper-controller")
    run.add_argument(
        "--lease-namespace", default="", help="default: $POD_NAMESPACE or canary-gatekeeper"
    )
    run.add_argument("--identity", default="", help="this replica (default: $POD_NAME)")
    run.add_argument(
        "--notify-webhook",
        default=os.environ.get("GATEKEEPER_NOTIFY_WEBHOOK", ""),
        metavar="URL",
        help="Slack-compatible webhook for promotions and rollbacks "
        "(default: $GATEKEEPER_NOTIFY_WEBHOOK)",
    )
    run.add_argument(
        "--gatekeeper-ui-url",
        type=_ui_url,
        default=os.environ.get("GATEKEEPER_UI_URL", ""),
        metavar="URL",
        help="the gatekeeper's verdict pages, e.g. https://gatekeeper.example/ui: "
        "notifications link to the deciding verdict (default: $GATEKEEPER_UI_URL)",
    )
    grpc = run.add_argument_group("gatekeeper connection")
    grpc.add_argument("--tls", action="store_true", help="use TLS with the system's CAs")
    grpc.add_argument("--tls-ca", metavar="PEM", help="CA that signed the server certificate")
    grpc.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    grpc.add_argument("--tls-key", metavar="PEM", help="client key (mutual TLS)")
    grpc.add_argument("--tls-server-name", metavar="NAME", help="name to verify instead")
    grpc.add_argument("--auth-token-file", metavar="FILE", help="bearer token (one line)")
    _add_api_flags(run)
    run.set_defaults(run=cmd_run)


def register(subparsers: Any) -> None:
    """Add ``controller run | status | promote | abort | resume`` to a CLI's subcommands.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``add_subparsers()`` of the ``gatekeeper`` command.
    """
    controller = subparsers.add_parser("controller", help="the Kubernetes canary controller")
    commands = controller.add_subparsers(dest="controller_command", required=True)
    _add_run(commands)
    status = commands.add_parser("status", help="print a Canary's status")
    status.add_argument("--output", choices=("table", "json"), default="table")
    status.set_defaults(run=cmd_status)
    helps = {
        "resume": "pass a manual gate (or look on after an inconclusive pause)",
        "promote": "skip the remaining steps: promote now",
        "abort": "roll back now",
    }
    parsers = [status]
    for verb, text in helps.items():
        parser = commands.add_parser(verb, help=text)
        parser.add_argument("--force", action="store_true", help="send it whatever the phase")
        parser.set_defaults(run=cmd_request, verb=verb)
        parsers.append(parser)
    for parser in parsers:
        parser.add_argument("name", metavar="NAME", help="the Canary")
        parser.add_argument("-n", "--namespace", default="default")
        _add_api_flags(parser)
