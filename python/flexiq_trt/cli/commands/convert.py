"""convert: calibrate, quantize, select channels and write the FlexiQ artifacts and report."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.select.config import SearchConfig


class Convert:
    """Convert an ONNX model to FlexiQ: plugin ONNX, simulation ONNX, ratio table and report.

    With no MODEL, converts the shipped default model (a ResNet-style Fashion-MNIST classifier)
    with calibration on its training images and a report on the 10k labelled test images.
    """

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model, data and one group per config dataclass."""
        from flexiq_trt.select.config import PRESETS
        from flexiq_trt.select.registry import selector_names

        p.add_argument("model", nargs="?", default=None, help="ONNX model (default: the shipped demo model)")
        p.add_argument("--calib", default=None,
                       help="calibration data: .npz keyed by input name, .npy, image folder, loader script "
                            "'file.py[:func]', or 'synthetic' (needs --allow-synthetic)")
        p.add_argument("-o", "--output", default=None, help="output folder (default: flexiq_out)")
        p.add_argument("--eval", dest="eval_data", default=None,
                       help="held-out .npz for the report (arrays keyed by input name, optional 'labels')")
        p.add_argument("--selector", default=None, choices=selector_names(),
                       help="channel-selection strategy (default: evolutionary)")
        p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                       help="evolutionary search preset: paper (default: population 50 x 50 generations per "
                            "ladder ratio, the population ranked by the linearized output model, elites by the "
                            "real simulation), paper-exact (the same, every candidate through the real simulation "
                            "on calibration subsets; several times slower) or fast (24 x 25, early stopping); "
                            "see docs/selection.md")
        add_dataclass_group(p, ConvertConfig, "Conversion", skip=("output_dir", "eval_data", "selector"))
        add_dataclass_group(p, CalibConfig, "Calibration", prefix="calib", skip=("data",))
        add_dataclass_group(p, QuantConfig, "Quantization")
        add_dataclass_group(p, SearchConfig, "Search", prefix="search", skip=("preset",))

    def run(self, args: argparse.Namespace) -> int:
        """Build the configs, run the pipeline and print where the results are."""
        from flexiq_trt.api import convert
        from flexiq_trt.select.config import preset

        model, calib_data, eval_data = args.model, args.calib, args.eval_data
        if model is None:
            from flexiq_trt.datasets.demo import prepare_demo_data

            model, calib_data, eval_data = prepare_demo_data(Path(args.output or "flexiq_out") / ".demo_data",
                                                             calib_data, eval_data)
        calib = dataclass_from_args(CalibConfig, args, prefix="calib")
        quant = dataclass_from_args(QuantConfig, args)
        base = preset(args.preset) if args.preset else SearchConfig()
        search = replace(base, **{k: v for k, v in vars(dataclass_from_args(SearchConfig, args, "search")).items()
                                  if getattr(args, f"search_{k}", None) is not None})
        cfg = dataclass_from_args(ConvertConfig, args, output_dir=args.output, eval_data=eval_data,
                                  selector=args.selector)
        result = convert(model, calib_data, calib_config=calib, quant=quant, search=search, config=cfg)
        for kind, path in result.files.items():
            print(f"{kind:>12}: {path}")
        if result.report:
            print((result.output_dir / "report.md").read_text())
        return 0
