"""Discrete-event simulation of one GPU worker with dynamic batching, under a ratio policy.

The worker model follows Triton's dynamic batcher: when the worker is free and requests wait, a
batch starts as soon as `max_batch` requests are queued or the oldest has waited
`max_queue_delay_ms`, whichever comes first, and takes up to `max_batch` of the oldest requests.
The batch runs for the latency profile's figure at the policy's ratio and batch size; the worker
serves nothing else meanwhile. No request is dropped: a late request still counts, as a miss.

Policies: fixed ratios, :class:`~flexiq_trt.serve.controller.SlackController`, and
:class:`LookaheadOracle` (knows every future arrival; see its docstring for what it optimises).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option
from flexiq_trt.serve.accuracy import AccuracyTable
from flexiq_trt.serve.controller import ControllerConfig, FixedRatio, Policy, QueueState, SlackController
from flexiq_trt.serve.profile import LatencyProfile
from flexiq_trt.serve.traces import Trace


@dataclass(frozen=True)
class SimConfig:
    """The worker's batching and the reporting window."""

    max_batch: int = option(16, "largest batch the dynamic batcher forms")
    max_queue_delay_ms: float = option(
        2.0, "longest the oldest request waits for a fuller batch while the worker is free (ms)")
    window_s: float = option(1.0, "window of the over-time plots (s)")
    oracle_horizon_ms: float = option(
        200.0, "how far ahead the oracle rolls the future out for each decision (ms)")

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_queue_delay_ms < 0 or not self.window_s > 0 or not self.oracle_horizon_ms > 0:
            raise ConfigError("max_queue_delay_ms must be >= 0, window_s and oracle_horizon_ms positive")


@dataclass
class SimResult:
    """Per request: arrival, completion and ratio; per batch: start, size and ratio."""

    policy: str
    trace: str
    arrivals_ms: np.ndarray
    finish_ms: np.ndarray
    ratio: np.ndarray
    batch_start_ms: np.ndarray
    batch_size: np.ndarray
    batch_ratio: np.ndarray

    @property
    def latency_ms(self) -> np.ndarray:
        """Arrival to completion."""
        return self.finish_ms - self.arrivals_ms


def _batch_bounds(arr: list[float], i: int, t_free: float, sim: SimConfig) -> tuple[float, int, int]:
    """Start time, end index of the batch and end index of the backlog, for the batch whose oldest is `i`.

    `arr` is a sorted Python list (bisect on a list is several times faster than NumPy on scalars).
    """
    n = len(arr)
    t0 = max(t_free, arr[i])
    if bisect_right(arr, t0, i) - i >= sim.max_batch:
        start = t0
    else:
        full = arr[i + sim.max_batch - 1] if i + sim.max_batch - 1 < n else math.inf
        start = max(t0, min(arr[i] + sim.max_queue_delay_ms, full))
    queued = bisect_right(arr, start, i)
    return start, min(queued, i + sim.max_batch), queued


def simulate(trace: Trace, policy: Policy, profile: LatencyProfile, sim: SimConfig | None = None) -> SimResult:
    """Serve every request of `trace` on one worker; the policy picks each batch's ratio."""
    sim = sim or SimConfig()
    if sim.max_batch > profile.max_batch:
        raise ConfigError(f"max_batch {sim.max_batch} exceeds the latency profile's largest batch "
                          f"{profile.max_batch} ({profile.label})")
    arr = np.asarray(trace.arrivals_ms, float)
    n = len(arr)
    finish, ratio = np.zeros(n), np.zeros(n)
    starts, sizes, ratios = [], [], []
    policy.reset()
    if isinstance(policy, LookaheadOracle):
        policy.bind(arr, profile, sim)
    i, t_free, arr_list = 0, 0.0, arr.tolist()
    while i < n:
        start, j, queued = _batch_bounds(arr_list, i, t_free, sim)
        r = float(policy.choose(QueueState(start, arr[i:j], arr[j:queued], sim.max_batch)))
        t_free = start + profile.latency(r, j - i)
        finish[i:j], ratio[i:j] = t_free, r
        starts.append(start)
        sizes.append(j - i)
        ratios.append(r)
        i = j
    return SimResult(policy.name, trace.kind, arr, finish, ratio, np.array(starts), np.array(sizes, int),
                     np.array(ratios))


