"""Model access shared by readers and the calibrator: load a model, describe its real inputs.

Accepting either a path or a ``ModelProto`` everywhere lets the pipeline hand over an in-memory,
already prepared model while users and tests may pass files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import onnx

from flexiq_trt.errors import ModelError

ModelLike = Union[onnx.ModelProto, str, Path]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True)
class InputSpec:
    """One graph input as calibration data must match it.

    ``shape`` holds an int for every static dimension and ``None`` for a symbolic/unknown one.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def describe(self) -> str:
        """Human-readable ``float32[N,3,224,224]`` form for error messages."""
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


def load_model(model: ModelLike) -> onnx.ModelProto:
    """Return ``model`` itself or load it from a path, with a ModelError naming the file."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends; report them uniformly
        raise ModelError(f"{path}: cannot read ONNX model ({exc})") from exc


def model_label(model: ModelLike) -> str:
    """A name for messages: the path, or the graph name of an in-memory model."""
    if isinstance(model, onnx.ModelProto):
        return f"model '{model.graph.name or '<unnamed>'}'"
    return str(model)


def input_specs(model: ModelLike) -> tuple[InputSpec, ...]:
    """The inputs a feed must provide: graph inputs that are not initializers (old IRs list both)."""
    proto = load_model(model)
    initializers = {init.name for init in proto.graph.initializer}
    specs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ModelError(
                f"{model_label(model)}: input '{value.name}' is not a tensor; cannot calibrate it"
            )
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        dims: list[int | None] = []
        for dim in tensor_type.shape.dim:
            dims.append(dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None)
        specs.append(InputSpec(value.name, dtype, tuple(dims)))
    return tuple(specs)


def model_input_names(model_path: str | Path) -> list[str]:
    """Names of the model's real inputs (graph inputs that are not initializers)."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    return [value.name for value in graph.input if value.name not in initializers]
