"""The padded group of a layer goes 4-bit last (docs/design.md §2: padding channels come last in π).

When ``C_in`` is not a multiple of G, a layer's last base group holds its padding channels, and the
4-bit prefix ``π[0:n4]`` can only contain it once every other group of the layer is 4-bit. Every
selector keeps that rule, so the sets it evaluates are the sets the runtime will use.
"""

from __future__ import annotations

import numpy as np

from flexiq_trt.select.base import LayerGroups

PADDED_GROUP_KEY = "padded_group"  # LayerGroups.extra key: index of the padded group, or None


def padded_group(layer: LayerGroups) -> int | None:
    """The layer's padded group index, or None.

    ``extra["padded_group"]`` when the pipeline sets it, else the last group when it has fewer MACs
    (fewer real channels) than the others.
    """
    if PADDED_GROUP_KEY in layer.extra:
        value = layer.extra[PADDED_GROUP_KEY]
        return None if value is None else int(value)
    macs = np.asarray(layer.group_macs, dtype=np.float64)
    if macs.shape[0] > 1 and macs[-1] < macs[:-1].min():
        return macs.shape[0] - 1
    return None


def tail_mask(layers: list[LayerGroups], offsets: np.ndarray) -> np.ndarray:
    """Bool [I]: True for every layer's padded-group item."""
    tail = np.zeros(int(offsets[-1]), dtype=bool)
    for li, layer in enumerate(layers):
        g = padded_group(layer)
        if g is not None:
            tail[offsets[li] + g] = True
    return tail


def valid(flags: np.ndarray, tail: np.ndarray, layer_of: np.ndarray, layer_count: int) -> bool:
    """Whether no layer has its padded group chosen while another of its groups is not."""
    missing = np.bincount(layer_of[~flags], minlength=layer_count)
    return not np.any(flags & tail & (missing[layer_of] > 0))


def tail_last(order: list[int], tail: np.ndarray, layer_of: np.ndarray) -> list[int]:
    """Move each padded item right after the last other item of its layer (others keep their order)."""
    last_other: dict[int, int] = {}
    for pos, i in enumerate(order):
        if not tail[i]:
            last_other[int(layer_of[i])] = pos
    held = {int(layer_of[i]): i for pos, i in enumerate(order) if tail[i] and last_other.get(int(layer_of[i]), -1) > pos}
    out: list[int] = []
    for pos, i in enumerate(order):
        layer = int(layer_of[i])
        if tail[i]:
            if layer not in held:  # already after its layer's other items
                out.append(i)
            continue
        out.append(i)
        if last_other.get(layer) == pos and layer in held:
            out.append(held.pop(layer))
    return out
