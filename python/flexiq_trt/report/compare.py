"""Polygraphy comparisons of the original model with the FlexiQ simulation (CPU) and engine (GPU).

At each requested ratio, Polygraphy's own runners, Comparator and tolerances run: the original ONNX
and the simulation ONNX in ONNX Runtime, and, given an engine, the FlexiQ engine in TensorRT through
Polygraphy's TrtRunner (plugin library loaded first). The ratio reaches the simulation and the
engine the way it does in production, as the extra input ``flexiq_max_4bit_ch``: the data loader
(runtime/polygraphy_loader.py: RatioFeeds) adds the ratio's vector to every feed, and Polygraphy
drops it for the original model, which has no such input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.options import option
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import RatioTable, check_ratio, load_ratio_table

ERROR_STATS = ("max", "mean", "median", "elemwise")


@dataclass(frozen=True)
class CompareConfig:
    """Ratios, data, tolerances and the optional engine of `flexiq-trt compare`."""

    ratio: tuple[float, ...] = option(
        (0.5,), "ratio(s) of eligible MACs in 4-bit; several give a per-ratio summary table")
    data: str = option("", ".npz keyed by input name (axis 0 = samples)")
    atol: float = option(0.1, "absolute tolerance (Polygraphy CompareFunc.simple)")
    rtol: float = option(0.1, "relative tolerance (Polygraphy CompareFunc.simple)")
    check_error_stat: str = option(
        "median", "error statistic checked against the tolerances", choices=ERROR_STATS)
    iterations: int = option(8, "batches compared per ratio")
    batch_size: int = option(8, "batch size when the model's batch is dynamic")
    engine: str | None = option(
        None, "also compare this FlexiQ engine (TensorRT + plugin, Polygraphy TrtRunner; needs a GPU)")
    plugin_lib: str | None = option(
        None, "libflexiq_plugins.so for the engine (default: FLEXIQ_PLUGIN_LIB, the package, build/)")

    def __post_init__(self) -> None:
        ratios = (self.ratio,) if np.ndim(self.ratio) == 0 else tuple(self.ratio)
        object.__setattr__(self, "ratio", tuple(check_ratio(float(r)) for r in ratios))
        if not self.ratio:
            raise ConfigError("compare needs at least one ratio")
        if self.check_error_stat not in ERROR_STATS:
            raise ConfigError(f"check_error_stat must be one of {ERROR_STATS}, got {self.check_error_stat!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ConfigError(f"iterations and batch_size must be >= 1, got {self.iterations}, {self.batch_size}")
        if self.atol < 0 or self.rtol < 0:
            raise ConfigError(f"tolerances must be >= 0, got atol={self.atol}, rtol={self.rtol}")


@dataclass(frozen=True)
class PairSummary:
    """One comparison (original vs simulation or engine) at one ratio, over every iteration and output."""

    ratio: float
    achieved_ratio: float
    reference: str
    candidate: str
    passed: bool
    iterations_passed: int
    iterations: int
    max_absdiff: float
    median_absdiff: float  # largest per-iteration median |diff| over outputs


def pin_ratio(sim_model: onnx.ModelProto, vector: np.ndarray) -> onnx.ModelProto:
    """A copy of the simulation model whose runtime input is a constant (the given int32 [L] vector).

    For tools that cannot feed the extra input; `compare` itself feeds it through the data loader.
    """
    pinned = onnx.ModelProto()
    pinned.CopyFrom(sim_model)
    inputs = [i for i in pinned.graph.input if i.name == RUNTIME_INPUT]
    if not inputs:
        raise ModelError(f"simulation model has no {RUNTIME_INPUT!r} input: not a FlexiQ simulation ONNX")
    pinned.graph.input.remove(inputs[0])
    pinned.graph.initializer.append(onnx.numpy_helper.from_array(vector.astype(np.int32), RUNTIME_INPUT))
    return pinned


def _simulation_table(simulation: Path) -> RatioTable:
    model = onnx.load(str(simulation), load_external_data=False)
    if RUNTIME_INPUT not in {i.name for i in model.graph.input}:
        raise ModelError(f"{simulation}: no {RUNTIME_INPUT!r} input: not a FlexiQ simulation ONNX")
    return load_ratio_table(simulation)


def _summaries(accuracy: Any, ratio: float, achieved: float) -> list[PairSummary]:
    """Flatten Polygraphy's AccuracyResult (older releases) or AccuracyResults into one row per runner pair."""
    results = [accuracy] if hasattr(accuracy, "items") else list(accuracy)
    rows = []
    for result in results:
        for (ref, cand), iterations in result.items():
            per_iter = [all(bool(out) for out in it.values()) for it in iterations]
            outs = [out for it in iterations for out in it.values()]
            max_abs = max((o.max_absdiff for o in outs if getattr(o, "max_absdiff", None) is not None), default=np.nan)
            med_abs = max((o.median_absdiff for o in outs if getattr(o, "median_absdiff", None) is not None),
                          default=np.nan)
            rows.append(PairSummary(ratio, achieved, ref, cand, all(per_iter) and bool(per_iter), sum(per_iter),
                                    len(per_iter), float(max_abs), float(med_abs)))
    return rows


