"""Ratio tables with a group size per layer (docs/design.md §2.2), and sidecars written before that."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flexiq_trt.errors import ConfigError, ModelError
from flexiq_trt.ratios import PER_LAYER, LayerEntry, RatioTable, common_group_size


def mixed_table() -> RatioTable:
    """Layer 0: C_in 96 at G = 32 (3 groups); layer 1: C_in 128 at G = 64 (2 groups)."""
    layers = [LayerEntry("a", "FlexiQConv", 0, 96, 96, 90.0, [30.0, 30.0, 30.0], group_size=32),
              LayerEntry("b", "FlexiQGemm", 1, 128, 128, 110.0, [60.0, 50.0], group_size=64)]
    # cumulative MACs: 60, 90, 140, 170, 200
    return RatioTable(common_group_size([32, 64]), layers, [(1, 0), (0, 0), (1, 1), (0, 1), (0, 2)],
                      [0.0, 0.5, 1.0])


def test_vector_counts_each_layer_in_its_own_group_size():
    t = mixed_table()
    assert t.group_size == PER_LAYER and t.group_size_label == "per layer (32/64)"
    assert t.group_size_counts() == {"32": 1, "64": 1}
    assert t.vector(0.0).tolist() == [0, 0]
    assert t.vector(0.3).tolist() == [0, 64]  # 60 of 200 MACs: one 64-channel group of layer 1
    assert t.vector(0.45).tolist() == [32, 64]
    assert t.vector(0.7).tolist() == [32, 128]
    assert t.vector(0.75).tolist() == [64, 128]
    assert t.vector(1.0).tolist() == [96, 128]
    assert t.achieved_ratio(np.array([32, 64])) == pytest.approx(0.45)
    assert t.achieved_ratio(np.array([32, 63])) == pytest.approx(0.15)  # below one 64-group: 8-bit
    assert t.achieved_ratio(np.array([-5, 999])) == pytest.approx(0.55)  # clamped like the kernels


def test_json_round_trip_writes_every_layers_group_size():
    t = mixed_table()
    d = json.loads(t.to_json())
    assert d["group_size"] == 0 and [le["group_size"] for le in d["layers"]] == [32, 64]
    assert d["ladder_n4"]["0.5000"] == t.vector(0.5).tolist()
    back = RatioTable.from_json(t.to_json())
    for r in np.linspace(0, 1, 51):
        assert np.array_equal(back.vector(float(r)), t.vector(float(r)))


def test_old_sidecar_without_per_layer_group_size_still_loads():
    d = json.loads(mixed_table().to_json())
    d["group_size"] = 32
    d["layers"][1].update(padded_channels=128, group_macs=[30.0, 30.0, 25.0, 25.0])
    d["order"] = [[1, 0], [0, 0], [1, 1], [1, 2], [1, 3], [0, 1], [0, 2]]
    for le in d["layers"]:
        del le["group_size"]
    del d["ladder_n4"]
    t = RatioTable.from_json(json.dumps(d), "old.flexiq.json")
    assert t.group_size == 32 and t.group_sizes().tolist() == [32, 32]
    assert t.vector(1.0).tolist() == [96, 128] and t.vector(0.2).tolist() == [32, 32]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["layers"][1].pop("group_size"), r"layers\[1\] \(b\): no group_size, and the table's is per layer"),
    (lambda d: d["layers"][0].__setitem__("group_size", 48), r"layers\[0\] \(a\): group_size 48"),
    (lambda d: d.__setitem__("group_size", 32), r"layers\[1\] \(b\): group_size 64 is not 32"),
    (lambda d: d["layers"][1].__setitem__("group_size", 32), r"layers\[1\] \(b\).*2 group_macs do not fit group_size 32"),
    (lambda d: d.__setitem__("group_size", 16), "group_size must be"),
])
def test_bad_group_sizes_are_rejected_naming_the_layer(mutate, message):
    d = json.loads(mixed_table().to_json())
    mutate(d)
    with pytest.raises(ModelError, match="bad.flexiq.json: not a valid FlexiQ ratio table.*" + message):
        RatioTable.from_json(json.dumps(d), "bad.flexiq.json")


def test_common_group_size():
    assert common_group_size([64, 64]) == 64 and common_group_size([32, 64, 32]) == PER_LAYER
    with pytest.raises(ConfigError, match="no group_size"):
        RatioTable(PER_LAYER, [LayerEntry("a", "FlexiQConv", 0, 64, 64, 1.0, [1.0])], [(0, 0)], [1.0])
