"""Every candidate layer's shapes at the calibration input shapes, from the data.

Exported models carry dynamic axes (batch, sequence length, image size) and compute reshape
targets at run time, so static shape inference on the model as declared often leaves a layer's
input shape unknown (``['N', 'unk__193']``). Three sources, cheapest first:

1. ONNX shape inference with data propagation on a copy whose graph inputs have the shapes of the
   first calibration batch;
2. the same copy with its shape subgraphs folded into constants (`graph_passes.fold_shapes`);
3. ONNX Runtime running the model once on the first calibration sample with the candidate tensors
   as extra outputs: the ground truth, which wins wherever the static answers differ. Skipped only
   when the model declares static input shapes and inference resolved every candidate (then the
   shapes are the model's own, not the data's).

The model itself is never changed: the artifacts keep its dynamic axes (docs/design.md §3).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from flexiq_trt.graph_passes.fold_shapes import fold_shape_subgraphs
from flexiq_trt.graph_passes.graph_index import GraphIndex
from flexiq_trt.intake.prepare import with_input_shapes
from flexiq_trt.log import get_logger

_log = get_logger(__name__)
_PROTOBUF_LIMIT = 2**31 - 1

SOURCE_RUNTIME = "onnxruntime"
SOURCE_INFERENCE = "shape inference"


@dataclass(frozen=True)
class ResolvedShapes:
    """Static shapes of tensors at the calibration input shapes, `batch` samples per input."""

    shapes: dict[str, tuple[int, ...]]
    batch: int
    source: dict[str, str] = field(default_factory=dict)  # tensor -> SOURCE_RUNTIME / SOURCE_INFERENCE
    runtime_error: str | None = None  # why ONNX Runtime gave no shapes, when it did not

    def get(self, tensor: str) -> tuple[int, ...] | None:
        """The tensor's shape, or None when no source knew it."""
        return self.shapes.get(tensor)


def _static(shape: tuple | None) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
        return None
    return tuple(int(d) for d in shape)


def probe_feeds(model: onnx.ModelProto, batch: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """The feeds to resolve shapes with: the first sample when every input's batch axis is dynamic.

    Returns (feeds, samples per input). A model with a static batch axis gets the batch as it is.
    """
    from flexiq_trt.calibration.model_io import input_specs  # foundation module shared by every stage

    specs = input_specs(model)
    names = [s.name for s in specs]
    missing = [n for n in names if n not in batch]
    if missing:
        from flexiq_trt.errors import CalibrationDataError

        raise CalibrationDataError(f"calibration batch has no array for model input(s) {missing}")
    dynamic_batch = all(s.rank > 0 and s.shape[0] is None for s in specs)
    feeds = {n: np.asarray(batch[n]) for n in names}
    if dynamic_batch and all(a.ndim > 0 and a.shape[0] >= 1 for a in feeds.values()):
        feeds = {n: a[:1] for n, a in feeds.items()}
    first = next(iter(feeds.values()), np.zeros((1,)))
    return feeds, int(first.shape[0]) if first.ndim else 1


def inferred_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, tuple[int, ...]],
                    tensors: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Static shapes of `tensors` from shape inference at `input_shapes`, then after shape folding."""
    wanted = list(dict.fromkeys(tensors))
    fixed = GraphIndex(model)
    if not _inputs_fixed(model, input_shapes):  # the prepared model's inferred shapes are already these
        fixed = GraphIndex(with_input_shapes(model, input_shapes))
    found = {t: s for t in wanted if (s := _static(fixed.shape(t))) is not None}
    if len(found) < len(wanted):
        folded = GraphIndex(fold_shape_subgraphs(fixed.model))
        for t in wanted:
            if t not in found and (s := _static(folded.shape(t))) is not None:
                found[t] = s
    return found


def _inputs_fixed(model: onnx.ModelProto, input_shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """True when the model declares exactly `input_shapes` for its inputs (nothing dynamic to fix)."""
    declared = GraphIndex(model)
    return all(declared.shape(name) == tuple(shape) for name, shape in input_shapes.items())


def runtime_shapes(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray],
                   tensors: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """The shapes ONNX Runtime produces for `tensors` when it runs `model` on `feeds` (one run).

    Graph inputs among `tensors` take the feed's shape; the others become extra outputs of a
    temporary session (the model is restored afterwards). Raises whatever ONNX Runtime raises.
    """
    import onnxruntime as ort  # lazy: keeps graph-only commands free of ORT's import time

    wanted = list(dict.fromkeys(tensors))
    shapes = {t: tuple(int(d) for d in feeds[t].shape) for t in wanted if t in feeds}
    produced = {o for n in model.graph.node for o in n.output if o}
    present = {o.name for o in model.graph.output}
    extra = [t for t in wanted if t in produced and t not in present]
    fetch = [t for t in wanted if t in produced]
    count = len(model.graph.output)
    model.graph.output.extend(onnx.ValueInfoProto(name=t) for t in extra)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        if model.ByteSize() < _PROTOBUF_LIMIT:
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        else:
            with tempfile.TemporaryDirectory(prefix="flexiq_shapes_") as tmp:
                path = Path(tmp) / "model.onnx"
                onnx.save(model, str(path), save_as_external_data=True, location="weights.bin")
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    finally:
        del model.graph.output[count:]
    real_inputs = {i.name for i in session.get_inputs()}
    outputs = session.run(fetch, {k: v for k, v in feeds.items() if k in real_inputs}) if fetch else []
    shapes.update({t: tuple(int(d) for d in np.shape(v)) for t, v in zip(fetch, outputs, strict=True)})
    return shapes


def resolve_shapes(model: onnx.ModelProto, first_batch: Mapping[str, np.ndarray],
                   tensors: Iterable[str]) -> ResolvedShapes:
    """Shapes of `tensors` at the first calibration batch's input shapes (see the module docstring).

    ONNX Runtime's shapes win; a disagreement with the static ones is logged (it would mean shape
    inference is wrong for this model). When ONNX Runtime cannot run the model, the static shapes
    are used and `runtime_error` says why.
    """
    wanted = list(dict.fromkeys(tensors))
    feeds, batch = probe_feeds(model, first_batch)
    input_shapes = {k: tuple(v.shape) for k, v in feeds.items()}
    static = inferred_shapes(model, input_shapes, wanted)
    source = dict.fromkeys(static, SOURCE_INFERENCE)
    if len(static) == len(wanted) and _inputs_fixed(model, input_shapes):
        # every shape is fixed by the model itself: running it would only repeat them (and costs
        # a second copy of the weights in ONNX Runtime on large static models)
        return ResolvedShapes(static, batch, source)
    try:
        measured = runtime_shapes(model, feeds, wanted)
    except Exception as e:  # ORT's exception types are its own; fall back to the static shapes
        _log.warning("ONNX Runtime could not run the model to measure layer shapes (%s); "
                     "using shape inference alone", e)
        return ResolvedShapes(static, batch, source, runtime_error=str(e).splitlines()[0] if str(e) else repr(e))
    wrong = {t: (static[t], s) for t, s in measured.items() if t in static and static[t] != s}
    for t, (inferred, real) in wrong.items():
        _log.warning("tensor %r: shape inference says %s, ONNX Runtime produced %s; using the latter",
                     t, list(inferred), list(real))
    unresolved = [t for t in measured if t not in static]
    if unresolved:
        _log.info("%d layer input shape(s) known only from running the model (e.g. %r)", len(unresolved),
                  unresolved[0])
    shapes = {**static, **measured}
    source.update(dict.fromkeys(measured, SOURCE_RUNTIME))
    return ResolvedShapes(shapes, batch, source)