def _polygraphy_tensorrt() -> Any:
    """The TensorRT flavour Polygraphy will use, made to agree with the one the plugin is loaded into."""
    import polygraphy.config as pg_config

    from flexiq_trt.runtime.trt_import import RTX_MODULE, import_tensorrt

    if "polygraphy.backend.trt" in sys.modules:  # flavour already fixed for this process
        trt = import_tensorrt(prefer=RTX_MODULE if pg_config.USE_TENSORRT_RTX else "tensorrt")
        if trt.is_rtx != pg_config.USE_TENSORRT_RTX:
            raise ConfigError(f"Polygraphy is set up for {'TensorRT-RTX' if pg_config.USE_TENSORRT_RTX else 'TensorRT'}"
                              f" but only {trt.name} can be imported (POLYGRAPHY_USE_TENSORRT_RTX)")
        return trt
    trt = import_tensorrt()
    pg_config.USE_TENSORRT_RTX = trt.is_rtx
    return trt


@dataclass
class EngineSide:
    """The engine half of a comparison, prepared up to the step that needs a GPU."""

    path: Path
    serialized: bytes
    trt: Any
    plugin_lib: Path

    def runner(self, name: str) -> Any:
        """A Polygraphy TrtRunner over the deserialized engine (deserialization happens on activation)."""
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner

        return TrtRunner(EngineFromBytes(self.serialized), name=name)


def prepare_engine(engine: str | Path, plugin_lib: str | None, num_layers: int) -> EngineSide:
    """Read the engine, load the FlexiQ plugin library into Polygraphy's TensorRT, then require a GPU.

    Everything up to deserialization runs on any machine; the last step raises GpuUnavailableError
    with the reason when no GPU is usable.
    """
    from flexiq_trt.runtime.cuda_api import require_gpu
    from flexiq_trt.runtime.plugin_loader import load_plugins

    path = Path(engine)
    if not path.is_file():
        raise ModelError(f"{path}: no such engine file")
    serialized = path.read_bytes()
    if len(serialized) < 1024:
        raise ModelError(f"{path}: {len(serialized)} bytes is too small to be a TensorRT engine")
    trt = _polygraphy_tensorrt()
    lib = load_plugins(trt.module, plugin_lib)
    if RUNTIME_INPUT.encode() not in serialized:
        raise ModelError(f"{path}: no {RUNTIME_INPUT} input in the engine: not a FlexiQ engine (L={num_layers} expected)")
    require_gpu(f"comparing the engine {path.name}")
    return EngineSide(path, serialized, trt, lib)


def compare_at_ratios(original: Path, simulation: Path, feeds: Sequence[dict[str, np.ndarray]],
                      config: CompareConfig) -> list[PairSummary]:
    """Original vs simulation (and vs engine when `config.engine`) at every ratio; one row per pair."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
    from polygraphy.comparator import Comparator, CompareFunc

    from flexiq_trt.runtime.polygraphy_loader import RatioFeeds

    table = _simulation_table(Path(simulation))
    engine = prepare_engine(config.engine, config.plugin_lib, table.num_layers) if config.engine else None
    data = list(feeds)[: config.iterations]
    if not data:
        raise ConfigError("no input batches to compare")
    try:  # SimpleCompareFunc replaces the deprecated CompareFunc.simple in recent Polygraphy
        from polygraphy.comparator import SimpleCompareFunc as simple
    except ImportError:
        simple = CompareFunc.simple
    func = simple(atol=config.atol, rtol=config.rtol, check_error_stat=config.check_error_stat)
    rows: list[PairSummary] = []
    for ratio in config.ratio:
        vector = table.vector(ratio)
        runners = [
            OnnxrtRunner(SessionFromOnnx(str(original), providers=["CPUExecutionProvider"]), name="fp32-original"),
            OnnxrtRunner(SessionFromOnnx(str(simulation), providers=["CPUExecutionProvider"]),
                         name=f"flexiq-sim@{ratio:g}"),
        ]
        if engine is not None:
            runners.append(engine.runner(f"flexiq-engine@{ratio:g}"))
        results = Comparator.run(runners, data_loader=RatioFeeds(data, vector))
        comparisons = [(0, i) for i in range(1, len(runners))]
        accuracy = Comparator.compare_accuracy(results, compare_func=func, comparisons=comparisons)
        rows += _summaries(accuracy, ratio, table.achieved_ratio(vector))
    return rows


def format_summary(rows: Sequence[PairSummary], config: CompareConfig) -> str:
    """The per-ratio table printed after Polygraphy's own log."""
    lines = [f"Polygraphy comparison, {config.check_error_stat} error vs atol={config.atol:g} rtol={config.rtol:g}",
             f"{'ratio':>6} {'4-bit MACs':>10} {'candidate':<24} {'result':<6} {'iterations':>10} "
             f"{'max |diff|':>11} {'median |diff|':>13}"]
    for r in rows:
        lines.append(f"{r.ratio:>6.2f} {r.achieved_ratio:>9.1%} {r.candidate:<24} {'PASS' if r.passed else 'FAIL':<6} "
                     f"{r.iterations_passed:>4}/{r.iterations:<5} {r.max_absdiff:>11.4g} {r.median_absdiff:>13.4g}")
    return "\n".join(lines)


def compare_with_polygraphy(original: Path, simulation: Path, feeds: Iterable[dict[str, np.ndarray]],
                            config: CompareConfig) -> bool:
    """True when every comparison at every ratio passes (the Python API's entry point)."""
    return all(r.passed for r in compare_at_ratios(Path(original), Path(simulation), list(feeds), config))
