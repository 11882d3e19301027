"""An in-process router for tests and the demo: weights and header routes kept in memory.

Its read-back can lag (``confirm=False``) so tests can show that analysis waits for the
router to confirm a weight.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from controller.model import HeaderMatch, Weights
from controller.routers import check_weights


class MemoryRouter:
    """Weights and header route in memory, with their history.

    Parameters
    ----------
    confirm : bool
        Whether read-back shows a new weight at once; otherwise only after
        :meth:`confirm_weights`.
    """

    def __init__(self, *, confirm: bool = True) -> None:
        self._lock = threading.Lock()
        self._auto = confirm
        self.weights = Weights()
        self._effective: Weights | None = None
        self.header_route: tuple[HeaderMatch, ...] = ()
        self.history: list[Weights] = []
        self.finalized = False

    def set_weights(self, weights: Weights) -> None:
        """Set the weights (recorded in :attr:`history` when they change)."""
        check_weights(weights)
        with self._lock:
            if weights != self.weights or not self.history:
                self.history.append(weights)
            self.weights = weights
            if self._auto:
                self._effective = weights

    def set_header_route(self, match: Sequence[HeaderMatch]) -> None:
        """Set (or with an empty match remove) the header route."""
        with self._lock:
            self.header_route = tuple(match)

    def read_weights(self) -> Weights | None:
        """The confirmed weights."""
        with self._lock:
            return self._effective

    def confirm_weights(self) -> None:
        """Let read-back show the weights set last."""
        with self._lock:
            self._effective = self.weights

    def finalize(self) -> None:
        """All traffic to the target, no header route."""
        self.set_weights(Weights(canary=100))
        self.set_header_route(())
        self.finalized = True

    def canary_weight(self) -> float:
        """The canary's share in percent (for simulated traffic)."""
        with self._lock:
            return float(self.weights.canary)


class MemoryRouters:
    """The in-memory routers of a controller, one per Canary (namespace, name)."""

    def __init__(self, *, confirm: bool = True) -> None:
        self._lock = threading.Lock()
        self._confirm = confirm
        self._routers: dict[tuple[str, str], MemoryRouter] = {}

    def get(self, namespace: str, name: str) -> MemoryRouter:
        """The router of a Canary, created on first use."""
        with self._lock:
            key = (namespace, name)
            if key not in self._routers:
                self._routers[key] = MemoryRouter(confirm=self._confirm)
            return self._routers[key]
