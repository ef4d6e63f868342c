"""The linearized output model that ranks the search's population ("surrogate" screening).

Why: the paper's search scores 50 candidates x 50 generations per ladder ratio. Through the real
simulation that is ~7,500 ONNX Runtime runs per conversion, about 50 minutes for a MobileNetV2 on a
2-core CPU even on calibration subsets (docs/selection.md). Most of those runs only *rank* children
for the next tournament; they do not need to be exact.

What it is: a first-order model of the simulation around an *anchor* set A (the search uses each
ladder ratio's heuristic baseline, which its whole initial population is built around). One
simulation run per free item i, with i toggled in A, measures how that change reaches the model
outputs on S calibration samples: ``d_i = out(A xor i) - out(A)`` (outputs before the softmax). A
candidate C is modelled as ``out(A) + sum of d_i over the items where C and A differ`` and its
distance is computed as the evaluator computes it (softmax of logits, L2 to the INT8 model's).
A itself and A with one item toggled are exact; inside one layer the accumulator changes of several
groups add exactly; across layers the network's nonlinearity makes the sum first order in the
distance from A, which is why the model is anchored near the candidates rather than at INT8.
Unlike the greedy score, it keeps each item's effect as a *vector* at the outputs, so changes that
cancel or reinforce each other (across layers and samples) are seen. It costs one run on S samples
per free item and ladder ratio; afterwards a candidate is one small matrix product.

The search uses it only to rank the population; the elites are scored by the real simulation on the
whole fitness set and only real scores pick the result (`select/evolutionary.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.log import get_logger, progress
from flexiq_trt.select.chromosome import ItemSpace
from flexiq_trt.select.evaluator import softmax

_log = get_logger(__name__)
MAX_RESPONSE_BYTES = 1 << 30  # item responses kept in memory (float32)
SKETCH_DIM = 2048  # linear outputs wider than this are count-sketched (L2 norms kept in expectation)


def supports_responses(fitness: object) -> bool:
    """Whether a fitness offers what `build_item_responses` needs (the mask evaluator does)."""
    return all(hasattr(fitness, a) for a in ("raw_outputs", "reference_raw", "output_segments", "num_samples"))


@dataclass(frozen=True)
class ItemResponses:
    """Each item's effect on the outputs of S samples.

    Attributes:
        deltas: float32 [len(items), S, D]: outputs with the item toggled in the anchor set minus the
            anchor's outputs.
        reference: float64 [S, D]: the INT8 model's outputs (columns as in `deltas`).
        anchor_outputs: float64 [S, D]: the anchor set's outputs.
        anchor: bool [space size]: the anchor set.
        items: the measured (free) items; a candidate may differ from the anchor only there.
        segments: (width, kind) of consecutive column blocks; "softmax" blocks are compared after a
            softmax, "linear" ones as they are (possibly count-sketched to fewer columns).
    """

    deltas: np.ndarray
    reference: np.ndarray
    segments: tuple[tuple[int, str], ...]
    anchor_outputs: np.ndarray
    anchor: np.ndarray
    items: np.ndarray

    @property
    def num_samples(self) -> int:
        """S: the samples each response was measured on."""
        return int(self.deltas.shape[1])


def _sketch(columns: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A count sketch: each column goes to one of `dim` buckets with a random sign."""
    rng = np.random.default_rng([seed, columns, dim])
    return rng.integers(0, dim, columns), rng.choice(np.array([-1.0, 1.0]), columns)


class _Projector:
    """Maps raw output rows [n, D_raw] to the kept columns: softmax blocks as they are, linear ones sketched."""

    def __init__(self, segments: Sequence[tuple[int, str]], sketch_dim: int, seed: int):
        self.parts: list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]] = []
        self.segments: list[tuple[int, str]] = []
        start = 0
        for width, kind in segments:
            sketch = _sketch(width, sketch_dim, seed + start) if kind == "linear" and width > sketch_dim else None
            self.parts.append((start, start + width, sketch))
            self.segments.append((sketch_dim if sketch is not None else width, kind))
            start += width

    @property
    def width(self) -> int:
        return sum(w for w, _ in self.segments)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        blocks = []
        for (lo, hi, sketch), (width, _) in zip(self.parts, self.segments, strict=True):
            block = rows[:, lo:hi]
            if sketch is not None:
                bucket, sign = sketch
                block = np.stack([np.bincount(bucket, weights=sign * r, minlength=width) for r in block])
            blocks.append(block)
        return np.concatenate(blocks, axis=1)


