"""compare: Polygraphy comparison of the original model with the FlexiQ simulation (CPU) and engine (GPU)."""

from __future__ import annotations

import argparse

from flexiq_trt.cli.arg_groups import add_dataclass_group


class Compare:
    """Compare the FP32 model with the FlexiQ simulation (and engine) at each ratio through Polygraphy."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """The two models, then the CompareConfig fields."""
        from flexiq_trt.report.compare import CompareConfig

        p.add_argument("original", help="the original ONNX model")
        p.add_argument("simulation", help="the <stem>.flexiq-sim.onnx written by convert")
        add_dataclass_group(p, CompareConfig, "Comparison")

    def run(self, args: argparse.Namespace) -> int:
        """0 when every comparison at every ratio matches, 1 otherwise (Polygraphy's log and the table say where)."""
        from pathlib import Path

        from flexiq_trt.calibration.model_io import input_specs
        from flexiq_trt.cli.arg_groups import dataclass_from_args
        from flexiq_trt.errors import ConfigError
        from flexiq_trt.report.compare import CompareConfig, compare_at_ratios, format_summary
        from flexiq_trt.runtime.polygraphy_loader import npz_batches

        config = dataclass_from_args(CompareConfig, args)
        if not config.data:
            raise ConfigError("compare needs --data (an .npz keyed by the model's input names)")
        specs = input_specs(args.original)
        static_batch = {s.shape[0] for s in specs if s.shape and s.shape[0] is not None}
        batch = static_batch.pop() if len(static_batch) == 1 else config.batch_size
        feeds = npz_batches(Path(config.data), [s.name for s in specs], batch, config.iterations)
        rows = compare_at_ratios(Path(args.original), Path(args.simulation), feeds, config)
        print(format_summary(rows, config))
        return 0 if all(r.passed for r in rows) else 1

