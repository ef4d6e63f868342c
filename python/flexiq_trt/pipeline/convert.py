"""`convert`: intake -> calibrate -> quantize -> select -> (finetune, block rounding) -> rewrite -> report, atomic outputs.

Orchestration only: each step calls one stage and stores what it returns in the ConversionState.
Every artifact is written into a private temporary folder next to the output folder and moved into
place only when the whole run succeeded, so a failure never leaves half-written files behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConversionState, ConvertConfig
from flexiq_trt.errors import ConfigError, UnsupportedModelError
from flexiq_trt.finetune.config import BlockRoundingConfig, FinetuneConfig, RefineConfig
from flexiq_trt.log import get_logger, stage
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.ratios import RatioTable
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.version import __version__

_log = get_logger(__name__)

# Selectors whose order comes from the error scores (directly, or as the search's seeds).
SENSITIVITY_SELECTORS = frozenset({"greedy", "evolutionary"})


@dataclass
class ConvertResult:
    """Paths of what `convert` wrote, the ratio table and the report (None with --plan-only)."""

    output_dir: Path
    files: dict[str, Path]
    table: RatioTable | None = None
    report: dict | None = None
    timings: dict[str, float] = field(default_factory=dict)


def model_stem(path: Path) -> str:
    """`model.onnx` -> `model`."""
    return path.name[:-5] if path.name.endswith(".onnx") else path.stem


def intake(state: ConversionState) -> None:
    """Load the model and the calibration data, prepare the graph, find the eligible layers."""
    from flexiq_trt.calibration.feeds import read_feeds
    from flexiq_trt.intake import load_model
    from flexiq_trt.intake.stage import run_intake

    with stage("intake", _log):
        state.original = load_model(state.model_path)
        state.feeds = read_feeds(state.calib.data, state.original, state.calib, state.config.allow_synthetic)
        q = state.quant
        result = run_intake(state.original, state.feeds.batches[0], q.group_size,
                            offset_inputs=q.offset_inputs and q.unsigned_activations,
                            int8_edges=state.config.int8_edges)
        state.prepared, state.eligible, state.skipped = result.prepared, result.eligible, result.skipped
        state.input_offsets = result.offsets


def apply_plan(state: ConversionState, tmp: Path) -> None:
    """Apply an edited plan (--plan), or write the reviewable plan (--plan-only)."""
    from flexiq_trt.graph_passes.plan import ConversionPlan

    cfg, g = state.config, state.quant.group_size
    if cfg.plan:
        state.eligible, state.skipped = ConversionPlan.load(Path(cfg.plan)).apply(state.eligible, state.skipped, g)
        _log.info("plan %s: replacing %d layer(s), keeping %d", cfg.plan, len(state.eligible),
                       len(state.skipped))
    if cfg.plan_only:
        plan = ConversionPlan.from_layers(state.eligible, state.skipped, g, state.model_path.name)
        state.files["plan"] = tmp / f"{state.stem}.plan.json"
        plan.save(state.files["plan"])


def split_data(state: ConversionState) -> None:
    """Separate the held-out evaluation data from the calibration data."""
    from flexiq_trt.calibration.feeds import split_heldout
    from flexiq_trt.calibration.model_io import input_specs

    if not state.eligible:
        reasons = "; ".join(f"{s.name} ({s.op_type}): {s.reason}" for s in state.skipped[:6]) or "no Conv/Gemm/MatMul"
        raise UnsupportedModelError(f"{state.model_path}: no layer is eligible for FlexiQ — {reasons}")
    cfg = state.config
    names = [s.name for s in input_specs(state.original)]
    state.calib_feeds, state.eval_feeds = split_heldout(state.feeds, names, cfg.eval_data, cfg.labels_key,
                                                        cfg.holdout_fraction, state.calib.batch_size)


def calibrate_and_quantize(state: ConversionState) -> None:
    """Pass 1 (scales, ranges), pass 2 (group statistics) and base-order quantization of every layer."""
    from flexiq_trt.calibration.stage import calibrate_layers
    from flexiq_trt.quantization.stage import quantize_layers

    calibrated = calibrate_layers(state.prepared, state.eligible, state.calib_feeds, state.calib,
                                  state.quant.unsigned_activations,
                                  typical_magnitudes=state.quant.channel_grouping != "max")
    state.quantized = quantize_layers(state.prepared, calibrated, state.calib_feeds, state.calib, state.quant)


def select(state: ConversionState, search: SearchConfig) -> None:
    """Order the (layer, group) items globally and fix each layer's final group order."""
    from flexiq_trt.select import stage as sel
    from flexiq_trt.select.registry import NEEDS_FITNESS

    cfg = state.config
    fit = hold = None
    measure = cfg.measure_sensitivity and cfg.selector in SENSITIVITY_SELECTORS
    if cfg.selector in NEEDS_FITNESS or measure:
        from flexiq_trt.select.simulation_fitness import build_fitness

        fit, hold = build_fitness(state.prepared, state.quantized, state.calib_feeds, cfg.fitness_samples,
                                  cfg.guard_samples, reserve_guard=cfg.selector in NEEDS_FITNESS)
    state.problem = sel.build_problem(state.quantized, cfg.ladder, search.seed or 0, fit, hold)
    if measure:
        from flexiq_trt.select.sensitivity import calibrate_scores

        calibrate_scores(state.problem, fit)
    state.order = sel.run_selector(cfg.selector, state.problem, search)
    state.selected, state.table = sel.finalize(state.quantized, state.problem, state.order)
    state.table.extra.update({
        "flexiq_trt_version": __version__, "calibration_samples": state.calib_feeds.samples,
        "synthetic_calibration": state.feeds.synthetic, "quant": asdict(state.quant),
        "model": state.model_path.name,
        # what the search kept at each ladder ratio, so the artifact says how it was made
        "selection": [e for e in state.order.log if e.get("event") in ("screening", "ratio_result")]})


