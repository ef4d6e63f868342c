"""compare: Polygraphy comparison of the original model and the simulation ONNX at a ratio (CPU)."""

from __future__ import annotations

import argparse


class Compare:
    """Compare the FP32 model with the FlexiQ simulation through Polygraphy (its runners and tolerances)."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Models, data and tolerances."""
        p.add_argument("original", help="the original ONNX model")
        p.add_argument("simulation", help="the <stem>.flexiq-sim.onnx written by convert")
        p.add_argument("--data", required=True, help=".npz keyed by input name (axis 0 = samples)")
        p.add_argument("--ratio", type=float, default=0.5, help="ratio of eligible MACs in 4-bit")
        p.add_argument("--atol", type=float, default=0.1)
        p.add_argument("--rtol", type=float, default=0.1)
        p.add_argument("--check-error-stat", default="median", choices=("max", "mean", "median", "elemwise"))
        p.add_argument("--iterations", type=int, default=8, help="batches compared")
        p.add_argument("--batch-size", type=int, default=8)

    def run(self, args: argparse.Namespace) -> int:
        """0 when Polygraphy reports a match, 1 otherwise (its own output explains)."""
        from pathlib import Path

        from flexiq_trt.calibration.feeds import load_labelled_npz
        from flexiq_trt.calibration.model_io import input_specs
        from flexiq_trt.report.compare import CompareConfig, compare_with_polygraphy

        specs = input_specs(args.original)
        static_batch = {s.shape[0] for s in specs if s.shape and s.shape[0] is not None}
        batch = static_batch.pop() if len(static_batch) == 1 else args.batch_size
        feeds = load_labelled_npz(Path(args.data), [s.name for s in specs], "labels", batch).batches
        cfg = CompareConfig(args.ratio, args.atol, args.rtol, args.check_error_stat, args.iterations)
        return 0 if compare_with_polygraphy(Path(args.original), Path(args.simulation), feeds, cfg) else 1
