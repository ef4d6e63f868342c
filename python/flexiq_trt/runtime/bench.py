"""`flexiq-trt bench`: latency and throughput of one FlexiQ engine at several ratios, side by side.

Each (batch, ratio) point sets the ratio (one H2D copy), warms up, then times `iterations`
back-to-back launches (CUDA-graph replays by default) with a pair of events around each, so a figure
is the GPU time of one inference with the stream kept busy. The profile it can write is the
serving controller's latency profile (python/flexiq_trt/serve/profile.py, mean latency per point).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.options import option
from flexiq_trt.ratios import check_ratio, load_ratio_table
from flexiq_trt.runtime.cuda_api import AUTO, BACKENDS


@dataclass(frozen=True)
class BenchConfig:
    """What `flexiq-trt bench` measures and how."""

    ratio_table: str = option(
        "", "the model's <stem>.flexiq.json (or its FlexiQ/simulation ONNX): ratio -> flexiq_max_4bit_ch")
    ratios: tuple[float, ...] = option(
        (0.0, 0.25, 0.5, 0.75, 1.0), "ratios of eligible MACs in 4-bit to measure")
    batch: tuple[int, ...] = option((1,), "batch sizes to measure (within the engine's profile)")
    iterations: int = option(200, "timed inferences per (batch, ratio)")
    warmup: int = option(20, "untimed inferences before each (batch, ratio)")
    cuda_graph: bool = option(True, "time CUDA-graph replays (else plain enqueueV3 calls)")
    cuda_backend: str = option(
        AUTO, "CUDA package: pycuda, cuda-python or auto (pycuda when importable; env FLEXIQ_CUDA_BACKEND)", choices=(AUTO, *BACKENDS))
    plugin_lib: str | None = option(None, "libflexiq_plugins.so (default: the usual search)")
    profile_json: str | None = option(
        None, "also write the latency profile the serving controller reads (flexiq_trt.latency_profile/1)")
    seed: int = option(0, "seed of the random inputs")

    def __post_init__(self) -> None:
        for r in self.ratios:
            check_ratio(r)
        if not self.ratios or not self.batch:
            raise ConfigError("bench needs at least one ratio and one batch size")
        if len(set(self.ratios)) != len(self.ratios) or len(set(self.batch)) != len(self.batch):
            raise ConfigError(f"ratios {list(self.ratios)} and batch sizes {list(self.batch)} must not repeat")
        if min(self.batch) < 1:
            raise ConfigError(f"batch sizes must be >= 1, got {list(self.batch)}")
        if self.iterations < 1 or self.warmup < 0:
            raise ConfigError(f"iterations must be >= 1 and warmup >= 0, got {self.iterations}, {self.warmup}")


@dataclass(frozen=True)
class BenchPoint:
    """Latency statistics of one (batch, ratio) point, in milliseconds."""

    batch: int
    ratio: float
    achieved_ratio: float  # share of eligible MACs the vector actually puts in 4-bit
    mean_ms: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        """Samples per second at the mean latency."""
        return self.batch * 1000.0 / self.mean_ms


@dataclass(frozen=True)
class BenchResult:
    """Every measured point and what it ran on."""

    engine: str
    device: str
    cuda_backend: str
    cuda_graph: bool
    points: tuple[BenchPoint, ...]


def latency_stats(times_ms: np.ndarray) -> tuple[float, float, float]:
    """(mean, p50, p99) of per-inference times."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0 or not np.all(np.isfinite(t)):
        raise ModelError(f"no valid timings ({t.size} values)")
    return float(t.mean()), float(np.percentile(t, 50)), float(np.percentile(t, 99))


