"""Selectors by name: the one place the CLI's ``--selector`` choices come from."""

from __future__ import annotations

from flexiq_trt.errors import ConfigError
from flexiq_trt.select.base import Selector
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.select.evolutionary import EvolutionarySelector
from flexiq_trt.select.mixquant import MixQuantSelector
from flexiq_trt.select.simple import GreedySelector, RandomSelector, RangeSelector

DEFAULT_SELECTOR = "evolutionary"

SELECTORS: dict[str, type] = {
    "evolutionary": EvolutionarySelector,
    "greedy": GreedySelector,
    "range": RangeSelector,
    "random": RandomSelector,
    "mixquant": MixQuantSelector,
}

# Selectors that call SelectionProblem.fitness (the pipeline builds the evaluator only for these).
NEEDS_FITNESS = frozenset({"evolutionary"})


def selector_names() -> tuple[str, ...]:
    """Registered names, the default first (for argparse ``choices``)."""
    return (DEFAULT_SELECTOR, *sorted(n for n in SELECTORS if n != DEFAULT_SELECTOR))


def create_selector(name: str, config: SearchConfig | None = None) -> Selector:
    """An instance of the named selector; every selector takes an optional `SearchConfig`."""
    if name not in SELECTORS:
        raise ConfigError(f"unknown selector {name!r}; choose one of {', '.join(selector_names())}")
    return SELECTORS[name](config)
