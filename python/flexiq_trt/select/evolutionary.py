"""FlexiQ's evolutionary channel selection, searched up the ratio ladder into one nested global order.

For each interior ladder ratio (ascending) a genetic algorithm picks the 4-bit items on top of the
set already fixed at the previous ratio (the *locked* items), so every set contains the previous
one. The items added between two ladder points are ordered by how often they appear in the final
population (ties: error score per MAC; a padded group after its layer's others), and the items
above the top ratio follow in greedy order.

Cheap ranking: the population is ranked by the linearized output model (``select/surrogate.py``,
``screening="surrogate"``, the default) or by the real simulation on calibration subsets
(``"subsets"``); either way only the elites are scored by the real simulation on the full fitness
set, and only those scores can make a candidate the result.

Guarding against fitting the calibration set (docs/design.md §2, measured guidance): with
``problem.holdout_fitness`` the calibration-best candidates are validated on held-out data; the
search result replaces the heuristic baseline only when its held-out distances are lower in a
paired one-sided test (``guard_confidence``) and, for classifiers, keeps the INT8 model's top-1 class
on at least as many held-out samples (``guard_top1``).
"""

from __future__ import annotations

import time
from statistics import NormalDist

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.log import get_logger
from flexiq_trt.select import checkpoint as ckpt
from flexiq_trt.select.base import GlobalOrder, SelectionProblem
from flexiq_trt.select.checkpoint import RunState, SearchState, flags_to_list, list_to_flags
from flexiq_trt.select.chromosome import (
    ItemSpace,
    crossover,
    greedy_fill,
    mutate,
    ordered_fill,
    perturb,
    repair,
)
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.select.fitness import CachedFitness, effective_subset
from flexiq_trt.select.surrogate import LinearizedFitness, build_item_responses, supports_responses

logger = get_logger(__name__)
_PROGRESS_INTERVAL_S = 5.0
SURROGATE = -1  # RunState.pop_n of a population ranked by the linearized output model


class EvolutionarySelector:
    """The default selector (see module docstring); settings come from a `SearchConfig`."""

    name = "evolutionary"

    def __init__(self, config: SearchConfig | None = None):
        self.config = config or SearchConfig()

    def select(self, problem: SelectionProblem) -> GlobalOrder:
        """Run (or resume) the search and return the global priority order."""
        if problem.fitness is None:
            raise ConfigError("the evolutionary selector needs a fitness function (calibration data and the "
                              "simulation model); use --selector greedy to select without one")
        return _Search(problem, self.config).run()


def interior_ladder(ladder: tuple[float, ...]) -> tuple[float, ...]:
    """The ratios that need a search: strictly between 0 and 1, ascending, without duplicates."""
    return tuple(sorted({float(r) for r in ladder if 0.0 < r < 1.0}))


