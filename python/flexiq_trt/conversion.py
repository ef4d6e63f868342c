"""Options of the convert pipeline itself (what runs, where results go, how the report is made)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flexiq_trt.errors import ConfigError

DEFAULT_LADDER = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_REPORT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _check_ratios(name: str, ratios: tuple[float, ...]) -> None:
    if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
        raise ConfigError(f"{name} must be ratios in [0, 1], got {list(ratios)}")


@dataclass(frozen=True)
class ConvertConfig:
    """What `convert` produces and how it is evaluated."""

    output_dir: str = field(default="flexiq_out", metadata={"help": "folder for the artifacts and the report"})
    selector: str = field(default="evolutionary", metadata={"help": "channel-selection strategy"})
    ladder: tuple[float, ...] = field(default=DEFAULT_LADDER, metadata={
        "help": "ratios the selector optimises for (any ratio in between is served too)"})
    report_ratios: tuple[float, ...] = field(default=DEFAULT_REPORT_RATIOS, metadata={
        "help": "ratios evaluated in the report"})
    eval_data: str | None = field(default=None, metadata={
        "help": "held-out evaluation .npz (arrays keyed by input name, optional 'labels'); default: hold "
                "out the tail of the calibration set"})
    labels_key: str = field(default="labels", metadata={"help": "name of the labels array in the eval .npz"})
    holdout_fraction: float = field(default=0.2, metadata={
        "help": "share of calibration samples held out for the report when no --eval-data is given"})
    fitness_samples: int = field(default=64, metadata={
        "help": "calibration samples the search's fitness uses"})
    guard_samples: int = field(default=256, metadata={
        "help": "at most this many of the other calibration samples validate the search's candidates (its "
                "held-out guard); more give the guard's paired test more power"})
    measure_sensitivity: bool = field(default=True, metadata={
        "help": "weight the per-group error scores by each layer's measured effect on the output (one "
                "fitness evaluation per layer; greedy and evolutionary selectors)"})
    baselines: bool = field(default=True, metadata={
        "help": "also evaluate naive top-bit extraction and plain rounding in the report"})
    ort_baseline: bool = field(default=True, metadata={
        "help": "also evaluate ONNX Runtime's quantize_static per-channel INT8 in the report"})
    report: bool = field(default=True, metadata={"help": "evaluate and write report.json/.md/.png"})
    compare_selectors: bool = field(default=False, metadata={
        "help": "also order the groups with every other selector and compare them in the report "
                "(selectors.md/.png; the evolutionary search is run too, which takes time)"})
    plan_only: bool = field(default=False, metadata={"help": "write the conversion plan (plan.json) and stop"})
    plan: str | None = field(default=None, metadata={"help": "apply an edited plan.json"})
    allow_synthetic: bool = field(default=False, metadata={
        "help": "allow random calibration data (figures in the report are then meaningless)"})

    def __post_init__(self) -> None:
        _check_ratios("ladder", self.ladder)
        _check_ratios("report_ratios", self.report_ratios)
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ConfigError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.fitness_samples < 1:
            raise ConfigError(f"fitness_samples must be >= 1, got {self.fitness_samples}")
        if self.guard_samples < 0:
            raise ConfigError(f"guard_samples must be >= 0, got {self.guard_samples}")
