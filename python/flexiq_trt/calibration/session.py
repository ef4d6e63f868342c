"""ONNX Runtime (CPU) sessions that expose intermediate tensors, and batch-by-batch model runs.

Intermediate tensors are observed by adding them as extra graph outputs. The caller's model is
changed only for the moment of serialization and restored right after, so no copy of the weights
is made; models over protobuf's 2 GB limit go through a temporary file with external data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from flexiq_trt.calibration.model_io import ModelLike, load_model, model_label
from flexiq_trt.calibration.readers.base import CalibrationReader
from flexiq_trt.errors import CalibrationDataError, ModelError
from flexiq_trt.log import get_logger, progress

_log = get_logger(__name__)
_PROTOBUF_LIMIT = 2**31 - 1
CPU_PROVIDER = "CPUExecutionProvider"


def observable_tensors(proto: onnx.ModelProto) -> set[str]:
    """Names that can be fetched: node outputs of the main graph and the graph inputs."""
    names = {out for node in proto.graph.node for out in node.output if out}
    names.update(value.name for value in proto.graph.input)
    return names


def create_session(model: ModelLike, extra_outputs: Sequence[str] = (), threads: int = 0):
    """A CPU InferenceSession whose outputs include ``extra_outputs`` (intermediate tensor names).

    ``threads`` sets ORT's intra-op thread count (0: ORT's default).
    """
    import onnxruntime as ort  # lazy: keeps `--help` and graph passes free of ORT import time

    proto = load_model(model)
    _check_names(proto, extra_outputs, model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    present = {value.name for value in proto.graph.output}
    added = [name for name in dict.fromkeys(extra_outputs) if name not in present]
    original_count = len(proto.graph.output)
    proto.graph.output.extend(onnx.ValueInfoProto(name=name) for name in added)
    try:
        if proto.ByteSize() < _PROTOBUF_LIMIT:
            return ort.InferenceSession(proto.SerializeToString(), options, providers=[CPU_PROVIDER])
        with tempfile.TemporaryDirectory(prefix="flexiq_calib_") as tmp:
            path = Path(tmp) / "model.onnx"
            onnx.save(proto, str(path), save_as_external_data=True, location="weights.bin")
            return ort.InferenceSession(str(path), options, providers=[CPU_PROVIDER])
    except Exception as exc:  # ORT raises its own exception types; name the model in the message
        raise ModelError(f"{model_label(model)}: ONNX Runtime cannot load the model: {exc}") from exc
    finally:
        del proto.graph.output[original_count:]


def _check_names(proto: onnx.ModelProto, names: Sequence[str], model: ModelLike) -> None:
    known = observable_tensors(proto)
    unknown = [name for name in names if name not in known]
    if unknown:
        initializers = {init.name for init in proto.graph.initializer}
        constant = [name for name in unknown if name in initializers]
        why = f" ({constant} are initializers, not activations)" if constant else ""
        raise ModelError(f"{model_label(model)}: no tensor(s) named {unknown} to observe{why}")


def run_model(
    model: ModelLike,
    reader: CalibrationReader,
    output_names: Sequence[str] | None = None,
    extra_feeds: Mapping[str, np.ndarray] | None = None,
    *,
    desc: str = "run",
    session=None,
) -> Iterator[dict[str, np.ndarray]]:
    """Run ``model`` over every batch of ``reader`` (from the start), yielding ``{name: array}`` per batch.

    ``output_names`` defaults to the model's graph outputs and may name intermediate tensors.
    ``extra_feeds`` are added to every batch (e.g. ``flexiq_max_4bit_ch`` for the simulation model).
    Only one batch's outputs exist at a time. Pass ``session`` to reuse one made by :func:`create_session`.
    """
    if session is None:
        proto = load_model(model)
        names = list(output_names) if output_names is not None else [o.name for o in proto.graph.output]
        session = create_session(proto, names)
    else:
        names = list(output_names) if output_names is not None else [o.name for o in session.get_outputs()]
    reader.rewind()
    total = reader.num_batches() if hasattr(reader, "num_batches") else None
    batches = iter(reader.get_next, None)
    for index, feed in enumerate(progress(batches, total=total, desc=desc, logger=_log)):
        full = {**feed, **(extra_feeds or {})}
        try:
            outputs = session.run(names, full)
        except Exception as exc:  # ORT's errors carry no data-source context
            source = getattr(reader, "source", type(reader).__name__)
            raise CalibrationDataError(f"{source}: batch {index}: ONNX Runtime failed: {exc}") from exc
        yield dict(zip(names, outputs, strict=True))
