"""ConversionPlan: JSON round trip, an edited 'keep' is honoured, impossible edits are clear errors."""

from __future__ import annotations

import json

import pytest
from _gp_helpers import eligible_of
from _utils import models as M

from flexiq_trt.errors import ConfigError
from flexiq_trt.graph_passes.plan import KEEP, REPLACE, ConversionPlan
from flexiq_trt.intake import find_layers, prepare_model


def _plan(model):
    prepared = prepare_model(model)
    eligible, skipped = find_layers(prepared, 32)
    return eligible, ConversionPlan.from_layers(eligible, skipped, 32, model="m.onnx")


def test_round_trip_and_keep_edit(tmp_path):
    eligible, plan = _plan(M.residual_block())
    path = tmp_path / "plan.json"
    plan.save(path)
    data = json.loads(path.read_text())
    assert [(e["node"], e["action"], e["plugin_op"]) for e in data["layers"]] == [
        ("Conv:c1", REPLACE, "FlexiQConv"), ("Conv:c2", REPLACE, "FlexiQConv")]
    data["layers"][0]["action"] = KEEP
    path.write_text(json.dumps(data))
    loaded = ConversionPlan.load(path)
    assert [e.name for e in loaded.select(eligible, 32)] == ["Conv:c2"]
    assert ConversionPlan.load(tmp_path / "plan.json").model == "m.onnx"


def test_skipped_layers_recorded_with_reason():
    _, plan = _plan(M.depthwise_only())
    (entry,) = plan.entries
    assert entry.action == KEEP and "depthwise" in entry.reason and plan.replaced() == set()


def test_replace_of_ineligible_node_rejected(tmp_path):
    eligible, plan = _plan(M.depthwise_only())
    plan.entries[0].action = REPLACE
    with pytest.raises(ConfigError, match="'dw'.*not eligible"):
        plan.select(eligible, 32)


def test_bad_plan_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="x.json"):
        ConversionPlan.load(p)
    p.write_text(json.dumps({"format": 1, "group_size": 32, "layers": [{"node": "a", "op_type": "Conv",
                                                                          "action": "maybe"}]}))
    with pytest.raises(ConfigError, match="layers\\[0\\].*maybe"):
        ConversionPlan.load(p)
    _, eligible = eligible_of(M.residual_block(), 32)
    p.write_text(json.dumps({"format": 1, "group_size": 64, "layers": []}))
    with pytest.raises(ConfigError, match="group size 64"):
        ConversionPlan.load(p).select(eligible, 32)


def test_plan_remembers_the_group_size_setting(tmp_path):
    """A plan made under auto (0, G per layer) names both settings when applied under another."""
    prepared = prepare_model(M.residual_block())
    eligible, skipped = find_layers(prepared, 0)
    path = tmp_path / "auto.json"
    ConversionPlan.from_layers(eligible, skipped, 0).save(path)
    plan = ConversionPlan.load(path)
    assert plan.group_size == 0 and len(plan.select(eligible, 0)) == 2
    with pytest.raises(ConfigError, match=r"group size auto \(0, G per layer\), converting with 32.*--group-size 0"):
        plan.select(eligible, 32)