class LookaheadOracle:
    """A clairvoyant per-batch reference: it knows every future arrival.

    For each batch it takes the most accurate candidate such that, rolling the exact future out for
    `oracle_horizon_ms` (this batch at the candidate, every later batch at the fastest ratio), no
    more requests miss the SLO than if this batch also ran at the fastest ratio. It is greedy per
    batch, so it is a strong reference, not a proven optimum.
    """

    def __init__(self, profile: LatencyProfile, accuracy: AccuracyTable, config: ControllerConfig,
                 name: str = "oracle (lookahead)") -> None:
        self.name = name
        self.candidates = SlackController(profile, accuracy, config).candidates
        self.slo_ms = config.slo_ms
        self._arr: list[float] | None = None

    def bind(self, arrivals_ms: np.ndarray, profile: LatencyProfile, sim: SimConfig) -> None:
        """Give the oracle the whole trace before the run."""
        self._arr, self._profile, self._sim = arrivals_ms.tolist(), profile, sim

    def reset(self) -> None:  # noqa: D102 - Policy
        pass

    def _misses(self, state: QueueState, first: float) -> int:
        arr, sim, profile = self._arr, self._sim, self._profile
        i = bisect_left(arr, float(state.batch_arrivals[0]))
        j = i + state.batch_size
        t_free = state.now_ms + profile.latency(first, state.batch_size)
        misses = sum(t_free - a > self.slo_ms for a in arr[i:j])
        horizon = state.now_ms + self._sim.oracle_horizon_ms
        fastest = self.candidates[-1]
        i = j
        while i < len(arr) and arr[i] <= horizon:
            if arr[i] >= t_free:  # the worker went idle: this decision no longer matters
                break
            start, j, _ = _batch_bounds(arr, i, t_free, sim)
            t_free = start + profile.latency(fastest, j - i)
            misses += sum(t_free - a > self.slo_ms for a in arr[i:j])
            i = j
        return misses

    def choose(self, state: QueueState) -> float:  # noqa: D102 - Policy
        if self._arr is None:
            raise ConfigError("LookaheadOracle needs the trace: call bind() (simulate() does)")
        floor = self._misses(state, self.candidates[-1])
        for r in self.candidates[:-1]:
            if self._misses(state, r) <= floor:
                return r
        return self.candidates[-1]


def standard_policies(profile: LatencyProfile, accuracy: AccuracyTable, config: ControllerConfig,
                      fixed: tuple[float, ...] = (0.0, 0.5, 1.0)) -> list[Policy]:
    """Fixed ratios, the controller and the oracle: the comparison docs/serving.md reports."""
    return ([FixedRatio(r) for r in fixed] + [SlackController(profile, accuracy, config),
                                              LookaheadOracle(profile, accuracy, config)])


@dataclass(frozen=True)
class Summary:
    """One row of the comparison table."""

    trace: str
    policy: str
    requests: int
    slo_attainment: float
    mean_accuracy: dict[str, float]  # metric name -> mean over requests of that metric at their ratio
    p50_ms: float
    p99_ms: float
    mean_ratio: float
    switches: int  # ratio changes between consecutive batches

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def summarize(result: SimResult, slo_ms: float, metrics: list[AccuracyTable]) -> Summary:
    """SLO attainment, mean accuracy (per metric), p50/p99 latency of one run."""
    lat = result.latency_ms
    n = len(lat)
    ratios = result.ratio
    return Summary(result.trace, result.policy, n,
                   float(np.mean(lat <= slo_ms)) if n else 1.0,
                   {m.metric: float(np.mean(np.interp(ratios, m.ratios, m.values))) if n else float("nan")
                    for m in metrics},
                   float(np.percentile(lat, 50)) if n else 0.0, float(np.percentile(lat, 99)) if n else 0.0,
                   float(np.mean(ratios)) if n else 0.0, int(np.count_nonzero(np.diff(result.batch_ratio))))


