"""``gatekeeper replay --html FILE``: the verdict page of a replayed rollout, in one file.

The page is the one the server shows (:mod:`gatekeeper.ui.pages`) for the deciding look
(the controller's last), with the timeline of every replayed look and the decision point
marked; it holds no script and fetches nothing, so CI jobs and notebooks keep it as an
artifact.
"""

from __future__ import annotations

from pathlib import Path

from gatekeeper import wire
from gatekeeper.errors import InvalidArgument
from gatekeeper.replay.core import Replay
from gatekeeper.ui import pages


def replay_page(replay: Replay, *, label: str, prometheus: str | None = None) -> str:
    """The HTML page of ``replay``'s deciding look, with its timeline."""
    summary = replay.summary
    looks = tuple(
        (index, wire.verdict_message(verdict))
        for index, verdict in enumerate(replay.verdicts, start=1)
    )
    deciding = looks[summary.looks - 1][1]
    return pages.verdict_page(
        pages.Page(
            ident=f"look {summary.looks} of {summary.planned_looks}",
            call="replay",
            at=summary.start + summary.looks * summary.interval_seconds,
            label=label,
            verdict=deciding,
            metrics=replay.data,
            interval_seconds=summary.interval_seconds,
            start=summary.start,
            looks=looks,
            decided=summary.looks,
            prometheus=prometheus,
        )
    )


def write_page(path: Path, replay: Replay, *, label: str, prometheus: str | None = None) -> None:
    """Write :func:`replay_page` to ``path``; an unwritable path is bad input (``--html``)."""
    text = replay_page(replay, label=label, prometheus=prometheus)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument.single("--html", f"cannot write {path}: {exc}") from None
