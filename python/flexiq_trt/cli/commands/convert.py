"""convert: calibrate, quantize, select channels and write the FlexiQ artifacts and report."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.datasets.demo import DemoConfig
from flexiq_trt.finetune.config import BlockRoundingConfig, FinetuneConfig, RefineConfig
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.select.config import SearchConfig


class Convert:
    """Convert an ONNX model to FlexiQ: plugin ONNX, simulation ONNX, ratio table and report.

    With no MODEL, runs a demo (`--demo`, datasets/demo.py): by default the pretrained PP-LCNet
    orientation classifier, calibrated on rotations of real photos and evaluated on rotations of
    other photos; `--demo fmnist` converts the shipped Fashion-MNIST ResNet.
    """

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """The model, then one group per config dataclass (every option is generated from a field)."""
        p.add_argument("model", nargs="?", default=None, help="ONNX model (default: the shipped demo model)")
        add_dataclass_group(p, ConvertConfig, "Conversion")
        add_dataclass_group(p, DemoConfig, "Demo (no MODEL given)")
        add_dataclass_group(p, CalibConfig, "Calibration", prefix="calib")
        add_dataclass_group(p, QuantConfig, "Quantization")
        add_dataclass_group(p, SearchConfig, "Search", prefix="search")
        add_dataclass_group(p, FinetuneConfig, "Distillation finetuning", prefix="finetune")
        add_dataclass_group(p, BlockRoundingConfig, "Block-by-block learned rounding", prefix="block_rounding")

    def run(self, args: argparse.Namespace) -> int:
        """Build the configs, run the pipeline and print where the results are."""
        from flexiq_trt.api import convert
        from flexiq_trt.select.config import preset

        model, calib_data, eval_data = args.model, args.calib_data, args.eval_data
        if model is None:
            from flexiq_trt.datasets.demo import prepare_demo_data

            demo = dataclass_from_args(DemoConfig, args).demo
            model, calib_data, eval_data = prepare_demo_data(
                Path(args.output_dir or ConvertConfig().output_dir) / ".demo_data", calib_data, eval_data, demo)
        calib = dataclass_from_args(CalibConfig, args, prefix="calib")
        quant = dataclass_from_args(QuantConfig, args)
        base = preset(args.search_preset) if args.search_preset else SearchConfig()
        given = {f.name: getattr(args, f"search_{f.name}") for f in fields(SearchConfig)
                 if f.name != "preset" and getattr(args, f"search_{f.name}", None) is not None}
        search = replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
        cfg = dataclass_from_args(ConvertConfig, args, eval_data=eval_data)
        finetune = dataclass_from_args(FinetuneConfig, args, prefix="finetune")
        rounding = dataclass_from_args(BlockRoundingConfig, args, prefix="block_rounding")
        result = convert(model, calib_data, calib_config=calib, quant=quant, search=search, config=cfg,
                         refine=RefineConfig(finetune, rounding))
        for kind, path in result.files.items():
            print(f"{kind:>12}: {path}")
        if result.report:
            print_report_summary(result.report, result.output_dir / "report.md")
        return 0


def print_report_summary(report: dict, report_md: Path) -> None:
    """The accuracy-vs-ratio table (intervals, n, change vs INT8), then the report's warnings on stderr."""
    import sys

    from flexiq_trt.report.writer import summary_table

    table = summary_table(report)
    if table:
        print(f"\n{table}")
    print(f"full report: {report_md}", flush=True)
    for warning in report.get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)
