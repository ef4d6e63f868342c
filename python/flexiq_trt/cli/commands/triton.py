"""triton: write a Triton Inference Server model repository for a FlexiQ engine (or its ONNX)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args
from flexiq_trt.options import option


@dataclass(frozen=True)
class TritonInputs:
    """The artifacts next to the engine and, for the controller, the latency and accuracy figures."""

    output: str = option("", "model repository folder to write (required)", flags=("-o", "--output"))
    onnx: str = option("", "the <stem>.flexiq.onnx an engine was built from (default: beside the engine)")
    ratio_table: str = option("", "<stem>.flexiq.json (default: beside the ONNX)")
    plugin_lib: str = option(
        "", "libflexiq_plugins.so to copy into the repository (default: found like `build` finds it)")
    profile: str = option(
        "", "latency profile JSON (or 'published'): the front model then runs the controller")
    report: str = option("", "report.json of the conversion (accuracy per ratio)")
    metric: str = option("accuracy", "report metric the controller maximises")


class Triton:
    """Write a Triton model repository: TensorRT engine model + Python front model with a per-request ratio."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model, output folder, optional controller inputs, and the TritonConfig/ControllerConfig fields."""
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.triton_repo import TritonConfig

        p.add_argument("model", help="an engine (.engine/.plan) or a <stem>.flexiq.onnx")
        add_dataclass_group(p, TritonInputs, "Inputs")
        add_dataclass_group(p, TritonConfig, "Repository")
        add_dataclass_group(p, ControllerConfig, "Controller")

    def run(self, args: argparse.Namespace) -> int:
        """Write the repository and say what is left to do."""
        from flexiq_trt.errors import ConfigError
        from flexiq_trt.serve.accuracy import load_report_accuracy
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.profile import load_latency_profile, published_profile
        from flexiq_trt.serve.triton_repo import RatioControl, TritonConfig, write_triton_repository

        cfg = dataclass_from_args(TritonConfig, args)
        inputs = dataclass_from_args(TritonInputs, args)
        if not inputs.output:
            raise ConfigError("-o/--output is required: the model repository folder to write")
        control = None
        if inputs.profile:
            if not inputs.report:
                raise ConfigError("--profile needs --report (the controller ranks ratios by their accuracy)")
            profile = (published_profile(cfg.max_batch) if inputs.profile == "published"
                       else load_latency_profile(inputs.profile))
            accuracy = load_report_accuracy(inputs.report, inputs.metric)
            control = RatioControl(profile, accuracy, dataclass_from_args(ControllerConfig, args))
        repo = write_triton_repository(args.model, inputs.output, cfg, onnx_path=inputs.onnx or None,
                                       ratio_table=inputs.ratio_table or None, control=control,
                                       plugin_lib=inputs.plugin_lib or None)
        print(f"Triton repository: {repo.root} (front model '{repo.front}', engine model '{repo.engine_model}')")
        if not repo.engine_present:
            print(f"  to do: build {repo.engine_model}/1/model.plan with the server's TensorRT (see {repo.root}/README.md)")
        return 0
