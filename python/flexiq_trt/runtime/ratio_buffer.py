"""The host side of the ``flexiq_max_4bit_ch`` device buffer: turn a ratio or a vector into int32 [L].

Switching ratio at run time is one host-to-device copy of these L int32 values (docs/design.md §4); the
kernels clamp each entry to [0, C_pad] and round it down to a multiple of G themselves, so any
non-negative value is legal here.

The copy is asynchronous: it reads its pinned host source when the stream reaches it, not when it
is queued. Rewriting one host array for the next ratio while the previous copy from it is still
queued would hand the earlier inference the later ratio. `RatioStager` therefore keeps a small
ring of pinned source slots and records an event after each copy; a slot is rewritten only after
its previous copy has completed (the host waits on that event, which with two or more slots only
happens when the host runs a full ring ahead of the GPU). A captured CUDA graph reads one fixed
slot, which is guarded the same way by an event recorded after each replay.
"""

from __future__ import annotations

from typing import Any

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


class _GuardedSlot:
    """One pinned copy source and the event recorded after the last copy that reads it."""

    def __init__(self, cuda: Any, num_layers: int, table: object | None) -> None:
        self.host = HostMax4bit(num_layers, table, storage=cuda.pinned_array(num_layers, np.int32))
        self.event = cuda.event_create()
        self.pending = False


class RatioStager:
    """Race-free ratio copies to the device buffer through a ring of pinned slots guarded by events.

    `cuda` is a runtime.cuda_api.CudaApi. `waits` counts how often the host had to block on a
    slot still being read (visible in tests and logs).
    """

    def __init__(self, cuda: Any, num_layers: int, table: object | None = None, slots: int = 2) -> None:
        if slots < 1:
            raise ConfigError(f"ratio_slots must be >= 1, got {slots}")
        self.cuda, self.num_layers, self.table = cuda, int(num_layers), table
        self._ring = [_GuardedSlot(cuda, self.num_layers, table) for _ in range(slots)]
        self._next = 0
        self._graph_slot: _GuardedSlot | None = None
        self.waits = 0

    def _acquire(self, slot: _GuardedSlot) -> None:
        if slot.pending and not self.cuda.event_query(slot.event):
            self.waits += 1
            self.cuda.event_synchronize(slot.event)
        slot.pending = False

    def copy(self, dst: int, value: float | np.ndarray | list[int]) -> np.ndarray:
        """Queue the copy of a ratio's (or an explicit) vector to device address `dst`; returns a copy of it."""
        vector = max4bit_vector(value, self.num_layers, self.table)  # validate before touching any slot
        slot = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        self._acquire(slot)
        slot.host.array[...] = vector
        self.cuda.htod_async(dst, slot.host.array)
        self.cuda.event_record(slot.event)
        slot.pending = True
        return vector.copy()

    # ---- the fixed source of a captured graph -------------------------------------------------------
    def _graph(self) -> _GuardedSlot:
        if self._graph_slot is None:
            self._graph_slot = _GuardedSlot(self.cuda, self.num_layers, self.table)
        return self._graph_slot

    def graph_source(self) -> np.ndarray:
        """The pinned array a captured ratio copy reads (created on first use)."""
        return self._graph().host.array

    def stage_graph(self, value: float | np.ndarray | list[int]) -> np.ndarray:
        """Write the graph source for the next replay, after the previous replay has read it."""
        vector = max4bit_vector(value, self.num_layers, self.table)
        slot = self._graph()
        self._acquire(slot)
        slot.host.array[...] = vector
        return vector.copy()

    def graph_launched(self) -> None:
        """Record, after a replay was queued, that the graph source is being read until this point."""
        slot = self._graph()
        self.cuda.event_record(slot.event)
        slot.pending = True
