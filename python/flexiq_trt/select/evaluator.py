"""The search's fitness: distance between a candidate's outputs and the INT8 model's, through ORT.

It runs the simulation model in "mask" mode (``graph_passes/simulate_layers.py``), whose per-layer
bool inputs ``flexiq_group_mask_<layer_index>`` [G_count] (base/π group order) pick the 4-bit groups,
so a candidate is just a set of input tensors: no re-export, one ORT session for the whole search.
The INT8 reference (every mask False) is computed once. Fitness = mean over samples of the L2
distance between softmax outputs (classifiers) or raw outputs (anything else).

Cheapness: one reused session, calibration batched through it, a fixed shuffled order so the first
n samples are a representative subset (``n_samples=`` for early generations), and a cache in the
search. Reusing activations before the first changed layer is not done here: a candidate of the
global search changes groups in almost every layer (its first changed layer is near the input), so
the prefix a candidate shares with the INT8 model is too short to pay for splitting the graph; see
docs/selection.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from flexiq_trt.errors import CalibrationDataError, ConfigError, ModelError
from flexiq_trt.plugin_spec import MASK_INPUT_PREFIX, mask_input_name

if TYPE_CHECKING:
    import onnx

_MASK_RE = re.compile(re.escape(MASK_INPUT_PREFIX) + r"(\d+)$")
OUTPUT_KINDS = ("auto", "softmax", "probabilities", "raw")


@dataclass
class _Chain:
    """The values crossing the last cut a prefix runner computed, and what they were computed for."""

    key: tuple[int, bytes]  # (samples, anchor masks)
    position: int
    cut: object  # prefix_split.Cut
    chunks: list[dict]


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the fitness compares class scores this way)."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _is_probabilities(x: np.ndarray) -> bool:
    return bool(np.all(x >= 0) and np.allclose(x.sum(axis=-1), 1.0, atol=1e-3))


class MaskFitnessEvaluator:
    """Callable fitness for `SelectionProblem.fitness` (supports calibration subsets).

    Args:
        sim_model: the mask-mode simulation model (path, serialized bytes or ModelProto).
        feeds: the model's data inputs, every array holding the same N samples along axis 0.
        layer_indices: the FlexiQ `layer_index` of each mask the caller passes, in order
            (default: every mask input of the graph, by index).
        constant_feeds: further inputs fed unchanged on every run (e.g. ``flexiq_max_4bit_ch``).
        output_kind: "softmax" (logits), "probabilities" (already softmaxed), "raw", or "auto"
            (rank-2 outputs are treated as class scores, everything else as raw).
        batch_size: samples per run when the model's batch dimension is dynamic.
        shuffle_seed: samples are permuted once with this seed, so subsets mix classes; None keeps
            the given order.
        candidate_workers: candidates evaluated concurrently by `evaluate_many` (one ORT run each,
            the GIL is released inside ORT). Helps small models, whose single runs do not fill the cores.
    """

    supports_subsets = True

    def __init__(self, sim_model: str | os.PathLike | bytes | onnx.ModelProto, feeds: Mapping[str, np.ndarray],
                 layer_indices: Sequence[int] | None = None, *, constant_feeds: Mapping[str, np.ndarray] | None = None,
                 output_kind: str = "auto", batch_size: int = 32, shuffle_seed: int | None = 0,
                 candidate_workers: int = 1):
        if output_kind not in OUTPUT_KINDS:
            raise ConfigError(f"output_kind={output_kind!r} must be one of {OUTPUT_KINDS}")
        if candidate_workers < 1:
            raise ConfigError(f"candidate_workers={candidate_workers} must be >= 1")
        self.candidate_workers = candidate_workers
        # ORT's default threads (all cores) per run, one thread each when candidates run concurrently
        self._source, self._threads = sim_model, 1 if candidate_workers > 1 else 0
        # batches of one call run side by side on a one-thread session (not with concurrent candidates)
        self.batch_workers = 1 if candidate_workers > 1 else parallel_runs()
        self._single = None  # that session, made on first use
        self._model: onnx.ModelProto | None = None  # parsed once, for cutting (prefix_runner)
        self._types: dict | None = None
        self._chain: _Chain | None = None  # the last cut's values, for chaining prefix runs
        self.chained_cuts = 0  # cut values computed from the previous cut's (statistic for tests/logs)
        self.session = _session(sim_model, self._threads)
        self.output_kind, self.constant_feeds = output_kind, dict(constant_feeds or {})
        self.mask_names, self.mask_sizes = self._mask_inputs(layer_indices)
        self.feeds = self._check_feeds(feeds, shuffle_seed)
        self.num_samples = int(next(iter(self.feeds.values())).shape[0])
        self.fixed_batch = self._fixed_batch()
        self.chunk = self._chunk_size(batch_size)
        raw_reference = [_rows(o) for o in self._run(self.all_false_masks(), None)]
        self._reference_raw = np.concatenate(raw_reference, axis=1)
        self._kinds = [self._kind(o) for o in raw_reference]
        self._segments = [(o.shape[1], "softmax" if k == "softmax" else "linear")
                          for o, k in zip(raw_reference, self._kinds, strict=True)]
        self.reference = [self._transform(o) for o in raw_reference]

    # ------------------------------------------------------------------------- setup checks
    def _mask_inputs(self, layer_indices: Sequence[int] | None) -> tuple[list[str], list[int]]:
        graph = {i.name: i for i in self.session.get_inputs()}
        found = sorted((int(m.group(1)), n) for n in graph if (m := _MASK_RE.match(n)))
        if not found:
            raise ModelError(f"the simulation model has no {MASK_INPUT_PREFIX}<layer_index> inputs; "
                             "write it with mode='mask'")
        names = [mask_input_name(i) for i in layer_indices] if layer_indices is not None else [n for _, n in found]
        sizes = []
        for name in names:
            if name not in graph:
                raise ModelError(f"the simulation model has no mask input {name!r}")
            dim = graph[name].shape[0] if graph[name].shape else None
            sizes.append(int(dim) if isinstance(dim, int) else -1)
        return names, sizes

    def _check_feeds(self, feeds: Mapping[str, np.ndarray], shuffle_seed: int | None) -> dict[str, np.ndarray]:
        data_inputs = [i.name for i in self.session.get_inputs()
                       if i.name not in self.mask_names and i.name not in self.constant_feeds]
        missing = [n for n in data_inputs if n not in feeds]
        if missing:
            raise CalibrationDataError(f"calibration feeds lack the model input(s) {missing}")
        counts = {n: int(np.asarray(feeds[n]).shape[0]) for n in data_inputs}
        if not data_inputs or len(set(counts.values())) != 1 or 0 in counts.values():
            raise CalibrationDataError(f"calibration feeds must hold the same N >= 1 samples per input, got {counts}")
        n = next(iter(counts.values()))
        perm = np.random.default_rng(shuffle_seed).permutation(n) if shuffle_seed is not None else np.arange(n)
        return {name: np.ascontiguousarray(np.asarray(feeds[name])[perm]) for name in data_inputs}

    def _chunk_size(self, batch_size: int) -> int:
        dim = self.fixed_batch
        if dim > 0:
            if self.num_samples % dim:
                raise CalibrationDataError(f"the model's inputs have a fixed batch of {dim}, which does not "
                                           f"divide the {self.num_samples} calibration samples")
            return dim
        return max(1, batch_size)

    # ---------------------------------------------------------------------------- evaluation
    def all_false_masks(self) -> list[np.ndarray]:
        """The INT8 model's masks (no group at 4-bit)."""
        return [np.zeros(max(s, 0), dtype=bool) for s in self.mask_sizes]

    def outputs(self, masks: Sequence[np.ndarray], n_samples: int | None = None) -> list[np.ndarray]:
        """The compared outputs (after softmax where applicable) for the first `n_samples` samples."""
        return [self._transform(o) for o in self._run(masks, n_samples)]

    def raw_outputs(self, masks: Sequence[np.ndarray], n_samples: int | None = None) -> np.ndarray:
        """Every graph output before the softmax, flattened and concatenated: float64 [n, D].

        The search's linearized output model (`select/surrogate.py`) is built from these.
        """
        return np.concatenate([_rows(o) for o in self._run(masks, n_samples)], axis=1)

    @property
    def reference_raw(self) -> np.ndarray:
        """`raw_outputs` of the INT8 model (every mask False), float64 [N, D]."""
        return self._reference_raw

    @property
    def output_segments(self) -> list[tuple[int, str]]:
        """(width, kind) of each output within `raw_outputs`' columns; kind "softmax" or "linear".

        The distance compares softmaxes of "softmax" segments and the values themselves otherwise.
        """
        return list(self._segments)

    def _samples(self, n_samples: int | None) -> int:
        return self.num_samples if n_samples is None else min(int(n_samples), self.num_samples)

    def _batches(self, n: int) -> list[dict[str, np.ndarray]]:
        """The data feeds of the first `n` samples, one dict per run.

        A fixed-batch model always gets whole batches (N is a multiple); callers cut the surplus.
        """
        out = []
        for start in range(0, n, self.chunk):
            stop = start + self.chunk if self.fixed_batch > 0 else min(start + self.chunk, n)
            out.append({k: v[start:stop] for k, v in self.feeds.items()})
        return out

    def _run(self, masks: Sequence[np.ndarray], n_samples: int | None) -> list[np.ndarray]:
        n = self._samples(n_samples)
        feed = self._mask_feed(masks)
        batches = self._batches(n)
        sess = self._single_session() if self.batch_workers > 1 and len(batches) > 1 else self.session
        parts = self._map(lambda batch: sess.run(None, {**batch, **feed, **self.constant_feeds}), batches)
        return _join(parts, n)

    def _single_session(self):
        """A one-thread session of the whole model, for batches run side by side."""
        if self._single is None:
            self._single = _session(self._source, 1)
        return self._single

    def _map(self, fn, items: list) -> list:
        """`[fn(x) for x in items]`, on `batch_workers` threads when there are several items (order kept).

        One ORT run of these graphs keeps two cores only partly busy (element-wise ops, small GEMMs);
        single-threaded runs side by side do. Each run computes exactly what it would alone.
        """
        if self.batch_workers < 2 or len(items) < 2:
            return [fn(x) for x in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.batch_workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def prefix_runner(self, position: int, anchor: Sequence[np.ndarray], n_samples: int | None = None, *,
                      threads: int | None = None):
        """``masks -> raw_outputs(masks, n_samples)``, computing the graph before a layer once.

        The graph before mask `position`'s layer runs once with the `anchor` masks; each call runs only
        the rest. Calls whose masks differ from the anchor on a layer the prefix reads are run whole, as is everything
        when the graph cannot be cut there (`select/prefix_split.py`). Outputs equal full runs up to float
        rounding of operators ONNX Runtime fuses differently across the cut.

        Consecutive calls with the same anchor and samples at increasing positions (the linearized
        model measures layers in order) chain: the tensors crossing this cut are computed from the
        previous cut's through the nodes between the two (`prefix_split.segment_between`), not from
        the graph inputs again. `release_prefix` drops the held values.

        `threads`: intra-op threads of the suffix session (default: the evaluator's); the returned
        function may be called from several threads at once (one ORT session, concurrent runs), so
        a caller running items concurrently gives each run one thread.
        """
        n = self._samples(n_samples)
        whole = lambda masks: self.raw_outputs(masks, n)  # noqa: E731
        cut = self._cut(position)
        if cut is None:
            return whole
        anchor_feed = self._mask_feed(anchor)
        chunks = self._cut_values(position, cut, anchor_feed, n)
        if threads is None:  # several batches run side by side, one thread each
            threads = 1 if self.batch_workers > 1 and len(chunks) > 1 else self._threads
        suffix = _session(cut.suffix, threads)
        suf_names = [i.name for i in suffix.get_inputs()]
        read_by_prefix = [m for m in self.mask_names if m in cut.prefix_inputs]

        def run(masks: Sequence[np.ndarray]) -> np.ndarray:
            feed = self._mask_feed(masks)
            if any(not np.array_equal(feed[m], anchor_feed[m]) for m in read_by_prefix):
                return whole(masks)
            def one(acts: dict) -> list[np.ndarray]:
                full = {**acts, **feed, **self.constant_feeds}
                return suffix.run(None, {k: full[k] for k in suf_names})

            parts = self._map(one, chunks) if threads == 1 else [one(acts) for acts in chunks]
            return np.concatenate([_rows(o) for o in _join(parts, n)], axis=1)

        return run

    def release_prefix(self) -> None:
        """Drop the cut values kept for chaining (one cut's activations on the measured samples)."""
        self._chain = None

    def _cut_values(self, position: int, cut, anchor_feed: dict[str, np.ndarray], n: int) -> list[dict]:
        """Per batch: the tensors crossing the cut with the anchor masks, plus the batch's data inputs."""
        key = (n, b"".join(anchor_feed[m].tobytes() for m in self.mask_names))
        chain, self._chain = self._chain, None  # the previous cut's values go once these exist
        chunks = None
        if chain is not None and chain.key == key and chain.position < position:
            chunks = self._advance(chain, position, cut, anchor_feed)
        if chunks is None:
            prefix = _session(cut.prefix, self._threads)
            pre_names = [i.name for i in prefix.get_inputs()]
            chunks = []
            for batch in self._batches(n):
                feed = {**batch, **anchor_feed, **self.constant_feeds}
                cut_values = prefix.run(list(cut.tensors), {k: feed[k] for k in pre_names})
                chunks.append(dict(zip(cut.tensors, cut_values, strict=True)) | batch)
        self._chain = _Chain(key, position, cut, chunks)
        return chunks

    def _advance(self, chain: _Chain, position: int, cut, anchor_feed: dict[str, np.ndarray]) -> list[dict] | None:
        """The values crossing `cut`, from the previous cut's through the nodes between the two (None: cannot)."""
        from flexiq_trt.select.prefix_split import segment_between

        seg = segment_between(self._model, chain.cut, self._layer_index(chain.position), cut,
                              self._layer_index(position), self._types)
        if seg is None:
            return None
        sess = _session(seg.model, self._threads) if seg.model is not None else None
        names = [i.name for i in sess.get_inputs()] if sess is not None else []
        out = []
        for acts in chain.chunks:
            values: dict[str, np.ndarray] = {}
            if sess is not None:
                feed = {**acts, **anchor_feed, **self.constant_feeds}
                values = dict(zip(seg.outputs, sess.run(list(seg.outputs), {k: feed[k] for k in names}), strict=True))
            out.append({t: values[t] if t in values else acts[t] for t in cut.tensors} | {k: acts[k] for k in self.feeds})
        self.chained_cuts += 1
        return out

    def _layer_index(self, position: int) -> int:
        return int(_MASK_RE.match(self.mask_names[position]).group(1))  # type: ignore[union-attr]

    def _cut(self, position: int):
        """The `prefix_split.Cut` before mask `position`'s layer, or None."""
        import onnx

        from flexiq_trt.select.prefix_split import cut_before, tensor_types

        if self._model is None:
            if hasattr(self._source, "SerializeToString"):
                self._model = self._source  # type: ignore[assignment]
            elif isinstance(self._source, bytes):
                self._model = onnx.load_from_string(self._source)
            else:
                self._model = onnx.load(os.fspath(self._source))
            self._types = tensor_types(self._model)
        return cut_before(self._model, self._layer_index(position), self._types)

    def _fixed_batch(self) -> int:
        """The inputs' static batch size, or -1 when it is dynamic."""
        first = next(i for i in self.session.get_inputs() if i.name in self.feeds)
        dim = first.shape[0] if first.shape else None
        return dim if isinstance(dim, int) and dim > 0 else -1

    def _mask_feed(self, masks: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        if len(masks) != len(self.mask_names):
            raise ConfigError(f"got {len(masks)} layer masks, the simulation model takes {len(self.mask_names)}")
        feed = {}
        for name, size, mask in zip(self.mask_names, self.mask_sizes, masks, strict=True):
            mask = np.asarray(mask, dtype=bool)
            if mask.ndim != 1 or (size >= 0 and mask.shape[0] != size):
                raise ConfigError(f"mask for {name!r} has shape {mask.shape}, the model expects [{size}]")
            feed[name] = mask
        return feed

    def _transform(self, out: np.ndarray) -> np.ndarray:
        out = _rows(out)
        return softmax(out) if self._kind(out) == "softmax" else out

    def _kind(self, out: np.ndarray) -> str:
        """The configured output kind, or the one "auto" picks for these (flattened) outputs."""
        if self.output_kind != "auto":
            return self.output_kind
        if not self._rank2_outputs() or out.shape[1] == 1:
            return "raw"
        return "probabilities" if _is_probabilities(out) else "softmax"

    def _rank2_outputs(self) -> bool:
        return all(len(o.shape) == 2 for o in self.session.get_outputs())

    def distances(self, masks: Sequence[np.ndarray], n_samples: int | None = None) -> np.ndarray:
        """Per-sample L2 distance to the INT8 reference (all outputs concatenated)."""
        return self._distances(self.outputs(masks, n_samples))

    def raw_distances(self, raw: np.ndarray) -> np.ndarray:
        """Per-sample distances of `raw_outputs`-style rows [n, D] (e.g. from a `prefix_runner`) to the INT8 reference.

        The same numbers as `distances` for the masks the rows were computed with.
        """
        outs, start = [], 0
        for width, _ in self._segments:
            outs.append(self._transform(raw[:, start:start + width]))
            start += width
        return self._distances(outs)

    def _distances(self, outs: list[np.ndarray]) -> np.ndarray:
        """Per-sample L2 distance of compared outputs to the INT8 reference's first rows."""
        n = outs[0].shape[0]
        return np.sqrt(sum(np.sum((o - r[:n]) ** 2, axis=1) for o, r in zip(outs, self.reference, strict=True)))

    def distances_and_top1(self, masks: Sequence[np.ndarray],
                           n_samples: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-sample distances and, for classifiers, whether the top-1 class equals the INT8 model's.

        One run gives both. The top-1 match is None when no output is a class distribution
        (softmax or probabilities); with several such outputs a sample matches when all of them do.
        """
        outs = self.outputs(masks, n_samples)
        n = outs[0].shape[0]
        classes = [(o, r[:n]) for o, r, kind in zip(outs, self.reference, self._kinds, strict=True)
                   if kind in ("softmax", "probabilities")]
        match = np.logical_and.reduce([o.argmax(axis=1) == r.argmax(axis=1) for o, r in classes]) if classes else None
        return self._distances(outs), match

    def __call__(self, masks: Sequence[np.ndarray], n_samples: int | None = None) -> float:
        """Mean L2 distance to the INT8 model over the first `n_samples` samples (None = all)."""
        return float(np.mean(self.distances(masks, n_samples)))

    def evaluate_many(self, candidates: Sequence[Sequence[np.ndarray]], n_samples: int | None = None) -> list[float]:
        """Fitness of several candidates (a generation's children), concurrently when configured."""
        if self.candidate_workers == 1 or len(candidates) < 2:
            return [self(c, n_samples) for c in candidates]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.candidate_workers) as pool:
            return list(pool.map(lambda c: self(c, n_samples), candidates))


def _rows(out: np.ndarray) -> np.ndarray:
    """One output as float64 rows [n, -1]."""
    return out.reshape(out.shape[0], -1).astype(np.float64)


def _join(parts: list[list[np.ndarray]], n: int) -> list[np.ndarray]:
    """Per-run output lists joined along the batch axis, cut to `n` samples."""
    return [np.concatenate([p[i] for p in parts])[:n] for i in range(len(parts[0]))]


def parallel_runs() -> int:
    """How many ORT runs go side by side, one thread each.

    One per core this process may use, at most 4 (each holds one run's activations).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _session(sim_model: str | os.PathLike | bytes | onnx.ModelProto, intra_op_threads: int):
    import onnxruntime as ort  # lazy: importing the selectors must not need ORT

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = intra_op_threads
    if intra_op_threads == 1:  # runs side by side: no thread spinning while the other run waits for a core
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    if hasattr(sim_model, "SerializeToString"):
        source = sim_model.SerializeToString()  # type: ignore[union-attr]
    else:
        source = sim_model if isinstance(sim_model, bytes) else os.fspath(sim_model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for unreadable models
        raise ModelError(f"ONNX Runtime cannot load the simulation model ({e})") from e
