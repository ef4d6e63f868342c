"""Search settings for the evolutionary selector, with named presets.

The defaults are the paper's (population 50, 50 generations per ladder ratio). A cheaper search is
only ever chosen by name (``preset="fast"``), so a user never gets fewer evaluations silently.
How the population is ranked (``screening``) is part of the preset and of every log: the default
ranks it with the linearized output model and scores the elites with the real simulation;
``preset="paper-exact"`` sends every candidate through the real simulation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from flexiq_trt.errors import ConfigError
from flexiq_trt.options import option

SCREENINGS = ("surrogate", "subsets")


def _preset_names() -> tuple[str, ...]:
    """The presets' names, for the CLI's choices (PRESETS is defined below the class)."""
    return tuple(sorted(PRESETS))


@dataclass(frozen=True)
class SearchConfig:
    """Settings of the evolutionary search (and the seed/ladder overrides every selector honours)."""

    population: int = option(50, "candidates per generation.")
    generations: int = option(50, "generations per interior ladder ratio (0 < r < 1).")
    seed: int | None = option(None, "overrides ``SelectionProblem.seed`` when set.")
    mutation_rate: float = option(
        0.1,
        "per-layer probability that a child moves one 4-bit flag inside that layer (at least one "
        "layer is always mutated).")
    crossover_rate: float = option(
        0.9,
        "probability that a child mixes two parents (otherwise it copies one).")
    elite_count: int = option(
        2,
        "best candidates carried over unchanged; they are evaluated on the full set.")
    tournament_size: int = option(3, "candidates drawn per parent selection.")
    ladder: tuple[float, ...] | None = option(None, "overrides ``SelectionProblem.ladder`` when set.")
    subset_sizes: tuple[int, ...] = option(
        (8, 16, 32),
        "calibration samples used to rank the population, one entry per equal phase of the "
        "generations (0 = the full set; sizes at or above the set's size mean the full set). Elites "
        "are always scored on the full set, and only full-set scores pick the result.")
    patience: int | None = option(
        None,
        "stop a ladder ratio's search after this many generations without improvement of the held-out "
        "fitness (or the calibration fitness without held-out data); None = never.")
    screening: str = option(
        "surrogate",
        "how the population is ranked between generations. \"surrogate\": the linearized output model "
        "(`select/surrogate.py`: one simulation run per item on `surrogate_samples` samples, then a "
        "matrix product per candidate); \"subsets\": the real simulation on `subset_sizes` samples. "
        "Either way elites are scored by the real simulation on the full set and only those scores "
        "pick the result. \"surrogate\" needs the mask evaluator; with any other fitness the search "
        "falls back to \"subsets\" (logged).", choices=SCREENINGS)
    surrogate_samples: int = option(32, "calibration samples the linearized output model is measured on.")
    guard_confidence: float = option(
        0.95,
        "a search candidate replaces the heuristic baseline (or an earlier validated candidate) only "
        "when its per-sample held-out distances are lower in a paired one-sided test at this "
        "confidence; 0 = any lower mean wins. 0.95 rather than 0.9: the guard is consulted each time "
        "the calibration best improves (several times per ratio), and its samples come from the same "
        "sources as the fitness samples, so one test overstates how well a gain carries to new data "
        "(docs/selection.md).")
    guard_top1: bool = option(
        True,
        "for classifier outputs, a search candidate that passes the paired test must also keep the "
        "INT8 model's top-1 class on at least as many held-out samples as the set it replaces (the L2 "
        "fitness is a proxy; top-1 agreement is what users compare).")
    within_next_greedy: bool = option(
        True,
        "keep each ladder ratio's set inside the greedy set of the next ladder ratio (on top of the "
        "locked items). The search then never changes the baseline the next ratio starts from, so a "
        "gain at one ratio is not paid for at the higher ones (the nested order would otherwise carry "
        "a lower ratio's choices upwards).")
    mixquant_qems: tuple[float, ...] = option(
        (4.0, 16.0, 64.0, 256.0, 1024.0),
        "QEMs at which the MixQuant selector reports its own 2..8-bit allocation (search log and "
        "report); its 4/8-bit order does not depend on them.")
    checkpoint_path: str | None = option(
        None,
        "JSON file written after every generation; an existing one is resumed.")
    preset: str = option(
        "paper",
        "named settings to start from (recorded in logs and checkpoints): paper (population 50 x 50 "
        "generations per ladder ratio, the population ranked by the linearized output model, elites by "
        "the real simulation), paper-exact (the same, every candidate through the real simulation on "
        "calibration subsets; several times slower) or fast (24 x 25, early stopping); other search "
        "options override the preset's values (docs/selection.md)",
        choices=_preset_names, flags=("--preset",))

    def __post_init__(self) -> None:
        checks = [
            (self.population >= 2, f"population={self.population} must be >= 2"),
            (self.generations >= 0, f"generations={self.generations} must be >= 0"),
            (0.0 <= self.mutation_rate <= 1.0, f"mutation_rate={self.mutation_rate} must be in [0, 1]"),
            (0.0 <= self.crossover_rate <= 1.0, f"crossover_rate={self.crossover_rate} must be in [0, 1]"),
            (0 <= self.elite_count < self.population,
             f"elite_count={self.elite_count} must be in [0, population={self.population})"),
            (self.tournament_size >= 1, f"tournament_size={self.tournament_size} must be >= 1"),
            (all(s >= 0 for s in self.subset_sizes), f"subset_sizes={self.subset_sizes} must be >= 0"),
            (self.patience is None or self.patience >= 1, f"patience={self.patience} must be >= 1 or None"),
            (self.screening in SCREENINGS, f"screening={self.screening!r} must be one of {SCREENINGS}"),
            (self.surrogate_samples >= 1, f"surrogate_samples={self.surrogate_samples} must be >= 1"),
            (0.0 <= self.guard_confidence < 1.0, f"guard_confidence={self.guard_confidence} must be in [0, 1)"),
            (all(q >= 1.0 for q in self.mixquant_qems), f"mixquant_qems={self.mixquant_qems} must be >= 1"),
            (self.ladder is None or all(0.0 <= r <= 1.0 for r in self.ladder),
             f"ladder={self.ladder} must lie in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"SearchConfig: {message}")

    def with_overrides(self, **kwargs: object) -> SearchConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **kwargs)

    def fingerprint(self) -> dict:
        """The fields that change a search's result (a checkpoint must match them to be resumed)."""
        d = asdict(self)
        for key in ("checkpoint_path", "preset", "mixquant_qems"):
            d.pop(key)
        d["ladder"] = list(self.ladder) if self.ladder is not None else None
        d["subset_sizes"] = list(self.subset_sizes)
        return d


# "fast" trades evaluations for time, visibly: about a quarter of the paper's evaluations per ratio,
# smaller subsets and early stopping (on held-out fitness when the pipeline provides it).
PRESETS: dict[str, SearchConfig] = {
    "paper": SearchConfig(),
    "paper-exact": SearchConfig(screening="subsets", preset="paper-exact"),
    "fast": SearchConfig(population=24, generations=25, subset_sizes=(4, 8, 16), patience=8, preset="fast"),
}


def preset(name: str, **overrides: object) -> SearchConfig:
    """The named preset, optionally with some fields overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown search preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name].with_overrides(**overrides) if overrides else PRESETS[name]
