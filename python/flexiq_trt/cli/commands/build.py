"""build: build a TensorRT(-RTX) engine from a <stem>.flexiq.onnx (ahead of time without a GPU on RTX)."""

from __future__ import annotations

import argparse


class Build:
    """Build a serialized engine from the FlexiQ ONNX with the FlexiQ plugin library loaded."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model, output and target options."""
        p.add_argument("model", help="<stem>.flexiq.onnx")
        p.add_argument("-o", "--output", required=True, help="engine file to write")
        p.add_argument("--compute-capabilities", nargs="+", type=int, default=[86, 89],
                       help="TensorRT-RTX targets, e.g. 80 86 89 (ahead-of-time, no GPU needed)")
        p.add_argument("--max-batch", type=int, default=32, help="largest batch of the dynamic profile")
        p.add_argument("--fp16", action="store_true", help="FP16 plugin I/O and FP16 for the other layers")

    def run(self, args: argparse.Namespace) -> int:
        """Build and write the engine."""
        import inspect

        from flexiq_trt.runtime.engine_builder import build_engine

        params = inspect.signature(build_engine).parameters
        kwargs = {k: v for k, v in {"compute_capabilities": tuple(args.compute_capabilities),
                                     "max_batch": args.max_batch, "fp16": args.fp16}.items() if k in params}
        path = build_engine(args.model, args.output, **kwargs)
        print(f"engine: {path}")
        return 0