def over_time(result: SimResult, slo_ms: float, accuracy: AccuracyTable, window_s: float,
              duration_s: float) -> dict[str, np.ndarray]:
    """Per window (by arrival time): window start (s), SLO attainment, mean accuracy, offered rate."""
    edges = np.arange(0.0, duration_s + window_s, window_s) * 1000.0
    idx = np.clip(np.searchsorted(edges, result.arrivals_ms, side="right") - 1, 0, len(edges) - 2)
    count = np.bincount(idx, minlength=len(edges) - 1).astype(float)
    met = np.bincount(idx, weights=(result.latency_ms <= slo_ms).astype(float), minlength=len(edges) - 1)
    acc = np.bincount(idx, weights=np.interp(result.ratio, accuracy.ratios, accuracy.values), minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"t_s": edges[:-1] / 1000.0, "slo_attainment": np.where(count > 0, met / count, np.nan),
                "accuracy": np.where(count > 0, acc / count, np.nan), "rate": count / window_s}


def format_table(rows: list[Summary], slo_ms: float) -> str:
    """Markdown: one row per (trace, policy)."""
    metrics = list(rows[0].mean_accuracy) if rows else []
    head = ["trace", "policy", f"SLO ≤ {slo_ms:g} ms met"] + [f"mean {m}" for m in metrics] + [
        "p50 ms", "p99 ms", "mean ratio", "switches"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in rows:
        lines.append("| " + " | ".join([s.trace, s.policy, f"{100 * s.slo_attainment:.2f}%"]
                                       + [f"{s.mean_accuracy[m]:.4f}" for m in metrics]
                                       + [f"{s.p50_ms:.1f}", f"{s.p99_ms:.1f}", f"{s.mean_ratio:.2f}",
                                          str(s.switches)]) + " |")
    return "\n".join(lines) + "\n"


def plot_over_time(trace: Trace, results: list[SimResult], slo_ms: float, accuracy: AccuracyTable,
                   window_s: float, path: Path, subtitle: str = "") -> None:
    """Offered load, SLO attainment and accuracy per window, one line per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    t = np.arange(0, trace.config.duration_s, 0.05)
    axes[0].plot(t, trace.rate(t), color="0.3", lw=1, label="rate function")
    for res in results:
        series = over_time(res, slo_ms, accuracy, window_s, trace.config.duration_s)
        axes[1].step(series["t_s"], 100 * series["slo_attainment"], where="post", label=res.policy, lw=1.2)
        axes[2].step(series["t_s"], series["accuracy"], where="post", label=res.policy, lw=1.2)
    series = over_time(results[0], slo_ms, accuracy, window_s, trace.config.duration_s)
    axes[0].step(series["t_s"], series["rate"], where="post", color="tab:blue", lw=1, label=f"arrivals per {window_s:g} s")
    for start, end in trace.bursts:
        for ax in axes:
            ax.axvspan(start, end, color="0.9", zorder=0)
    axes[0].set_ylabel("requests / s")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].set_ylabel(f"% meeting {slo_ms:g} ms SLO")
    axes[1].set_ylim(-2, 102)
    axes[2].set_ylabel(f"mean {accuracy.metric}")
    axes[2].set_xlabel("time (s)")
    axes[2].legend(loc="lower left", fontsize=8, ncol=3)
    fig.suptitle(f"{trace.kind} trace (seed {trace.config.seed})" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_comparison(traces: list[Trace], profile: LatencyProfile, accuracy: AccuracyTable,
                   controller: ControllerConfig, sim: SimConfig, out_dir: Path | None = None,
                   extra_metrics: tuple[AccuracyTable, ...] = ()) -> list[Summary]:
    """Every standard policy on every trace; with `out_dir`, writes results.json, table.md and PNGs."""
    rows: list[Summary] = []
    metrics = [accuracy, *extra_metrics]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for trace in traces:
        results = [simulate(trace, p, profile, sim) for p in standard_policies(profile, accuracy, controller)]
        rows += [summarize(r, controller.slo_ms, metrics) for r in results]
        if out_dir is not None:
            plot_over_time(trace, results, controller.slo_ms, accuracy, sim.window_s,
                           out_dir / f"serving_{trace.kind}.png", f"latency: {profile.label}")
    if out_dir is not None:
        (out_dir / "table.md").write_text(format_table(rows, controller.slo_ms))
        (out_dir / "results.json").write_text(json.dumps({
            "latency_profile": json.loads(profile.to_json()), "accuracy": [m.to_dict() for m in metrics],
            "controller": asdict(controller), "sim": asdict(sim),
            "traces": [{"kind": t.kind, "requests": len(t.arrivals_ms), **asdict(t.config)} for t in traces],
            "rows": [r.to_dict() for r in rows]}, indent=1))
    return rows
