"""Arrival traces for the serving simulation, regenerated exactly from a seed and a few rates.

Every trace is a non-homogeneous Poisson process (arrivals drawn at the peak rate and thinned with
probability rate(t)/peak, NumPy's PCG64 from ``seed``) whose rate function is one of:

- ``bursty``: ``base_rate`` with bursts at ``burst_rate``; burst starts are a Poisson process with
  mean gap ``burst_every_s`` and each burst lasts an exponential time of mean ``burst_len_s``.
- ``diurnal``: a day compressed into the trace, ``low_rate + (peak_rate − low_rate)·(1 − cos 2πt/T)/2``.
- ``spike``: ``base_rate`` with one step to ``spike_rate`` from ``spike_at_s`` for ``spike_len_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

TRACE_KINDS = ("bursty", "diurnal", "spike")


@dataclass(frozen=True)
class TraceConfig:
    """Arrival-trace parameters (rates in requests per second, times in seconds)."""

    duration_s: float = option(60.0, "trace length in seconds")
    seed: int = option(0, "random seed (same seed and parameters: same trace)")
    base_rate: float = option(900.0, "request rate outside bursts/spikes (req/s)")
    burst_rate: float = option(1600.0, "request rate inside a burst (bursty trace)")
    burst_every_s: float = option(8.0, "mean time between burst starts (bursty trace)")
    burst_len_s: float = option(1.5, "mean burst length (bursty trace)")
    low_rate: float = option(500.0, "lowest rate of the diurnal ramp")
    peak_rate: float = option(1650.0, "highest rate of the diurnal ramp")
    spike_rate: float = option(1750.0, "rate during the spike (spike trace)")
    spike_at_s: float = option(25.0, "spike start (spike trace)")
    spike_len_s: float = option(6.0, "spike length (spike trace)")

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ConfigError(f"duration_s must be positive, got {self.duration_s}")
        for name in ("base_rate", "burst_rate", "low_rate", "peak_rate", "spike_rate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("burst_every_s", "burst_len_s", "spike_len_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class Trace:
    """Sorted arrival times (ms) and the rate function they were drawn from."""

    kind: str
    config: TraceConfig
    arrivals_ms: np.ndarray
    rate: Callable[[np.ndarray], np.ndarray]  # seconds -> req/s
    bursts: tuple[tuple[float, float], ...] = ()  # (start_s, end_s) of high-rate periods


def _bursts(cfg: TraceConfig, rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
    out, t = [], float(rng.exponential(cfg.burst_every_s))
    while t < cfg.duration_s:
        length = float(rng.exponential(cfg.burst_len_s))
        out.append((t, min(t + length, cfg.duration_s)))
        t += length + float(rng.exponential(cfg.burst_every_s))
    return tuple(out)


def generate_trace(kind: str, config: TraceConfig | None = None) -> Trace:
    """Draw one trace of `kind` (see the module docstring for the rate functions)."""
    cfg = config or TraceConfig()
    if kind not in TRACE_KINDS:
        raise ConfigError(f"unknown trace kind {kind!r} (known: {', '.join(TRACE_KINDS)})")
    # One generator per (seed, kind), so adding a kind never changes another kind's trace.
    rng = np.random.default_rng([cfg.seed, TRACE_KINDS.index(kind)])
    bursts: tuple[tuple[float, float], ...] = ()
    if kind == "bursty":
        bursts = _bursts(cfg, rng)
        starts, ends = np.array([b[0] for b in bursts]), np.array([b[1] for b in bursts])

        def rate(t: np.ndarray) -> np.ndarray:
            t = np.asarray(t, float)
            inside = np.zeros(t.shape, bool)
            if len(starts):
                k = np.searchsorted(starts, t, side="right") - 1
                inside = (k >= 0) & (t < ends[np.clip(k, 0, None)])
            return np.where(inside, cfg.burst_rate, cfg.base_rate)

        peak = max(cfg.base_rate, cfg.burst_rate)
    elif kind == "diurnal":
        def rate(t: np.ndarray) -> np.ndarray:
            phase = (1 - np.cos(2 * np.pi * np.asarray(t, float) / cfg.duration_s)) / 2
            return cfg.low_rate + (cfg.peak_rate - cfg.low_rate) * phase

        peak = max(cfg.low_rate, cfg.peak_rate)
    else:
        bursts = ((cfg.spike_at_s, min(cfg.spike_at_s + cfg.spike_len_s, cfg.duration_s)),)

        def rate(t: np.ndarray) -> np.ndarray:
            t = np.asarray(t, float)
            return np.where((t >= bursts[0][0]) & (t < bursts[0][1]), cfg.spike_rate, cfg.base_rate)

        peak = max(cfg.base_rate, cfg.spike_rate)
    if peak <= 0:
        return Trace(kind, cfg, np.zeros(0), rate, bursts)
    n = int(rng.poisson(peak * cfg.duration_s))
    t = np.sort(rng.uniform(0, cfg.duration_s, n))
    keep = rng.uniform(0, 1, n) < rate(t) / peak
    return Trace(kind, cfg, t[keep] * 1000.0, rate, bursts)


def scaled(config: TraceConfig, factor: float) -> TraceConfig:
    """The same trace shape at `factor` times every rate (for load sweeps)."""
    return replace(config, **{k: getattr(config, k) * factor for k in
                              ("base_rate", "burst_rate", "low_rate", "peak_rate", "spike_rate")})
