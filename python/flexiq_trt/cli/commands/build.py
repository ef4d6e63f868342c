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
        add_dataclass_group(p, BuildOptions, "Build")

    def run(self, args: argparse.Namespace) -> int:
        """Build and write the engine."""
        from flexiq_trt.cli.arg_groups import dataclass_from_args
        from flexiq_trt.runtime.engine_builder import BuildOptions, build_engine

        options = dataclass_from_args(BuildOptions, args)
        result = build_engine(args.model, args.output, options)
        print(f"engine: {result.path} ({result.size_bytes / 1024:.0f} KiB, {result.backend}, "
              f"SM {', '.join(map(str, result.compute_capabilities))}, L={result.num_layers})")
        return 0
