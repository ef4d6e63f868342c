"""The load-adaptive ratio controller: the most accurate ratio whose predicted completions meet the SLO.

In the spirit of SuperServe's SlackFit: before each batch, look at the queue — when the oldest
request of the batch arrived, and the arrival times of everything still waiting behind it — and
take the most accurate candidate ratio for which (a) this batch finishes before the oldest
request's deadline and (b) the backlog, served afterwards at the fastest ratio, still meets its
deadlines. Hysteresis keeps it from flapping: a less accurate ratio is taken at once when slack
runs short, a more accurate one only one level at a time and only after its slack has stayed above
`upgrade_margin_ms` for `upgrade_hold_ms`.

Pure Python, deterministic (time is always passed in, never read from a clock).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option
from flexiq_trt.serve.accuracy import AccuracyTable
from flexiq_trt.serve.profile import LatencyProfile


@dataclass(frozen=True)
class ControllerConfig:
    """The latency SLO and the controller's margins."""

    slo_ms: float = option(50.0, "latency SLO per request, arrival to completion, in ms")
    ratios: tuple[float, ...] = option(
        (), "candidate ratios (default: the accuracy table's ladder inside the latency profile's range)")
    safety_ms: float = option(1.0, "margin taken off every deadline, for latency prediction error (ms)")
    upgrade_margin_ms: float = option(
        5.0, "slack (ms) a more accurate ratio must keep before the controller steps up to it")
    upgrade_hold_ms: float = option(
        250.0, "how long (ms) that slack must stay above the margin before stepping up one level")

    def __post_init__(self) -> None:
        if not self.slo_ms > 0:
            raise ConfigError(f"slo_ms must be positive, got {self.slo_ms}")
        for name in ("safety_ms", "upgrade_margin_ms", "upgrade_hold_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if any(not 0 <= r <= 1 for r in self.ratios):
            raise ConfigError(f"ratios must lie in [0, 1], got {list(self.ratios)}")


@dataclass(frozen=True)
class QueueState:
    """What the scheduler knows when a batch is about to start (times in ms, one clock)."""

    now_ms: float
    batch_arrivals: Sequence[float]  # arrival times of the requests in this batch
    backlog_arrivals: Sequence[float] = ()  # arrival times of the requests still queued behind it, oldest first
    max_batch: int = 0  # batch size the backlog will be served in (0: the profile's largest)

    @property
    def batch_size(self) -> int:
        """Requests in this batch."""
        return len(self.batch_arrivals)


@dataclass(frozen=True)
class Decision:
    """The ratio chosen for one batch and why."""

    ratio: float
    level: int  # index into the controller's candidates, 0 = most accurate
    slack_ms: float  # deadline minus predicted completion at the chosen ratio (worst request; < 0: a miss)
    feasible: bool  # False: no candidate meets every deadline, the fastest one was taken


class Policy(Protocol):
    """Anything that picks a ratio per batch (the controller, a fixed ratio, the simulation's oracle)."""

    name: str

    def choose(self, state: QueueState) -> float:
        """The ratio for the batch described by `state`."""
        ...

    def reset(self) -> None:
        """Forget all state (a new trace)."""
        ...


class FixedRatio:
    """Always the same ratio (the baselines)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = float(ratio)
        self.name = f"fixed {100 * self.ratio:g}%"

    def choose(self, state: QueueState) -> float:  # noqa: D102 - Policy
        return self.ratio

    def reset(self) -> None:  # noqa: D102 - Policy
        pass


def pareto_candidates(ratios: Sequence[float], profile: LatencyProfile,
                      accuracy: AccuracyTable) -> list[float]:
    """Candidates ordered from most to least accurate, without dominated ones.

    A ratio that is not faster (at the profile's largest batch) than a more accurate one is never
    worth running, so it is dropped; what remains gets strictly faster as accuracy falls.
    """
    lo, hi = profile.ratios[0], profile.ratios[-1]
    inside = sorted({float(r) for r in ratios if lo - 1e-9 <= r <= hi + 1e-9})
    if not inside:
        raise ConfigError(f"no candidate ratio inside the latency profile's range [{lo}, {hi}] "
                          f"(candidates {list(ratios)})")
    ranked = sorted(inside, key=lambda r: (-accuracy.at(r), profile.latency(r, profile.max_batch), r))
    kept: list[float] = []
    for r in ranked:
        if not kept or profile.latency(r, profile.max_batch) < profile.latency(kept[-1], profile.max_batch) - 1e-9:
            kept.append(r)
    return kept


class SlackController:
    """Slack-based ratio choice with hysteresis (see the module docstring)."""

    def __init__(self, profile: LatencyProfile, accuracy: AccuracyTable,
                 config: ControllerConfig | None = None, name: str = "controller") -> None:
        self.profile, self.accuracy = profile, accuracy
        self.config = config or ControllerConfig()
        self.name = name
        self.candidates = pareto_candidates(self.config.ratios or accuracy.ratios, profile, accuracy)
        self.level = 0
        self._above_since: float | None = None
        self.last: Decision | None = None

    def reset(self) -> None:
        """Start at the most accurate ratio with no hysteresis history."""
        self.level, self._above_since, self.last = 0, None, None

    def slack(self, ratio: float, state: QueueState) -> float:
        """Min over queued requests of (deadline − safety − predicted completion) if this batch runs at `ratio`.

        The batch runs now at `ratio`; the backlog follows in batches of `max_batch` at the fastest
        candidate (the best the controller could do for it afterwards).
        """
        if state.batch_size < 1:
            raise ConfigError("a batch needs at least one request")
        deadline = self.config.slo_ms - self.config.safety_ms
        finish = state.now_ms + self.profile.latency(ratio, state.batch_size)
        worst = min(state.batch_arrivals) + deadline - finish
        backlog = state.backlog_arrivals
        if len(backlog):
            size = min(state.max_batch or self.profile.max_batch, self.profile.max_batch)
            fastest = self.candidates[-1]
            for start in range(0, len(backlog), size):
                chunk = backlog[start:start + size]
                finish += self.profile.latency(fastest, len(chunk))
                worst = min(worst, chunk[0] + deadline - finish)
        return worst

    def decide(self, state: QueueState) -> Decision:
        """Choose the level for this batch and update the hysteresis state."""
        slacks: dict[int, float] = {}

        def slack_at(level: int) -> float:
            if level not in slacks:
                slacks[level] = self.slack(self.candidates[level], state)
            return slacks[level]

        feasible = next((lv for lv in range(len(self.candidates)) if slack_at(lv) >= 0), None)
        target = len(self.candidates) - 1 if feasible is None else feasible
        if target >= self.level:  # step down (or stay) at once
            self.level, self._above_since = target, None
        elif slack_at(self.level - 1) >= self.config.upgrade_margin_ms:
            if self._above_since is None:
                self._above_since = state.now_ms
            if state.now_ms - self._above_since >= self.config.upgrade_hold_ms:
                self.level -= 1
                self._above_since = None
        else:
            self._above_since = None
        self.last = Decision(self.candidates[self.level], self.level, slack_at(self.level), feasible is not None)
        return self.last

    def choose(self, state: QueueState) -> float:
        """Policy interface: the ratio of :meth:`decide`."""
        return self.decide(state).ratio


def max_sustainable_rate(profile: LatencyProfile, ratio: float) -> float:
    """Requests per second one worker serves at `ratio` with full batches (a capacity figure for docs)."""
    b = profile.max_batch
    lat = profile.latency(ratio, b)
    return math.inf if lat <= 0 else 1000.0 * b / lat
