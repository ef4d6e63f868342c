"""serve-sim: compare the ratio controller with fixed ratios and an oracle on simulated arrival traces."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args
from flexiq_trt.options import option
from flexiq_trt.serve.traces import TRACE_KINDS


@dataclass(frozen=True)
class ServeSimInputs:
    """Where the latency and accuracy figures come from, which traces to run, where to write."""

    report: str = option("", "report.json of a real conversion: accuracy per ratio (required)")
    metric: str = option(
        "accuracy", "report metric the controller maximises (accuracy, top1_agreement, cosine, ...)")
    also_metric: tuple[str, ...] = option((), "further report metrics to average in the table", nargs="*")
    profile: str = option(
        "published", "latency profile JSON (flexiq_trt.latency_profile/1 or benchmark/performance-model records), or "
                "'published': the FlexiQ paper's ViT-B batch-16 figures with modelled batch scaling")
    published_overhead_ms: float = option(
        1.5, "fixed per-batch cost assumed when scaling the published batch-16 figures to other batches")
    traces: tuple[str, ...] = option(TRACE_KINDS, "trace kinds to simulate", choices=TRACE_KINDS)
    output: str = option("", "folder for table.md, results.json and PNG plots", flags=("-o", "--output"))


class ServeSim:
    """Simulate one GPU worker with dynamic batching under bursty traces; print and write the comparison."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """The ServeSimInputs, ControllerConfig, SimConfig and TraceConfig fields."""
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.simulate import SimConfig
        from flexiq_trt.serve.traces import TraceConfig

        add_dataclass_group(p, ServeSimInputs, "Inputs")
        add_dataclass_group(p, ControllerConfig, "Controller")
        add_dataclass_group(p, SimConfig, "Worker")
        add_dataclass_group(p, TraceConfig, "Traces", prefix="trace")

    def run(self, args: argparse.Namespace) -> int:
        """Run every policy on every trace and print the table."""
        from flexiq_trt.errors import ConfigError
        from flexiq_trt.serve.accuracy import load_report_accuracy
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.profile import load_latency_profile, published_profile
        from flexiq_trt.serve.simulate import SimConfig, format_table, run_comparison
        from flexiq_trt.serve.traces import TraceConfig, generate_trace

        inputs = dataclass_from_args(ServeSimInputs, args)
        if not inputs.report:
            raise ConfigError("--report is required: accuracy per ratio from a real conversion's report.json")
        unknown = sorted(set(inputs.traces) - set(TRACE_KINDS))
        if unknown:
            raise ConfigError(f"unknown trace kinds {unknown} (known: {', '.join(TRACE_KINDS)})")
        controller = dataclass_from_args(ControllerConfig, args)
        sim = dataclass_from_args(SimConfig, args)
        trace_cfg = dataclass_from_args(TraceConfig, args, prefix="trace")
        profile = (published_profile(sim.max_batch, inputs.published_overhead_ms) if inputs.profile == "published"
                   else load_latency_profile(inputs.profile))
        accuracy = load_report_accuracy(inputs.report, inputs.metric)
        extra = tuple(load_report_accuracy(inputs.report, m) for m in inputs.also_metric if m != inputs.metric)
        traces = [generate_trace(kind, trace_cfg) for kind in inputs.traces]
        out = Path(inputs.output) if inputs.output else None
        rows = run_comparison(traces, profile, accuracy, controller, sim, out, extra)
        print(f"latency: {profile.label}\naccuracy: {accuracy.metric} from {accuracy.source}\n")
        print(format_table(rows, controller.slo_ms))
        if out is not None:
            print(f"wrote {out / 'table.md'}, {out / 'results.json'} and serving_<trace>.png")
        return 0
