"""`--weight-rounding recon` through the whole conversion: the report gains a `gptq` step column,
INT8 (ratio 0) is identical to GPTQ's, and the simulation still serves every ratio."""

from __future__ import annotations

import json

import numpy as np
import onnx
from _utils import models
from _utils.configs import NO_BLOCK_ROUNDING

import flexiq_trt
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.quantization.config import QuantConfig


def test_recon_conversion_reports_each_step(tmp_path):
    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    x = np.maximum(np.random.default_rng(0).normal(size=(48, 64, 8, 8)), 0).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    flexiq_trt.convert(tmp_path / "res.onnx", calib=str(tmp_path / "calib.npz"), output_dir=tmp_path / "out",
                       quant=QuantConfig(weight_rounding="recon"),
                       config=ConvertConfig(selector="greedy", ort_baseline=False, measure_sensitivity=False), refine=NO_BLOCK_ROUNDING)
    rep = json.loads((tmp_path / "out/report.json").read_text())
    rows = {(r["variant"], r["ratio"]): r for r in rep["rows"]}
    assert {v for v, _ in rows} == {"flexiq", "naive", "plain", "gptq", "no_bias_corr", "fixed_damp"}
    assert rep["quantization"]["weight_rounding"] == "recon"
    assert rows[("flexiq", 0.0)]["cosine"] == rows[("gptq", 0.0)]["cosine"]  # INT8 untouched
    assert rows[("flexiq", 0.0)]["cosine"] == rows[("no_bias_corr", 0.0)]["cosine"]  # rung 0 is the INT8 bias
    assert rep["artifact_check"]["identical"]  # the shipped simulation (bias rungs included) is what was evaluated
    assert rows[("flexiq", 1.0)]["cosine"] > 0.5  # the all-4-bit model still tracks FP32
