"""build: build a TensorRT(-RTX) engine from a <stem>.flexiq.onnx (ahead of time without a GPU on RTX)."""

from __future__ import annotations

import argparse

from flexiq_trt.cli.arg_groups import add_dataclass_group


class Build:
    """Build a serialized engine from the FlexiQ ONNX with the FlexiQ plugin library loaded."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model, output and the BuildOptions fields."""
        from flexiq_trt.runtime.engine_builder import BuildOptions

        p.add_argument("model", help="<stem>.flexiq.onnx")
        p.add_argument("-o", "--output", required=True, help="engine file to write")
        p.add_argument("--compute-capabilities", nargs="+", type=int, default=None,
                       help="TensorRT-RTX targets, e.g. 80 86 89 (ahead of time, no GPU needed; default 86 89)")
        add_dataclass_group(p, BuildOptions, "Build", skip=("compute_capabilities", "input_shapes"))

    def run(self, args: argparse.Namespace) -> int:
        """Build and write the engine."""
        from flexiq_trt.cli.arg_groups import dataclass_from_args
        from flexiq_trt.runtime.engine_builder import BuildOptions, build_engine

        caps = tuple(args.compute_capabilities) if args.compute_capabilities else None
        options = dataclass_from_args(BuildOptions, args, compute_capabilities=caps)
        result = build_engine(args.model, args.output, options)
        print(f"engine: {result.path} ({result.size_bytes / 1024:.0f} KiB, {result.backend}, "
              f"SM {', '.join(map(str, result.compute_capabilities))}, L={result.num_layers})")
        return 0
