"""The host side of the ``flexiq_max_4bit_ch`` device buffer: turn a ratio or a vector into int32 [L].

Switching ratio at run time is one host-to-device copy of these L int32 values (docs/design.md §4); the
kernels clamp each entry to [0, C_pad] and round it down to a multiple of G themselves, so any
non-negative value is legal here. The buffer object is reused: the copy source stays pinned to one
array, which keeps the copy capturable in a CUDA graph.
"""

from __future__ import annotations

import numpy as np

from flexiq_trt.errors import ConfigError
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import RatioTable, check_ratio, load_ratio_table


def max4bit_vector(value: float | np.ndarray | list[int], num_layers: int, table: object | None = None) -> np.ndarray:
    """int32 [L], C-contiguous, for a ratio in [0, 1] (needs `table`) or an explicit per-layer vector."""
    if isinstance(value, (float, int)) and not isinstance(value, bool) and np.ndim(value) == 0:
        if table is None:
            raise ConfigError(f"a ratio ({value!r}) needs the model's ratio table (.flexiq.json or the ONNX)")
        ratio_table: RatioTable = load_ratio_table(table)
        if ratio_table.num_layers != num_layers:
            raise ConfigError(
                f"the ratio table has L={ratio_table.num_layers} layers but the engine's {RUNTIME_INPUT} has "
                f"{num_layers}"
            )
        return np.ascontiguousarray(ratio_table.vector(check_ratio(float(value))), dtype=np.int32)
    vec = np.asarray(value)
    if vec.shape != (num_layers,):
        raise ConfigError(f"{RUNTIME_INPUT} must have shape [{num_layers}], got {list(vec.shape)}")
    if not np.issubdtype(vec.dtype, np.integer):
        raise ConfigError(f"{RUNTIME_INPUT} must hold integers (4-bit input channels per layer), got {vec.dtype}")
    if vec.size and (vec.min() < 0 or vec.max() > np.iinfo(np.int32).max):
        raise ConfigError(f"{RUNTIME_INPUT} entries must be in [0, 2^31), got [{vec.min()}, {vec.max()}]")
    return np.ascontiguousarray(vec, dtype=np.int32)


class HostMax4bit:
    """One reusable host array for the copy source (set() updates it in place)."""

    def __init__(self, num_layers: int, table: object | None = None, storage: np.ndarray | None = None) -> None:
        self.num_layers = int(num_layers)
        self.table = table
        if storage is not None and (storage.shape != (self.num_layers,) or storage.dtype != np.int32):
            raise ConfigError(f"storage must be int32 [{self.num_layers}], got {storage.dtype} {list(storage.shape)}")
        self.array = storage if storage is not None else np.zeros(self.num_layers, dtype=np.int32)
        self.array[...] = 0

    def set(self, value: float | np.ndarray | list[int]) -> np.ndarray:
        """Write a ratio's (or an explicit) vector into the host array; returns the array."""
        self.array[...] = max4bit_vector(value, self.num_layers, self.table)
        return self.array