def random_feeds(runner: Any, batch: int, seed: int) -> dict[str, np.ndarray]:
    """One random array per engine input at `batch` (floats ~ N(0,1), integers in [0, 8))."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in runner.input_names():
        shape, dtype = runner.input_shape(name, batch), runner.input_dtype(name)
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[name] = rng.integers(0, 8, size=shape).astype(dtype)
    return feeds


def _timed(runner: Any, launch: Any, iterations: int, events: list[tuple[Any, Any]]) -> np.ndarray:
    cuda = runner.cuda
    for i in range(iterations):
        start, end = events[i]
        cuda.event_record(start)
        launch()
        cuda.event_record(end)
    cuda.synchronize()
    return np.array([cuda.event_elapsed_ms(s, e) for s, e in events[:iterations]])


def bench_runner(runner: Any, config: BenchConfig, table: object) -> BenchResult:
    """Measure every (batch, ratio) point of `config` on an open EngineRunner."""
    ratio_table = load_ratio_table(table)
    cuda = runner.cuda
    events = [(cuda.event_create(), cuda.event_create()) for _ in range(config.iterations)]
    points = []
    for batch in config.batch:
        runner.prepare(random_feeds(runner, batch, config.seed))
        runner.set_ratio(float(config.ratios[0]))
        runner.enqueue()  # one plain run before capture: lazy initialisation stays out of the graph
        cuda.synchronize()
        graph = runner.capture_graph(include_ratio_copy=False) if config.cuda_graph else None

        def launch(graph: Any = graph) -> None:
            if graph is not None:
                runner.launch_graph(graph)
            else:
                runner.enqueue()

        for ratio in config.ratios:
            vector = runner.set_ratio(float(ratio))
            for _ in range(config.warmup):
                launch()
            cuda.synchronize()
            mean, p50, p99 = latency_stats(_timed(runner, launch, config.iterations, events))
            points.append(BenchPoint(batch, float(ratio), ratio_table.achieved_ratio(vector), mean, p50, p99))
    return BenchResult(str(getattr(runner, "engine_path", "")), cuda.device_name(), cuda.name, config.cuda_graph,
                       tuple(points))


def format_table(result: BenchResult) -> str:
    """One row per (batch, ratio): the ratios of a batch size side by side, with speed-up over ratio 0."""
    mode = "CUDA-graph replay" if result.cuda_graph else "enqueueV3"
    lines = [f"{result.engine} on {result.device} ({result.cuda_backend}, {mode}); GPU time per inference",
             f"{'batch':>5} {'ratio':>6} {'4-bit MACs':>10} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9} "
             f"{'samples/s':>11} {'vs ratio 0':>10}"]
    for p in result.points:
        base = next((q for q in result.points if q.batch == p.batch and q.ratio == 0.0), None)
        speedup = f"{base.mean_ms / p.mean_ms:9.2f}x" if base else f"{'-':>10}"
        lines.append(f"{p.batch:>5} {p.ratio:>6.2f} {p.achieved_ratio:>9.1%} {p.mean_ms:>9.3f} {p.p50_ms:>9.3f} "
                     f"{p.p99_ms:>9.3f} {p.throughput:>11.1f} {speedup}")
    return "\n".join(lines)


def latency_profile(result: BenchResult) -> Any:
    """The serving controller's LatencyProfile of the mean latencies (python/flexiq_trt/serve/profile.py)."""
    from flexiq_trt.serve.profile import LatencyProfile

    ratios = tuple(sorted({p.ratio for p in result.points}))
    batches = tuple(sorted({p.batch for p in result.points}))
    mean = {(p.ratio, p.batch): p.mean_ms for p in result.points}
    mode = "CUDA-graph replay" if result.cuda_graph else "enqueueV3"
    return LatencyProfile(ratios, batches, tuple(tuple(mean[(r, b)] for b in batches) for r in ratios),
                          label=f"{Path(result.engine).name} on {result.device}",
                          source=f"flexiq-trt bench {result.engine}: mean GPU time per inference, {mode}, "
                                 f"{result.cuda_backend}")


def run_bench(engine: str | Path, config: BenchConfig) -> BenchResult:
    """Check the inputs, refuse without a GPU, then open the engine and measure (GPU only)."""
    from flexiq_trt.runtime.cuda_api import require_gpu

    engine = Path(engine)
    if not engine.is_file():
        raise ModelError(f"{engine}: no such engine file")
    if not config.ratio_table:
        raise ConfigError("bench needs --ratio-table (the model's <stem>.flexiq.json) to turn ratios into vectors")
    table = load_ratio_table(config.ratio_table)
    require_gpu("flexiq-trt bench")
    from flexiq_trt.runtime.engine_runner import EngineRunner

    with EngineRunner(engine, ratio_table=table, plugin_lib=config.plugin_lib, cuda=config.cuda_backend) as runner:
        result = bench_runner(runner, config, table)
    if config.profile_json:
        Path(config.profile_json).write_text(latency_profile(result).to_json() + "\n")
    return result
