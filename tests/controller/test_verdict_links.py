"""Promotion and rollback notifications link to the deciding verdict's page.

A real gatekeeper (gRPC and HTTP on port 0, live simulated traffic) keeps its verdicts and
serves their pages; the controller runs against the emulator with ``ui_url`` and a real
webhook receiver. The linked page is fetched and must be the
deciding verdict's.
"""

from __future__ import annotations

import html
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from controller.cli import _ui_url
from controller.clock import ManualClock
from controller.kube import Kube
from controller.model import Phase
from controller.notify import WebhookNotifier
from controller.routers.memory import MemoryRouters
from gatekeeper.client import GatekeeperClient
from gatekeeper.live import LiveSimulation
from gatekeeper.server import app
from tests.controller.conftest import NAMESPACE, DeploymentController
from tests.controller.helpers import Hook, Rig
from tests.controller.test_end_to_end import (
    ANALYSIS,
    BROKEN,
    BROKEN_IMAGE,
    BUSY,
    HEALTHY_IMAGE,
    drive,
    start_rollout,
)


class PagedGatekeeper:
    """A real gatekeeper serving its verdicts' pages on its HTTP port."""

    def __init__(self, *, clock: ManualClock, memory: MemoryRouters) -> None:
        router = memory.get(NAMESPACE, "podinfo")
        self.source = LiveSimulation(
            base=BUSY, weight=lambda: router.canary_weight() / 100.0, clock=clock.now
        )
        config = app.ServerConfig(port=0, http_port=0, workers=1)
        self.server = app.ServerThread(config, data=self.source)
        self.client = GatekeeperClient(self.server.target, timeout=30.0)
        self.ui_url = f"http://127.0.0.1:{self.server.running.http_port}/ui"

    def stop(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def memory() -> MemoryRouters:
    return MemoryRouters()


@pytest.fixture
def paged(clock: ManualClock, memory: MemoryRouters) -> Iterator[PagedGatekeeper]:
    gatekeeper = PagedGatekeeper(clock=clock, memory=memory)
    yield gatekeeper
    gatekeeper.stop()


def _rig(  # noqa: PLR0917
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    memory: MemoryRouters,
    paged: PagedGatekeeper,
    hook: Hook,
) -> Rig:
    rig = Rig(kube=kube, deployments=deployments, clock=clock, memory=memory, analyzer=paged.client)
    rig.reconciler.notifier = WebhookNotifier(hook.url)
    rig.reconciler.ui_url = paged.ui_url
    return rig


@pytest.mark.parametrize(
    ("image", "phase", "decision", "word"),
    [
        (HEALTHY_IMAGE, Phase.SUCCEEDED, "PASS", "Promoted"),
        (BROKEN_IMAGE, Phase.FAILED, "FAIL", "Rolled back"),
    ],
)
def test_the_notification_links_to_the_page_of_the_deciding_verdict(  # noqa: PLR0917
    kube: Kube,
    deployments: DeploymentController,
    clock: ManualClock,
    memory: MemoryRouters,
    paged: PagedGatekeeper,
    hook: Hook,
    image: str,
    phase: Phase,
    decision: str,
    word: str,
) -> None:
    rig = _rig(kube, deployments, clock, memory, paged, hook)
    start_rollout(rig, image, steps=[{"setWeight": 10}, {"analysis": ANALYSIS}])
    if phase is Phase.FAILED:
        paged.source.set_behaviour(BROKEN)
    status = drive(rig, until=(Phase.SUCCEEDED, Phase.FAILED))
    assert status.phase is phase, status.message
    (note,) = [m for m in hook.received if m["text"].startswith(word)]
    link: Any = note["fields"]["verdict"]
    last = status.verdicts[-1]
    suffix = f"/{NAMESPACE}/podinfo/{status.canary_hash}/step-{last.step_index}/look-{last.look}"
    assert link == f"{paged.ui_url}/verdicts{suffix}"
    assert link in note["text"]
    with urllib.request.urlopen(link, timeout=30) as answer:
        page = answer.read().decode()
    assert f'<span class="d {decision}">{decision}</span>' in page
    assert last.summary in html.unescape(page)


def test_a_ui_url_must_be_http() -> None:
    assert _ui_url("") == ""
    assert _ui_url("https://gatekeeper.example/ui") == "https://gatekeeper.example/ui"
    with pytest.raises(Exception, match="--gatekeeper-ui-url must be an http"):
        _ui_url("gatekeeper.example/ui")
