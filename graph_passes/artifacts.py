"""Write the three artifacts of a conversion: plugin ONNX, simulation ONNX and the ratio table.

The file names are the suffixes defined in `flexiq_trt.plugin_spec` (docs/design.md §3); the ratio
table also goes into both models' metadata_props so a model file is usable without its sidecar.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from flexiq_trt.errors import ConfigError
from flexiq_trt.log import get_logger, stage
from flexiq_trt.plugin_spec import FLEXIQ_ONNX_SUFFIX, METADATA_KEY, RATIO_TABLE_SUFFIX, SIM_ONNX_SUFFIX
from flexiq_trt.ratios import RatioTable

from .replace_layers import write_flexiq_model
from .simulate_layers import write_simulation_model

_log = get_logger(__name__)


SIM_ARITHMETIC = ("float-exact", "integer")  # ConvertConfig.sim_arithmetic


def write_artifacts(folder: Path, stem: str, prepared: onnx.ModelProto, pairs: list,
                    table: RatioTable, sim_arithmetic: str = "float-exact", int8_edges: bool = True,
                    workspace_edges: bool = False) -> dict[str, Path]:
    """Write `<stem>.flexiq.onnx`, `<stem>.flexiq-sim.onnx`, `<stem>.flexiq.json` into `folder`.

    `pairs` are (EligibleLayer, QuantizedLayer) with the layers in their final group order.
    `sim_arithmetic`: the simulation's accumulation, float32 over exact chunks (default: the same
    int32 accumulators, faster in ONNX Runtime) or ConvInteger/MatMulInteger (docs/design.md §3).
    `int8_edges`: FlexiQ layers read only by FlexiQ layers exchange INT8 codes (graph_passes/int8_edges.py);
    `workspace_edges`: one-reader INT8 edges carry the reader's input-pass image instead (docs/design.md §2.8).
    """
    if sim_arithmetic not in SIM_ARITHMETIC:
        raise ConfigError(f"sim_arithmetic must be one of {SIM_ARITHMETIC}, got {sim_arithmetic!r}")
    meta = {METADATA_KEY: table.to_json()}
    files = {"flexiq_onnx": folder / f"{stem}{FLEXIQ_ONNX_SUFFIX}", "sim_onnx": folder / f"{stem}{SIM_ONNX_SUFFIX}",
             "sidecar": folder / f"{stem}{RATIO_TABLE_SUFFIX}"}
    with stage("write artifacts", _log):
        onnx.save(write_flexiq_model(prepared, pairs, meta, int8_edges, workspace_edges), str(files["flexiq_onnx"]))
        onnx.save(write_simulation_model(prepared, pairs, meta, mode="prefix",
                                         float_exact=sim_arithmetic == "float-exact"), str(files["sim_onnx"]))
        files["sidecar"].write_text(table.to_json())
    return files