BEFORE_FINETUNE = "before_finetune"  # report variant: the same conversion without the finetune


def finetune(state: ConversionState, config: FinetuneConfig) -> dict[str, list] | None:
    """With --finetune: distil the layers' float weights and re-quantize them in the same order.

    Returns report variants (final order): the layers as they were before and the finetuned layers
    stored with the other 4-bit rounding (`finetuned_<rounding>`); None when off.
    """
    from flexiq_trt.finetune.stage import finetune_layers
    from flexiq_trt.select.stage import apply_order

    if not config.enabled:
        return None
    extra = {BEFORE_FINETUNE: [rec.final for rec in state.selected]}
    result = finetune_layers(state.prepared, state.selected, state.problem, state.order, state.table,
                             state.calib_feeds, state.quant, config)
    state.quantized, state.selected = result.records, result.selected
    state.table.extra["finetune"] = result.summary
    if result.other is not None:
        name, records = result.other
        extra[f"finetuned_{name}"] = apply_order([rec.result for rec in records], state.problem, state.order)
    return extra


BEFORE_BLOCK_ROUNDING = "before_block_rounding"  # report variant: the same conversion with the codes before learning


def block_rounding(state: ConversionState, config: BlockRoundingConfig) -> dict[str, list] | None:
    """Learn the 4-bit codes' rounding block by block; the codes before are a report variant.

    Runs after the finetune when both are on, so it learns the rounding of the finetuned layers. Left
    at its default (`enabled=None`) it is skipped, with the reason in the sidecar and the report, where
    PyTorch is missing or the graph has an operator the PyTorch interpreter lacks; asked for
    explicitly, both are errors.
    """
    from flexiq_trt.finetune.block_rounding import round_blocks
    from flexiq_trt.finetune.config import TORCH_EXTRA, torch_available

    if config.enabled is False:
        return None
    if config.enabled is None and not torch_available():
        return _skip_block_rounding(state, f"PyTorch is not installed: {TORCH_EXTRA}")
    before = {BEFORE_BLOCK_ROUNDING: [rec.final for rec in state.selected]}
    try:
        result = round_blocks(state.prepared, state.selected, state.problem, state.order, state.table,
                              state.calib_feeds, config)
    except UnsupportedModelError as e:
        if config.enabled:
            raise
        return _skip_block_rounding(state, str(e))
    state.quantized, state.selected = result.records, result.selected
    state.table.extra["block_rounding"] = result.summary
    return before


def _skip_block_rounding(state: ConversionState, why: str) -> None:
    """Record (sidecar, report) and log why the default block rounding did not run."""
    _log.warning("block rounding skipped (%s); --no-block-rounding silences this", why)
    state.table.extra["block_rounding"] = {"skipped": why}
    return None


