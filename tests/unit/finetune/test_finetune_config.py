"""`--finetune` and `--block-rounding` options: validation, the CLI flags generated from the dataclasses, the missing-extra error.

These run without PyTorch (the package must import and convert without the finetune extra).
"""

from __future__ import annotations

import sys

import pytest

from flexiq_trt.errors import ConfigError
from flexiq_trt.finetune.config import (
    TORCH_EXTRA,
    BlockRoundingConfig,
    FinetuneConfig,
    RefineConfig,
    require_torch,
)


@pytest.mark.parametrize("field, value, words", [
    ("seconds", 0.0, "seconds must be > 0"),
    ("seconds", -5.0, "seconds must be > 0"),
    ("max_steps", -1, "max_steps must be >= 0"),
    ("batch_size", 0, "batch_size must be >= 1"),
    ("lr", 0.0, "lr must be in (0, 1)"),
    ("lr", 1.5, "lr must be in (0, 1)"),
    ("threads", -1, "threads must be >= 0"),
])
def test_out_of_range_options_name_the_field(field, value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        FinetuneConfig(**{field: value})


@pytest.mark.parametrize("field, value, words", [
    ("iterations", 0, "iterations must be >= 1"),
    ("views", 0, "views must be >= 1"),
    ("rungs", 0, "rungs must be >= 1"),
    ("min_layers", 0, "min_layers must be >= 1"),
    ("lr", 0.0, "lr must be in (0, 1)"),
    ("reg_weight", -0.1, "reg_weight must be >= 0"),
    ("drop", 1.0, "drop must be in [0, 1)"),
    ("threads", -1, "threads must be >= 0"),
    ("seconds", -1.0, "seconds must be >= 0"),
])
def test_block_rounding_options_name_the_field(field, value, words):
    pattern = "block rounding " + words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    with pytest.raises(ConfigError, match=pattern):
        BlockRoundingConfig(**{field: value})


def test_finetune_off_and_block_rounding_automatic_by_default():
    assert FinetuneConfig().enabled is False
    assert BlockRoundingConfig().enabled is None  # on where PyTorch is installed and the graph runs in it


def test_block_rounding_flags_come_from_the_dataclass():
    from flexiq_trt.cli.arg_groups import dataclass_from_args
    from flexiq_trt.cli.main import build_parser

    args = build_parser().parse_args(["convert", "m.onnx", "--block-rounding", "--block-rounding-iterations", "50",
                                      "--block-rounding-drop", "0.25"])
    cfg = dataclass_from_args(BlockRoundingConfig, args, prefix="block_rounding")
    assert (cfg.enabled, cfg.iterations, cfg.drop, cfg.views) == (True, 50, 0.25, BlockRoundingConfig().views)
    for argv, enabled in ((["--no-block-rounding"], False), ([], None)):
        args = build_parser().parse_args(["convert", "m.onnx", *argv])
        assert dataclass_from_args(BlockRoundingConfig, args, prefix="block_rounding").enabled is enabled


def test_cli_flags_come_from_the_dataclass():
    from flexiq_trt.cli.arg_groups import dataclass_from_args
    from flexiq_trt.cli.main import build_parser

    args = build_parser().parse_args(["convert", "m.onnx", "--calib", "c.npz", "--finetune", "--finetune-seconds", "30",
                                      "--finetune-lr", "0.005", "--no-finetune-ratio-pass"])
    cfg = dataclass_from_args(FinetuneConfig, args, prefix="finetune")
    assert (cfg.enabled, cfg.seconds, cfg.lr, cfg.ratio_pass) == (True, 30.0, 0.005, False)
    plain = dataclass_from_args(FinetuneConfig, build_parser().parse_args(["convert", "m.onnx"]), prefix="finetune")
    assert plain == FinetuneConfig()


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ConfigError, match="needs PyTorch") as err:
        require_torch()
    assert TORCH_EXTRA in str(err.value)


def test_convert_fails_before_calibration_without_torch(monkeypatch, tmp_path):
    """The API checks the extra first: no model is read, nothing is written."""
    import flexiq_trt

    monkeypatch.setitem(sys.modules, "torch", None)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read")
    with pytest.raises(ConfigError, match="needs PyTorch"):
        flexiq_trt.convert(model, calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "out",
                           refine=RefineConfig(finetune=FinetuneConfig(enabled=True)))
    with pytest.raises(ConfigError, match="--block-rounding needs PyTorch"):
        flexiq_trt.convert(model, calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "out",
                           refine=RefineConfig(block_rounding=BlockRoundingConfig(enabled=True)))
    assert not (tmp_path / "out").exists()


def test_default_convert_without_torch_goes_on_and_says_why(monkeypatch, tmp_path):
    """Block rounding left at its default is skipped without PyTorch; the sidecar and the report say why."""
    import json

    import numpy as np
    import onnx
    from _utils import models

    import flexiq_trt
    from flexiq_trt.conversion import ConvertConfig

    monkeypatch.setitem(sys.modules, "torch", None)
    onnx.save(models.residual_block(c=32, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(0).normal(size=(32, 32, 8, 8)).astype(np.float32))
    result = flexiq_trt.convert(tmp_path / "res.onnx", calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "o",
                                config=ConvertConfig(selector="greedy", ort_baseline=False, baselines=False))
    skipped = json.loads(result.files["sidecar"].read_text())["extra"]["block_rounding"]["skipped"]
    assert "PyTorch is not installed" in skipped and TORCH_EXTRA in skipped
    assert "block-by-block learned rounding: not run (PyTorch is not installed" in (tmp_path / "o/report.md").read_text()
    assert "block_rounding" not in result.timings