class _Search:
    """One search over the whole ladder; owns the state that the checkpoint stores."""

    def __init__(self, problem: SelectionProblem, config: SearchConfig):
        self.cfg = config
        self.space = ItemSpace.from_problem(problem)
        self.seed = int(config.seed if config.seed is not None else problem.seed)
        self.ladder = interior_ladder(config.ladder if config.ladder is not None else problem.ladder)
        self.fit = CachedFitness(problem.fitness, self.space)
        self.holdout = CachedFitness(problem.holdout_fitness, self.space) if problem.holdout_fitness else None
        self.fingerprint = ckpt.problem_fingerprint(self.space, self.ladder, self.seed, config.fingerprint())
        self._last_progress = time.monotonic()
        self.surrogate: LinearizedFitness | None = None
        self._guard_cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray | None]] = {}
        self.screening = config.screening
        if self.screening == "surrogate" and not supports_responses(problem.fitness):
            logger.info("the fitness offers no raw outputs for the linearized output model: ranking the "
                        "population on calibration subsets instead")
            self.screening = "subsets"

    # ----------------------------------------------------------------------------------- driver
    def run(self) -> GlobalOrder:
        state = self._load() or SearchState()
        while len(state.segments) < len(self.ladder):
            ratio = self.ladder[len(state.segments)]
            locked = list_to_flags([i for seg in state.segments for i in seg], self.space.size)
            budget = self.space.budget(ratio)
            if state.run is None and float(self.space.macs[locked].sum()) >= budget:
                state.segments.append([])  # the previous set already covers this ratio
                state.log.append({"event": "ratio_covered", "ratio": ratio})
                self._save(state)
                continue
            allowed = self._allowed(len(state.segments), locked)
            if state.run is None:
                state.run = self._start(ratio, len(state.segments), locked, budget, allowed, state.log)
                self._save(state)
            else:  # resumed mid-ratio: the same anchored model again (it is deterministic)
                self._anchor_surrogate(state.run.ratio, list_to_flags(state.run.greedy, self.space.size),
                                       allowed & ~locked, state.log)
            while not state.run.done:
                self._generation(state.run, locked, budget, allowed, state.log)
                self._save(state)
            state.segments.append(self._finish(state.run, locked, state.log))
            state.run = None
            self._save(state)
        return GlobalOrder(self._full_order(state.segments), EvolutionarySelector.name, list(state.log))

    def _allowed(self, position: int, locked: np.ndarray) -> np.ndarray:
        """Items the set at ladder `position` may hold: all, or (`within_next_greedy`) the next ratio's greedy set.

        Keeping every set inside the greedy set of the next ladder ratio means the search never changes
        the baseline the next ratio starts from: that greedy fill on top of this set is (up to the group
        at the budget boundary) greedy's own set there. So a gain at one ratio cannot be paid for at the
        higher ones, and the top ratio starts from greedy's own set (docs/selection.md).
        """
        if not self.cfg.within_next_greedy or position + 1 >= len(self.ladder):
            return np.ones(self.space.size, dtype=bool)
        return greedy_fill(locked, self.space.budget(self.ladder[position + 1]), self.space) | locked

    def _anchor_surrogate(self, ratio: float, anchor: np.ndarray, free_flags: np.ndarray, log: list[dict]) -> None:
        """Measure the linearized output model around this ratio's baseline set (its free items only)."""
        if self.screening != "surrogate":
            return
        start = time.monotonic()
        free = np.flatnonzero(free_flags)
        responses = build_item_responses(self.fit.fitness, self.space, self.cfg.surrogate_samples, anchor=anchor,
                                         items=free, seed=self.seed, label=f" at {ratio:.3f}")
        self.surrogate = LinearizedFitness(responses)
        seconds = time.monotonic() - start
        logger.info("ratio %.3f: linearized output model from %d item responses on %d samples in %.1f s",
                    ratio, len(free), responses.num_samples, seconds)
        if not any(e.get("event") == "screening" and e.get("ratio") == ratio for e in log):
            log.append({"event": "screening", "kind": "surrogate", "ratio": ratio, "items": int(len(free)),
                        "samples": responses.num_samples, "seconds": round(seconds, 2)})

    def _screen(self, population: list[np.ndarray], n: int | None) -> list[float]:
        """Ranking fitness of a population: the linearized model, or the real one on `n` samples."""
        if n == SURROGATE:
            assert self.surrogate is not None
            return self.surrogate.many(population)
        return self.fit.many(population, n)

    def _full_order(self, segments: list[list[int]]) -> list[tuple[int, int]]:
        flat = [i for seg in segments for i in seg]
        taken = set(flat)
        flat += [int(i) for i in self.space.greedy_rank() if int(i) not in taken]
        return [self.space.item(i) for i in flat]

    def _load(self) -> SearchState | None:
        if self.cfg.checkpoint_path is None:
            return None
        state = ckpt.load(self.cfg.checkpoint_path, self.fingerprint)
        if state is not None:
            logger.info("resuming the selection search from %s (%d ladder ratios done)",
                        self.cfg.checkpoint_path, len(state.segments))
        return state

    def _save(self, state: SearchState) -> None:
        if self.cfg.checkpoint_path is not None:
            ckpt.save(self.cfg.checkpoint_path, self.fingerprint, state)

    # ------------------------------------------------------------------------- one ladder ratio
    def _subset(self, generation: int) -> int | None:
        if self.screening == "surrogate":
            return SURROGATE
        sizes = self.cfg.subset_sizes or (0,)
        # generation 0 (the initial population) .. G share the phases equally
        phase = min(generation * len(sizes) // (self.cfg.generations + 1), len(sizes) - 1)
        return effective_subset(self.fit.fitness, sizes[phase])

    def _start(self, ratio: float, position: int, locked: np.ndarray, budget: float, allowed: np.ndarray,
               log: list[dict]) -> RunState:
        """Initial population: the greedy and range-order candidates, then perturbations.

        The perturbations of the greedy candidate go from light (1 swap) to heavy. The range order
        fills from the allowed items only (the greedy fill is inside them by construction).
        """
        rng = np.random.default_rng([self.seed, position])
        greedy = greedy_fill(locked, budget, self.space)
        if np.any(greedy & ~allowed):  # the next ratio's greedy fill dropped some of this one's items again
            rank = self.space.greedy_rank()  # (its last item overshot): fill from the allowed items, as range does
            greedy = ordered_fill(locked, budget, self.space, rank[allowed[rank]])
        range_rank = self.space.range_rank()
        by_range = ordered_fill(locked, budget, self.space, range_rank[allowed[range_rank]])
        free_chosen = int(np.count_nonzero(greedy & ~locked))
        population = [greedy] + ([by_range] if not np.array_equal(by_range, greedy) else [])
        for i in range(len(population), self.cfg.population):
            swaps = 1 + (i * max(1, free_chosen // 2)) // self.cfg.population
            population.append(repair(perturb(greedy, locked, swaps, self.space, rng, allowed), locked, budget,
                                     self.space, rng, allowed))
        name, base, base_full, base_guard = self._baseline(greedy, by_range)
        self._anchor_surrogate(ratio, base, allowed & ~locked, log)
        n = self._subset(0)
        pop_fit = self._screen(population, n)
        b = flags_to_list(base)
        run = RunState(ratio=ratio, generation=0, rng_state=rng.bit_generator.state,
                       population=[flags_to_list(p) for p in population], pop_fit=pop_fit, pop_n=n,
                       best_full=base_full, best=b, guard_value=base_guard, guard=b, greedy=b,
                       greedy_full=base_full, greedy_guard=base_guard, baseline=name,
                       done=self.cfg.generations == 0)
        self._score_elites(run, population, pop_fit)
        run.since_improve = 0
        self._log_generation(run, log, 0.0)
        return run

    def _baseline(self, greedy: np.ndarray, by_range: np.ndarray) -> tuple[str, np.ndarray, float, float]:
        """The heuristic set the search must beat: (name, flags, calibration fitness, guard fitness).

        Greedy or range order, whichever is better on the guard (held-out fitness, else calibration).
        """
        scored = []
        for name, flags in (("greedy", greedy), ("range", by_range)):
            full = self.fit(flags, None)
            scored.append((self.holdout(flags, None) if self.holdout else full, name, flags, full))
        guard, name, flags, full = min(scored, key=lambda t: (t[0], t[1]))
        return name, flags, full, guard

    def _generation(self, run: RunState, locked: np.ndarray, budget: float, allowed: np.ndarray,
                    log: list[dict]) -> None:
        """One generation: elites survive, children come from tournaments, crossover, mutation, repair."""
        start = time.monotonic()
        rng = np.random.default_rng()
        rng.bit_generator.state = run.rng_state
        size = self.space.size
        population = [list_to_flags(p, size) for p in run.population]
        n = self._subset(run.generation + 1)
        fits = run.pop_fit if n == run.pop_n else self._screen(population, n)
        rank = np.argsort(np.asarray(fits), kind="stable")
        elites = [population[i] for i in rank[: self.cfg.elite_count]]
        new_pop, new_fit = list(elites), [fits[i] for i in rank[: self.cfg.elite_count]]
        seen = {p.tobytes() for p in new_pop}
        children = []
        while len(new_pop) + len(children) < self.cfg.population:
            child = self._child(population, fits, locked, budget, allowed, rng, seen)
            seen.add(child.tobytes())
            children.append(child)
        new_pop += children
        new_fit += self._screen(children, n)  # one batch: the callback may evaluate them together
        self._score_elites(run, new_pop, new_fit)
        run.population = [flags_to_list(p) for p in new_pop]
        run.pop_fit, run.pop_n = new_fit, n
        run.generation += 1
        run.rng_state = rng.bit_generator.state
        patience_out = self.cfg.patience is not None and run.since_improve >= self.cfg.patience
        run.done = run.generation >= self.cfg.generations or patience_out
        self._log_generation(run, log, time.monotonic() - start)
        if patience_out:
            log.append({"event": "early_stop", "ratio": run.ratio, "generation": run.generation})

    def _child(self, population: list[np.ndarray], fits: list[float], locked: np.ndarray, budget: float,
               allowed: np.ndarray, rng: np.random.Generator, seen: set[bytes]) -> np.ndarray:
        """A new candidate, retried a few times to avoid duplicating one already in the generation."""
        child = population[0]
        for _ in range(4):
            a = population[self._tournament(fits, rng)]
            if rng.random() < self.cfg.crossover_rate:
                child = crossover(a, population[self._tournament(fits, rng)], self.space, rng)
            else:
                child = a.copy()
            child = repair(mutate(child, locked, self.cfg.mutation_rate, self.space, rng, allowed), locked, budget,
                           self.space, rng, allowed)
            if child.tobytes() not in seen:
                break
        return child

    def _tournament(self, fits: list[float], rng: np.random.Generator) -> int:
        k = min(self.cfg.tournament_size, len(fits))
        drawn = rng.choice(len(fits), size=k, replace=False)
        return int(min(drawn, key=lambda i: (fits[i], i)))

    def _score_elites(self, run: RunState, population: list[np.ndarray], fits: list[float]) -> None:
        """Full-set fitness for the best few; held-out validation when the calibration best improves."""
        improved = False
        for i in np.argsort(np.asarray(fits), kind="stable")[: max(1, self.cfg.elite_count)]:
            value = self.fit(population[i], None)
            if value < run.best_full:
                run.best_full, run.best = value, flags_to_list(population[i])
                improved = True
        if improved and self.holdout is not None:
            improved, value = self._guard_accepts(run.best, run.guard, run.guard_value)
            run.guard_tests += 1
            if improved:
                run.guard_passed += 1
                run.guard_value, run.guard = value, list(run.best)
        elif improved:
            run.guard_value, run.guard = run.best_full, list(run.best)
        run.since_improve = 0 if improved else run.since_improve + 1

    def _guard_accepts(self, candidate: list[int], current: list[int], current_value: float) -> tuple[bool, float]:
        """Whether `candidate` beats the current choice on held-out data, and its held-out fitness.

        With per-sample distances (the mask evaluator) the test is paired and one-sided at
        `guard_confidence`, so a difference the guard samples cannot resolve keeps the current set.
        """
        assert self.holdout is not None
        if not hasattr(self.holdout.fitness, "distances") or self.cfg.guard_confidence <= 0.0:
            value = self.holdout(list_to_flags(candidate, self.space.size), None)
            return value < current_value, value
        new, new_top1 = self._guard_distances(candidate)
        value = float(np.mean(new))  # what the evaluator's own call returns: one guard run, not two
        if value >= current_value:
            return False, value
        old, old_top1 = self._guard_distances(current)
        diff = new - old
        if diff.size >= 2:
            spread = float(np.std(diff, ddof=1)) / np.sqrt(diff.size)
            z = NormalDist().inv_cdf(self.cfg.guard_confidence)
            if spread > 0.0 and float(np.mean(diff)) > -z * spread:
                return False, value
        if self.cfg.guard_top1 and new_top1 is not None and old_top1 is not None \
                and np.count_nonzero(new_top1) < np.count_nonzero(old_top1):
            logger.info("a search set with a lower held-out distance (%.5g < %.5g) keeps the top-1 class of fewer "
                        "guard samples (%d < %d of %d): not taken", value, current_value,
                        np.count_nonzero(new_top1), np.count_nonzero(old_top1), new_top1.size)
            return False, value
        return True, value

    def _guard_distances(self, items: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-sample held-out distances (and top-1 matches) of a set, remembered: the current choice recurs."""
        key = tuple(items)
        if key not in self._guard_cache:
            if len(self._guard_cache) >= 16:
                self._guard_cache.clear()
            masks = self.space.to_masks(list_to_flags(items, self.space.size))
            fitness = self.holdout.fitness  # type: ignore[union-attr]
            if hasattr(fitness, "distances_and_top1"):
                self._guard_cache[key] = fitness.distances_and_top1(masks)
            else:
                self._guard_cache[key] = (np.asarray(fitness.distances(masks)), None)
        return self._guard_cache[key]

    def _finish(self, run: RunState, locked: np.ndarray, log: list[dict]) -> list[int]:
        """The ratio's set (the validated candidate) and the order of the items it adds."""
        kept = run.guard == run.greedy
        event = {"event": "ratio_result", "ratio": run.ratio, "chosen": run.baseline if kept else "search",
                 "calib_fitness_best": run.best_full, "calib_fitness_greedy": run.greedy_full,
                 "generations": run.generation,
                 "int8_prefix_share": self._int8_prefix_share(run.population)}
        if self.holdout is not None:
            event.update(holdout_fitness_chosen=run.guard_value, holdout_fitness_greedy=run.greedy_guard,
                         guard_tests=run.guard_tests, guard_passed=run.guard_passed)
        log.append(event)
        if kept and run.best != run.greedy and self.holdout is not None:
            logger.info("ratio %.3f: the search improved calibration fitness (%.5g -> %.5g) but not held-out "
                        "fitness; keeping the %s set", run.ratio, run.greedy_full, run.best_full, run.baseline)
        chosen = list_to_flags(run.guard, self.space.size)
        new = np.flatnonzero(chosen & ~locked)
        counts = np.zeros(self.space.size)
        for p in run.population:
            counts[np.asarray(p, dtype=np.int64)] += 1
        order = np.lexsort((new, self.space.cost[new], -counts[new]))
        return self.space.tail_last([int(i) for i in new[order]])

    def _int8_prefix_share(self, population: list[list[int]]) -> float:
        """Mean share of eligible MACs (layers in model order) before a candidate's first 4-bit layer.

        It bounds what reusing INT8 activations up to the first changed layer could save; logged so
        the decision not to split the graph (docs/selection.md) is checked on every model.
        """
        layer_macs = np.add.reduceat(self.space.macs, self.space.offsets[:-1])
        before = np.concatenate([[0.0], np.cumsum(layer_macs)]) / max(float(self.space.macs.sum()), 1e-30)
        firsts = [int(self.space.layer_of[min(p)]) if p else self.space.layer_count for p in population]
        return round(float(np.mean(before[firsts])), 6)

    def _log_generation(self, run: RunState, log: list[dict], seconds: float) -> None:
        entry = {"ratio": run.ratio, "generation": run.generation, "best": run.best_full,
                 "mean": float(np.mean(run.pop_fit)), "subset_best": float(np.min(run.pop_fit)),
                 "n_samples": "surrogate" if run.pop_n == SURROGATE else run.pop_n, "seconds": round(seconds, 4)}
        if self.holdout is not None:
            entry["best_holdout"] = run.guard_value
        log.append(entry)
        logger.debug("selection ratio %.3f gen %d: best %.6g mean %.6g", run.ratio, run.generation,
                     run.best_full, entry["mean"])
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_INTERVAL_S or run.generation == 0:
            self._last_progress = now
            logger.info("selection ratio %.3f: generation %d/%d, best fitness %.6g, %d evaluations so far",
                        run.ratio, run.generation, self.cfg.generations, run.best_full, self.fit.calls)
