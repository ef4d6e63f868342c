"""The search space of channel selection: flat (layer, group) items and the genetic operators on them.

A chromosome is one bool flag per item (True = 4-bit). Items are laid out layer by layer, so a
layer is a contiguous slice; ``locked`` items (chosen at a lower ladder ratio) are True in every
candidate and never touched, which is how the nested constraint is kept during the search. An
optional ``allowed`` mask bounds a ratio's set from above (items outside it stay False); the search
uses it to keep each set inside the next ratio's greedy set (`select/evolutionary.py`).
Every operator also keeps the padding rule of `flexiq_trt.select.padding` (a layer's padded group
is chosen only together with all its other groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flexiq_trt.select.base import SelectionProblem
from flexiq_trt.select.padding import tail_last, tail_mask


@dataclass(frozen=True)
class ItemSpace:
    """Flat item index <-> (layer position, group), with each item's MACs and greedy cost."""

    macs: np.ndarray  # float64 [I]
    cost: np.ndarray  # float64 [I], error score per MAC (lower = better 4-bit candidate)
    layer_of: np.ndarray  # int64 [I]
    offsets: np.ndarray  # int64 [L + 1], layer l owns items offsets[l]:offsets[l + 1]
    tail: np.ndarray  # bool [I], the layers' padded groups (4-bit only after the rest of the layer)
    value_range: np.ndarray  # float64 [I], activation value range of each group (the range order's key)

    @classmethod
    def from_problem(cls, problem: SelectionProblem) -> ItemSpace:
        """Lay out every (layer, group) item of `problem` in layer order."""
        macs = np.concatenate([np.asarray(lg.group_macs, dtype=np.float64) for lg in problem.layers])
        err = np.concatenate([np.asarray(lg.error_score, dtype=np.float64) for lg in problem.layers])
        counts = [lg.group_count for lg in problem.layers]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        layer_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        ranges = np.concatenate([np.asarray(lg.value_range, dtype=np.float64) for lg in problem.layers])
        return cls(macs, error_per_mac(err, macs), layer_of, offsets, tail_mask(problem.layers, offsets), ranges)

    @property
    def size(self) -> int:
        """Number of items."""
        return int(self.macs.shape[0])

    @property
    def layer_count(self) -> int:
        """Number of layers."""
        return int(self.offsets.shape[0] - 1)

    def item(self, flat: int) -> tuple[int, int]:
        """(layer position, group) of a flat index."""
        layer = int(self.layer_of[flat])
        return layer, int(flat - self.offsets[layer])

    def to_masks(self, flags: np.ndarray) -> list[np.ndarray]:
        """Per-layer bool masks (the fitness callback's argument)."""
        return [flags[self.offsets[layer]: self.offsets[layer + 1]].copy() for layer in range(self.layer_count)]

    def greedy_rank(self) -> np.ndarray:
        """Flat indices by ascending cost (ties: layer order, then group order).

        Padded groups come after their layer's other groups.
        """
        return np.asarray(self.tail_last([int(i) for i in np.argsort(self.cost, kind="stable")]), dtype=np.int64)

    def range_rank(self) -> np.ndarray:
        """Flat indices by ascending value range, padded groups after their layer's others."""
        return np.asarray(self.tail_last([int(i) for i in np.argsort(self.value_range, kind="stable")]),
                          dtype=np.int64)

    def tail_last(self, order: list[int]) -> list[int]:
        """`order` with every padded item moved after its layer's other items."""
        return tail_last(order, self.tail, self.layer_of)

    def missing_per_layer(self, flags: np.ndarray) -> np.ndarray:
        """Int [I]: how many groups of the item's layer are not chosen."""
        return np.bincount(self.layer_of[~flags], minlength=self.layer_count)[self.layer_of]

    def removable(self, flags: np.ndarray, locked: np.ndarray) -> np.ndarray:
        """Bool [I]: chosen, unlocked items whose removal keeps the padding rule."""
        tail_on = np.zeros(self.layer_count, dtype=bool)
        tail_on[self.layer_of[flags & self.tail]] = True
        return flags & ~locked & (self.tail | ~tail_on[self.layer_of])

    def addable(self, flags: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
        """Bool [I]: unchosen (allowed) items whose addition keeps the padding rule."""
        out = ~flags & (~self.tail | (self.missing_per_layer(flags) == 1))
        return out if allowed is None else out & allowed

    def canonical(self, flags: np.ndarray, locked: np.ndarray, rng: np.random.Generator,
                  allowed: np.ndarray | None = None) -> np.ndarray:
        """Fix padding-rule violations, keeping every layer's count.

        A chosen padded group of an incomplete layer is swapped for a random unchosen (allowed) group of it.
        """
        flags = flags.copy()
        for t in np.flatnonzero(flags & self.tail & (self.missing_per_layer(flags) > 0)):
            sl = slice(self.offsets[self.layer_of[t]], self.offsets[self.layer_of[t] + 1])
            open_ = ~flags[sl] & ~self.tail[sl]
            if allowed is not None:
                open_ &= allowed[sl]
            off = np.flatnonzero(open_) + sl.start
            if off.size == 0:  # no allowed group to swap to: drop the padded group instead
                flags[t] = bool(locked[t])
                continue
            if not locked[t]:
                flags[t] = False
            flags[int(rng.choice(off))] = True
        return flags

    def budget(self, ratio: float) -> float:
        """MACs a ratio must cover, with the same tolerance as `GlobalOrder.prefix_length`."""
        total = float(self.macs.sum())
        return ratio * total - 1e-9 * total


def error_per_mac(error: np.ndarray, macs: np.ndarray) -> np.ndarray:
    """Error / MACs; a zero-MAC group costs 0 when harmless and +inf otherwise."""
    out = np.zeros_like(error, dtype=np.float64)
    pos = macs > 0
    out[pos] = error[pos] / macs[pos]
    out[~pos & (error > 0)] = np.inf
    return out


def repair(flags: np.ndarray, locked: np.ndarray, budget: float, space: ItemSpace,
           rng: np.random.Generator, allowed: np.ndarray | None = None) -> np.ndarray:
    """Bring a candidate onto the MAC budget (cost-biased random additions/removals of unlocked items).

    Afterwards its MACs are >= `budget` and dropping any single unlocked item would fall below it,
    so it overshoots by less than one group's MACs and the prefix at that ratio is exactly this set.
    Items outside `allowed` are removed first and never added.
    """
    flags = flags | locked if allowed is None else (flags & allowed) | locked
    flags = space.canonical(flags, locked, rng, allowed)
    total = float(space.macs[flags].sum())
    total = _drop_surplus(flags, locked, budget, total, space, rng)
    while total < budget:
        free = np.flatnonzero(space.addable(flags, allowed))
        if free.size == 0:
            break
        i = _pick(free, space.cost, rng, lowest=True)
        flags[i] = True
        total += float(space.macs[i])
    _drop_surplus(flags, locked, budget, total, space, rng)
    return flags


REPAIR_TOURNAMENT = 3


def _pick(candidates: np.ndarray, cost: np.ndarray, rng: np.random.Generator, lowest: bool) -> int:
    """A small tournament on the error-per-MAC estimate.

    Repair thus leans on the estimate (adds cheap items, drops costly ones) but stays random enough
    to explore.
    """
    drawn = rng.choice(candidates, size=min(REPAIR_TOURNAMENT, candidates.size), replace=False)
    key = cost[drawn] if lowest else -cost[drawn]
    return int(drawn[int(np.argmin(key))])


def _drop_surplus(flags: np.ndarray, locked: np.ndarray, budget: float, total: float,
                  space: ItemSpace, rng: np.random.Generator) -> float:
    """Remove unlocked items (costly ones preferred) while the set still covers the budget; returns the total."""
    while True:
        chosen = np.flatnonzero(space.removable(flags, locked))
        removable = chosen[space.macs[chosen] <= total - budget]
        if removable.size == 0:
            return total
        i = _pick(removable, space.cost, rng, lowest=False)
        flags[i] = False
        total -= float(space.macs[i])


def greedy_fill(locked: np.ndarray, budget: float, space: ItemSpace) -> np.ndarray:
    """The greedy candidate: the locked set plus the cheapest items until the budget is covered."""
    return ordered_fill(locked, budget, space, space.greedy_rank())


def ordered_fill(locked: np.ndarray, budget: float, space: ItemSpace, rank: np.ndarray) -> np.ndarray:
    """The locked set plus items in `rank` order until the budget is covered.

    `rank` must put padded groups after their layer's others; added items the budget turns out not
    to need are dropped again (last added first).
    """
    flags = locked.copy()
    total = float(space.macs[flags].sum())
    added: list[int] = []
    for i in rank:
        if total >= budget:
            break
        if not flags[i]:
            flags[i] = True
            total += float(space.macs[i])
            added.append(int(i))
    for i in reversed(added):
        if total - space.macs[i] >= budget and space.removable(flags, locked)[i]:
            flags[i] = False
            total -= float(space.macs[i])
    return flags


def crossover(a: np.ndarray, b: np.ndarray, space: ItemSpace, rng: np.random.Generator) -> np.ndarray:
    """Uniform crossover at layer boundaries: each layer's flags come whole from one parent."""
    from_a = rng.random(space.layer_count) < 0.5
    return np.where(from_a[space.layer_of], a, b)


def mutate(flags: np.ndarray, locked: np.ndarray, rate: float, space: ItemSpace,
           rng: np.random.Generator, allowed: np.ndarray | None = None) -> np.ndarray:
    """Inside each picked layer move one 4-bit flag to an unchosen (allowed) group (the layer's count stays)."""
    flags = flags.copy()
    free = ~locked & ~space.tail  # a padded group follows its layer, it is never moved on its own
    if allowed is not None:
        free &= allowed
    movable = [layer for layer in range(space.layer_count) if _layer_can_move(flags, free, space, layer)]
    if not movable:
        return flags
    picked = [layer for layer in movable if rng.random() < rate]
    if not picked:
        picked = [movable[int(rng.integers(len(movable)))]]
    for layer in picked:
        sl = slice(space.offsets[layer], space.offsets[layer + 1])
        on = np.flatnonzero(flags[sl] & free[sl]) + space.offsets[layer]
        off = np.flatnonzero(~flags[sl] & free[sl]) + space.offsets[layer]
        flags[int(rng.choice(on))] = False
        flags[int(rng.choice(off))] = True
    return flags


def _layer_can_move(flags: np.ndarray, free: np.ndarray, space: ItemSpace, layer: int) -> bool:
    sl = slice(space.offsets[layer], space.offsets[layer + 1])
    return bool(np.any(flags[sl] & free[sl]) and np.any(~flags[sl] & free[sl]))


def perturb(flags: np.ndarray, locked: np.ndarray, swaps: int, space: ItemSpace,
            rng: np.random.Generator, allowed: np.ndarray | None = None) -> np.ndarray:
    """Swap `swaps` chosen unlocked items for unchosen (allowed) ones anywhere (moves MACs across layers)."""
    flags = flags.copy()
    on = np.flatnonzero(flags & ~locked)
    off = np.flatnonzero(~flags if allowed is None else ~flags & allowed)
    k = min(swaps, on.size, off.size)
    if k:
        flags[rng.choice(on, size=k, replace=False)] = False
        flags[rng.choice(off, size=k, replace=False)] = True
    return flags
