"""triton: write a Triton Inference Server model repository for a FlexiQ engine (or its ONNX)."""

from __future__ import annotations

import argparse

from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args


class Triton:
    """Write a Triton model repository: TensorRT engine model + Python front model with a per-request ratio."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model, output folder, optional controller inputs, and the TritonConfig/ControllerConfig fields."""
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.triton_repo import TritonConfig

        p.add_argument("model", help="an engine (.engine/.plan) or a <stem>.flexiq.onnx")
        p.add_argument("-o", "--output", required=True, help="model repository folder to write")
        p.add_argument("--onnx", default=None,
                       help="the <stem>.flexiq.onnx an engine was built from (default: beside the engine)")
        p.add_argument("--ratio-table", default=None, help="<stem>.flexiq.json (default: beside the ONNX)")
        p.add_argument("--plugin-lib", default=None,
                       help="libflexiq_plugins.so to copy into the repository (default: found like `build` finds it)")
        p.add_argument("--profile", default=None,
                       help="latency profile JSON (or 'published'): the front model then runs the controller")
        p.add_argument("--report", default=None, help="report.json of the conversion (accuracy per ratio)")
        p.add_argument("--metric", default="accuracy", help="report metric the controller maximises")
        add_dataclass_group(p, TritonConfig, "Repository")
        add_dataclass_group(p, ControllerConfig, "Controller")

    def run(self, args: argparse.Namespace) -> int:
        """Write the repository and say what is left to do."""
        from flexiq_trt.errors import ConfigError
        from flexiq_trt.serve.accuracy import load_report_accuracy
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.profile import load_latency_profile, published_profile
        from flexiq_trt.serve.triton_repo import TritonConfig, write_triton_repository

        cfg = dataclass_from_args(TritonConfig, args)
        profile = accuracy = None
        if args.profile:
            if not args.report:
                raise ConfigError("--profile needs --report (the controller ranks ratios by their accuracy)")
            profile = published_profile(cfg.max_batch) if args.profile == "published" else load_latency_profile(args.profile)
            accuracy = load_report_accuracy(args.report, args.metric)
        repo = write_triton_repository(args.model, args.output, cfg, onnx_path=args.onnx, ratio_table=args.ratio_table,
                                       profile=profile, accuracy=accuracy,
                                       controller=dataclass_from_args(ControllerConfig, args),
                                       plugin_lib=args.plugin_lib)
        print(f"Triton repository: {repo.root} (front model '{repo.front}', engine model '{repo.engine_model}')")
        if not repo.engine_present:
            print(f"  to do: build {repo.engine_model}/1/model.plan with the server's TensorRT (see {repo.root}/README.md)")
        return 0
