"""A rollout's analysis steps in a replay: which look belongs to which step.

A controller runs one analysis per rollout (``controller/README.md``): its looks are
numbered across the analysis steps, ``Look.planned`` is the looks of the whole plan, a
FAIL at any look rolls back, a PASS in an intermediate step only ends that step (the
rollout goes on with the same analysis) and only a PASS in the final step promotes. Looks
beyond the plan are the final step's extra looks. A recorded table has no step boundaries,
so they come from a plan given as ``--steps`` (each analysis step's weight and duration);
without one the whole window is one step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gatekeeper.errors import InvalidArgument
from gatekeeper.spec import format_duration, parse_duration

_STEP = re.compile(r"^(?:(\d+(?:\.\d+)?)%:)?(\S+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPlan:
    """The analysis steps of a replayed rollout.

    Attributes
    ----------
    ends : tuple of int
        The rollout-level index of each step's last planned look (increasing).
    weights : tuple of float or None
        Each step's canary weight in percent, when given (for display only).
    origin : str
        Where the boundaries come from, as the replay says it.
    """

    ends: tuple[int, ...]
    weights: tuple[float | None, ...]
    origin: str

    @property
    def planned(self) -> int:
        """Looks of the whole plan."""
        return self.ends[-1]

    def step_of(self, look: int) -> int:
        """The 1-based step of rollout-level look ``look`` (beyond the plan: the last)."""
        for index, end in enumerate(self.ends, start=1):
            if look <= end:
                return index
        return len(self.ends)

    def promotes(self, look: int) -> bool:
        """Whether a PASS at ``look`` promotes: it is in the final analysis step."""
        return self.step_of(look) == len(self.ends)

    def label(self, look: int) -> str:
        """``2 (25%)`` for the step of ``look``; ``+`` marks an extra look past the plan."""
        step = self.step_of(look)
        weight = self.weights[step - 1]
        text = str(step) if weight is None else f"{step} ({weight:g}%)"
        return f"{text}+" if look > self.planned else text


def whole_window(points: int) -> StepPlan:
    """The plan of a replay without one: a single step over the window's ``points`` looks."""
    return StepPlan(
        ends=(max(points, 1),),
        weights=(None,),
        origin="one step over the whole window (no --steps; the recorded data has no "
        "step boundaries)",
    )


def parse_steps(text: str, *, interval_seconds: float) -> StepPlan:
    """``5%:2m,25%:5m,50%:10m`` (weights optional) as looks of ``interval_seconds``.

    Raises
    ------
    InvalidArgument
        Naming ``--steps`` and the form allowed, for an empty item, an unreadable duration
        or one shorter than an interval.
    """
    ends: list[int] = []
    weights: list[float | None] = []
    allowed = "comma-separated analysis steps WEIGHT%:DURATION or DURATION, e.g. 5%:2m,25%:5m"
    for item in text.split(","):
        match = _STEP.match(item.strip())
        if match is None:
            raise InvalidArgument.single("--steps", f"{allowed}; got {item!r}")
        try:
            seconds = parse_duration(match.group(2))
        except ValueError:
            raise InvalidArgument.single("--steps", f"{allowed}; got {item!r}") from None
        looks = math.floor(seconds / interval_seconds + 1e-9)
        if looks < 1:
            raise InvalidArgument.single(
                "--steps",
                f"each step must last at least one interval "
                f"({format_duration(interval_seconds)}); got {item!r}",
            )
        ends.append((ends[-1] if ends else 0) + looks)
        weight = match.group(1)
        weights.append(None if weight is None else float(weight))
    return StepPlan(
        ends=tuple(ends), weights=tuple(weights), origin=f"step boundaries from --steps {text}"
    )
