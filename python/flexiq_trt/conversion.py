"""What one conversion carries from stage to stage: its options and its state.

`ConvertConfig` holds the options of the conversion itself (what runs, where results go, how the
report is made); each stage's own options live with the stage (CalibConfig, QuantConfig,
SearchConfig). `ConversionState` carries the per-layer records, the data and the ratio table from
one stage to the next; `pipeline/convert.py` fills it by calling the stages in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

if TYPE_CHECKING:
    import onnx

    from flexiq_trt.calibration.config import CalibConfig
    from flexiq_trt.calibration.feeds import FeedSet
    from flexiq_trt.graph_passes.offset_bounded_inputs import OffsetLayer
    from flexiq_trt.intake.eligibility import EligibleLayer, SkippedLayer
    from flexiq_trt.quantization.config import QuantConfig
    from flexiq_trt.quantization.layer import QuantizedLayer
    from flexiq_trt.quantization.stage import QuantizedRecord
    from flexiq_trt.ratios import RatioTable
    from flexiq_trt.select.base import GlobalOrder, SelectionProblem
    from flexiq_trt.select.stage import SelectedRecord

DEFAULT_LADDER = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_REPORT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _selector_names() -> tuple[str, ...]:
    """The registered selectors (looked up when the CLI is built, not at import)."""
    from flexiq_trt.select.registry import selector_names

    return tuple(selector_names())


def _check_ratios(name: str, ratios: tuple[float, ...]) -> None:
    if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
        raise ConfigError(f"{name} must be ratios in [0, 1], got {list(ratios)}")


@dataclass(frozen=True)
class ConvertConfig:
    """What `convert` produces and how it is evaluated."""

    output_dir: str = option(
        "flexiq_out", "folder for the artifacts and the report", flags=("-o", "--output"))
    selector: str = option("evolutionary", "channel-selection strategy", choices=_selector_names)
    ladder: tuple[float, ...] = option(
        DEFAULT_LADDER, "ratios the selector optimises for (any ratio in between is served too)")
    report_ratios: tuple[float, ...] = option(DEFAULT_REPORT_RATIOS, "ratios evaluated in the report")
    eval_data: str | None = option(
        None, "held-out evaluation .npz (arrays keyed by input name, optional 'labels'); default: hold "
        "out the tail of the calibration set", flags=("--eval",))
    labels_key: str = option("labels", "name of the labels array in the eval .npz")
    holdout_fraction: float = option(
        0.2, "share of calibration samples held out for the report when no --eval is given")
    fitness_samples: int = option(64, "calibration samples the search's fitness uses")
    guard_samples: int = option(
        256, "at most this many of the other calibration samples validate the search's candidates (its "
        "held-out guard); more give the guard's paired test more power")
    measure_sensitivity: bool = option(
        True, "weight the per-group error scores by each layer's measured effect on the output (one "
        "fitness evaluation per layer; greedy and evolutionary selectors)")
    baselines: bool = option(True, "also evaluate naive top-bit extraction and plain rounding in the report")
    ort_baseline: bool = option(
        True, "also evaluate ONNX Runtime's quantize_static per-channel INT8 in the report")
    report: bool = option(True, "evaluate and write report.json/.md/.png")
    compare_selectors: bool = option(
        False, "also order the groups with every other selector and compare them in the report "
        "(selectors.md/.png; the evolutionary search is run too, which takes time)")
    plan_only: bool = option(False, "write the conversion plan (plan.json) and stop")
    plan: str | None = option(None, "apply an edited plan.json")
    allow_synthetic: bool = option(
        False, "allow random calibration data (figures in the report are then meaningless)")
    sim_arithmetic: str = option(
        "float-exact", "how <stem>.flexiq-sim.onnx accumulates: float32 Conv/MatMul over chunks whose "
        "sums are exact integers (bit-identical, 1.1-2.3x faster in ONNX Runtime) or ConvInteger/MatMulInteger "
        "(docs/design.md §3)", choices=("float-exact", "integer"))
    int8_edges: bool = option(
        True, "in <stem>.flexiq.onnx, a FlexiQ layer read only by FlexiQ layers writes their INT8 codes and "
        "they read codes instead of float (bit-identical, 1 byte per value between them; docs/design.md §2.8)")
    workspace_edges: bool = option(
        False, "with --int8-edges, an INT8 edge with one reader of the producer's kind carries the reader's "
        "input-pass image: the producer's epilogue writes it and the reader runs no input pass (bit-identical; "
        "plugin version 4, docs/design.md §2.8; not yet executed on a GPU in CI)")

    def __post_init__(self) -> None:
        _check_ratios("ladder", self.ladder)
        _check_ratios("report_ratios", self.report_ratios)
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ConfigError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.fitness_samples < 1:
            raise ConfigError(f"fitness_samples must be >= 1, got {self.fitness_samples}")
        if self.guard_samples < 0:
            raise ConfigError(f"guard_samples must be >= 0, got {self.guard_samples}")


@dataclass
class ConversionState:
    """The conversion so far; each stage reads what earlier stages put here and adds its own part.

    Per-layer data travels as one typed record per layer, each stage's record wrapping the one
    before it: EligibleLayer (intake) -> CalibratedLayer -> QuantizedRecord -> SelectedRecord.
    """

    model_path: Path
    calib: CalibConfig
    quant: QuantConfig
    config: ConvertConfig
    original: onnx.ModelProto | None = None
    prepared: onnx.ModelProto | None = None
    feeds: FeedSet | None = None  # everything read from the calibration source
    calib_feeds: FeedSet | None = None  # what calibrates (and what the search may see)
    eval_feeds: FeedSet | None = None  # held out: only the report reads it
    eligible: list[EligibleLayer] = field(default_factory=list)
    skipped: list[SkippedLayer] = field(default_factory=list)
    input_offsets: list[OffsetLayer] = field(default_factory=list)  # bounded signed inputs made unsigned
    quantized: list[QuantizedRecord] = field(default_factory=list)
    problem: SelectionProblem | None = None
    order: GlobalOrder | None = None
    selected: list[SelectedRecord] = field(default_factory=list)
    table: RatioTable | None = None
    variants: dict[str, list[QuantizedLayer]] = field(default_factory=dict)  # report baselines, final order
    files: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """`model.onnx` -> `model`: the artifacts' common name."""
        name = self.model_path.name
        return name[:-5] if name.endswith(".onnx") else self.model_path.stem
