"""The rollout's analysis plan: one sequential analysis over all analysis steps.

PURE: reads the spec and the status' :class:`~controller.model.AnalysisState`. A rollout's
looks form one analysis over cumulative data from the first analysis step's start, so
``Look.index`` counts the rollout's looks and ``Look.planned`` the looks of the whole plan
(alpha is spent once per rollout, see ``gatekeeper.stats.sequential.look_alpha``). An
intermediate analysis step ends at PASS or after its own looks; the final one (no analysis
step after it) ends only at PASS, holding its weight for up to ``maxExtraLooks`` more looks
(plus any granted by a resume or by ``onInconclusive: extend``) before ``onInconclusive``.
"""

from __future__ import annotations

from dataclasses import replace

from controller.model import Analysis, AnalysisState, CanarySpec


def planned_looks(spec: CanarySpec) -> int:
    """Looks of the whole plan: the sum of every analysis step's ``looks``."""
    return sum(step.looks for step in spec.steps if isinstance(step, Analysis))


def has_analysis(spec: CanarySpec) -> bool:
    """Whether the plan judges the canary at all (then promotion needs PASS)."""
    return any(isinstance(step, Analysis) for step in spec.steps)


def is_final(spec: CanarySpec, step_index: int) -> bool:
    """Whether ``steps[step_index]`` is the plan's last analysis step."""
    return not any(isinstance(step, Analysis) for step in spec.steps[step_index + 1 :])


def last_look(spec: CanarySpec, step_index: int, state: AnalysisState) -> int:
    """The rollout-level index of the last look the current step may take.

    An intermediate step takes its ``looks``; the final one also ``maxExtraLooks`` and
    the looks granted since (``state.granted_looks``).
    """
    step = spec.steps[step_index]
    assert isinstance(step, Analysis)
    end = state.looks_before_step + step.looks
    if is_final(spec, step_index):
        end += step.max_extra_looks + state.granted_looks
    return end


def extension(step: Analysis) -> int:
    """Looks one grant (a resume, or ``extend``) adds: ``maxExtraLooks``, at least one."""
    return max(1, step.max_extra_looks)


def open_step(state: AnalysisState, *, origin: float) -> AnalysisState:
    """The same analysis entering a new analysis step whose looks count from ``origin``."""
    return replace(
        state,
        looks_before_step=state.looks_taken,
        step_origin=origin,
        step_open=True,
        offset_seconds=0.0,
        retry_at=None,
        granted_looks=0,
        held=False,
        passed=False,  # a PASS counts for the step it was given in
    )


def step_origin(state: AnalysisState) -> float:
    """When the current step's look schedule starts (load-test shifts included)."""
    origin = state.start if state.step_origin is None else state.step_origin
    return origin + state.offset_seconds


def step_looks(state: AnalysisState) -> int:
    """Looks taken within the current step."""
    return state.looks_taken - state.looks_before_step