def baseline_variants(state: ConversionState) -> None:
    """The report's naive/plain baselines, quantized on the same statistics and put in the same order."""
    from flexiq_trt.quantization.stage import baseline_variants as quantize_baselines
    from flexiq_trt.select.stage import apply_order

    if state.config.baselines and state.config.report:
        state.variants = {name: apply_order(results, state.problem, state.order)
                          for name, results in quantize_baselines(state.quantized, state.quant).items()}


def rewrite(state: ConversionState, tmp: Path) -> None:
    """Write the plugin ONNX, the simulation ONNX and the ratio table."""
    from flexiq_trt.graph_passes.artifacts import write_artifacts

    pairs = [(rec.eligible, rec.final) for rec in state.selected]
    state.files.update(write_artifacts(tmp, state.stem, state.prepared, pairs, state.table,
                                       state.config.sim_arithmetic, state.config.int8_edges,
                                       state.config.workspace_edges))


def report(state: ConversionState, search: SearchConfig, tmp: Path) -> dict | None:
    """The held-out report, and the selector comparison when asked for."""
    from flexiq_trt.report.stage import build_report, compare_selectors
    from flexiq_trt.select.registry import selector_names
    from flexiq_trt.select.stage import run_selector

    cfg = state.config
    if not cfg.report:
        return None
    result = build_report(state, tmp)
    if cfg.compare_selectors:
        others = {name: run_selector(name, state.problem, search) for name in selector_names() if name != cfg.selector}
        state.files.update(compare_selectors(state, {cfg.selector: state.order, **others}, result, tmp))
    return result


def run_convert(model_path: str | Path, calib: CalibConfig | None = None, quant: QuantConfig | None = None,
                search: SearchConfig | None = None, cfg: ConvertConfig | None = None,
                refine: RefineConfig | None = None) -> ConvertResult:
    """The whole pipeline; see the module docstring."""
    state = ConversionState(Path(model_path), calib or CalibConfig(), quant or QuantConfig(), cfg or ConvertConfig())
    search, refine = search or SearchConfig(), refine or RefineConfig()
    out_dir = Path(state.config.output_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{state.stem}.", dir=out_dir.parent))
    clock = _Clock(state.timings)
    try:
        intake(state)
        apply_plan(state, tmp)
        if state.config.plan_only:
            return _publish(tmp, out_dir, ConvertResult(out_dir, dict(state.files), timings=state.timings))
        split_data(state)
        clock.lap("intake")
        calibrate_and_quantize(state)
        clock.lap("calibrate+quantize")
        select(state, search)
        clock.lap("select")
        baseline_variants(state)  # the baselines are those of the conversion before any finetuning
        tuned = finetune(state, refine.finetune)
        if tuned is not None:
            clock.lap("finetune")
        if tuned is not None and state.config.report:
            state.variants.update(tuned)
        rounded = block_rounding(state, refine.block_rounding)
        if rounded is not None:
            clock.lap("block_rounding")
            if state.config.report:
                state.variants.update(rounded)
        rewrite(state, tmp)
        clock.lap("rewrite")
        result = report(state, search, tmp)
        clock.lap("report")
        state.timings["total"] = clock.total()
        return _publish(tmp, out_dir, ConvertResult(out_dir, state.files, state.table, result, state.timings))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Clock:
    """Wall time per pipeline step, into `timings`."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.start = timings, time.perf_counter()
        self.last = self.start

    def lap(self, name: str) -> None:
        """Record the time since the previous lap under `name`."""
        now = time.perf_counter()
        self.timings[name] = now - self.last
        self.last = now

    def total(self) -> float:
        """Seconds since the clock started."""
        return time.perf_counter() - self.start


def _publish(tmp: Path, out_dir: Path, result: ConvertResult) -> ConvertResult:
    """Move every file of `tmp` into `out_dir` (created if needed) and repoint the result's paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    moved = {}
    for f in sorted(tmp.iterdir()):
        if f.is_file():
            dest = out_dir / f.name
            shutil.move(str(f), dest)
            moved[f] = dest
    result.files = {k: moved.get(v, out_dir / v.name) for k, v in result.files.items()}
    return result


def validate_inputs(model_path: Path, calib: CalibConfig) -> None:
    """Cheap early checks with clear messages."""
    if calib.data is None:
        raise ConfigError("no calibration data: pass --calib DATA (.npz/.npy/image folder/loader script), or "
                          "--calib synthetic --allow-synthetic to opt in to random data")