def build_item_responses(evaluator, space: ItemSpace, n_samples: int, *, anchor: np.ndarray | None = None,
                         items: np.ndarray | None = None, seed: int = 0,
                         max_bytes: int = MAX_RESPONSE_BYTES, label: str = "") -> ItemResponses:
    """Run the simulation once per free item (toggled in `anchor`) on the first `n_samples` samples.

    `anchor` defaults to the INT8 model (no item 4-bit), `items` to every item. The items of one
    layer run side by side on the evaluator's `batch_workers` threads, one single-threaded ORT run
    each (one run keeps two cores only partly busy; docs/selection.md), the layers in model order.
    The responses do not depend on it: each run is computed as it would be alone.
    """
    if not supports_responses(evaluator):
        raise ConfigError("the linearized output model needs a fitness with raw outputs (MaskFitnessEvaluator)")
    if n_samples < 1:
        raise ConfigError(f"surrogate_samples={n_samples} must be >= 1")
    projector = _Projector(evaluator.output_segments, SKETCH_DIM, seed)
    anchor = np.zeros(space.size, dtype=bool) if anchor is None else np.asarray(anchor, dtype=bool).copy()
    items = np.arange(space.size) if items is None else np.asarray(items, dtype=np.int64)
    s = min(int(n_samples), int(evaluator.num_samples))
    fit = max(1, max_bytes // max(1, 4 * len(items) * projector.width))
    if fit < s:
        _log.warning("item responses for %d items x %d outputs would exceed %d MiB: using %d samples instead of %d",
                     len(items), projector.width, max_bytes >> 20, fit, s)
        s = fit
    reference = projector(evaluator.reference_raw[:s])
    anchor_out = projector(evaluator.raw_outputs(space.to_masks(anchor), s)) if anchor.any() else reference
    deltas = np.empty((len(items), s, projector.width), dtype=np.float32)
    desc = f"linearized output model{label} ({len(items)} items x {s} samples)"
    anchor_masks = space.to_masks(anchor)
    workers = max(1, int(getattr(evaluator, "batch_workers", 1)))

    def response(run, i: int) -> np.ndarray:
        flags = anchor.copy()
        flags[i] = not flags[i]
        return projector(run(space.to_masks(flags))) - anchor_out

    def measured():  # item responses in `items` order, the items of one layer concurrently
        layers = space.layer_of[items]
        bounds = np.flatnonzero(np.diff(layers)) + 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for block in np.split(np.arange(len(items)), bounds):
                run = _runner(evaluator, int(layers[block[0]]), anchor_masks, s, len(block), workers)
                yield from pool.map(lambda k, run=run: response(run, int(items[k])), block)

    for k, delta in enumerate(progress(measured(), total=len(items), desc=desc, logger=_log)):
        deltas[k] = delta
    if hasattr(evaluator, "release_prefix"):  # the last cut's activations are not needed by the search
        evaluator.release_prefix()
    return ItemResponses(deltas, reference, tuple(projector.segments), anchor_out, anchor, items)


def _runner(evaluator, layer: int, anchor_masks: list[np.ndarray], s: int, count: int, workers: int):
    """Raw outputs for a set that equals the anchor before `layer` (`count` items of that layer to measure).

    Through the evaluator's shared-prefix runner when it has one and the layer has several items to
    measure (the prefix is then computed once), else a whole run. Only the current layer's runner is
    alive, so memory stays at one cut's activations. With several workers each suffix run gets one thread.
    """
    if count > 1 and hasattr(evaluator, "prefix_runner"):
        return evaluator.prefix_runner(layer, anchor_masks, s, **({"threads": 1} if workers > 1 else {}))
    return lambda masks: evaluator.raw_outputs(masks, s)


class LinearizedFitness:
    """Fitness of flag vectors from `ItemResponses` (lower is better, same scale as the evaluator's)."""

    def __init__(self, responses: ItemResponses, chunk: int = 64):
        self.responses, self.chunk = responses, chunk
        items, s, d = responses.deltas.shape
        self._flat = responses.deltas.reshape(items, s * d)
        self._fixed = np.ones(responses.anchor.shape[0], dtype=bool)
        self._fixed[responses.items] = False
        self._ref_probs = []
        start = 0
        for width, kind in responses.segments:
            if kind == "softmax":
                self._ref_probs.append(softmax(responses.reference[:, start:start + width]))
            start += width
        self.calls = 0

    def many(self, candidates: Sequence[np.ndarray]) -> list[float]:
        """Modelled fitness of several flag vectors (bool [space size])."""
        out: list[float] = []
        r = self.responses
        _, s, d = r.deltas.shape
        for lo in range(0, len(candidates), self.chunk):
            toggled = np.stack([np.asarray(c, dtype=bool) ^ r.anchor for c in candidates[lo:lo + self.chunk]])
            if np.any(toggled[:, self._fixed]):
                raise ConfigError("a candidate differs from the linearized model's anchor outside its measured items")
            block = toggled[:, r.items].astype(np.float32)
            shifts = (block @ self._flat).reshape(len(block), s, d).astype(np.float64)
            out += [float(v) for v in self._distances(r.anchor_outputs[None] + shifts).mean(axis=1)]
        self.calls += len(candidates)
        return out

    def __call__(self, flags: np.ndarray) -> float:
        """Modelled fitness of one flag vector."""
        return self.many([flags])[0]

    def _distances(self, outputs: np.ndarray) -> np.ndarray:
        """Per-candidate, per-sample L2 distance of modelled outputs [C, S, D] to the INT8 outputs: [C, S]."""
        sq = np.zeros(outputs.shape[:2])
        start, softmax_index = 0, 0
        for width, kind in self.responses.segments:
            block = outputs[:, :, start:start + width]
            if kind == "softmax":
                sq += np.sum((softmax(block) - self._ref_probs[softmax_index][None]) ** 2, axis=2)
                softmax_index += 1
            else:
                sq += np.sum((block - self.responses.reference[None, :, start:start + width]) ** 2, axis=2)
            start += width
        return np.sqrt(sq)
