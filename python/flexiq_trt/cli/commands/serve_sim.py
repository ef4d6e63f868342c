"""serve-sim: compare the ratio controller with fixed ratios and an oracle on simulated arrival traces."""

from __future__ import annotations

import argparse
from pathlib import Path

from flexiq_trt.cli.arg_groups import add_dataclass_group, dataclass_from_args


class ServeSim:
    """Simulate one GPU worker with dynamic batching under bursty traces; print and write the comparison."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Inputs (latency profile, accuracy report), traces, and the config dataclasses' fields."""
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.simulate import SimConfig
        from flexiq_trt.serve.traces import TRACE_KINDS, TraceConfig

        p.add_argument("--report", required=True,
                       help="report.json of a real conversion: accuracy per ratio")
        p.add_argument("--metric", default="accuracy",
                       help="report metric the controller maximises (accuracy, top1_agreement, cosine, ...)")
        p.add_argument("--also-metric", nargs="*", default=[],
                       help="further report metrics to average in the table")
        p.add_argument("--profile", default="published",
                       help="latency profile JSON (flexiq_trt.latency_profile/1 or benchmark/performance-model "
                            "records), or 'published': the FlexiQ paper's ViT-B figures with modelled batch scaling")
        p.add_argument("--published-overhead-ms", type=float, default=1.5,
                       help="fixed per-batch cost assumed when scaling the published batch-16 figures")
        p.add_argument("--traces", nargs="+", default=list(TRACE_KINDS), choices=TRACE_KINDS,
                       help="trace kinds to simulate")
        p.add_argument("-o", "--output", default=None, help="folder for table.md, results.json and PNG plots")
        add_dataclass_group(p, ControllerConfig, "Controller")
        add_dataclass_group(p, SimConfig, "Worker")
        add_dataclass_group(p, TraceConfig, "Traces", prefix="trace")

    def run(self, args: argparse.Namespace) -> int:
        """Run every policy on every trace and print the table."""
        from flexiq_trt.serve.accuracy import load_report_accuracy
        from flexiq_trt.serve.controller import ControllerConfig
        from flexiq_trt.serve.profile import load_latency_profile, published_profile
        from flexiq_trt.serve.simulate import SimConfig, format_table, run_comparison
        from flexiq_trt.serve.traces import TraceConfig, generate_trace

        controller = dataclass_from_args(ControllerConfig, args)
        sim = dataclass_from_args(SimConfig, args)
        trace_cfg = dataclass_from_args(TraceConfig, args, prefix="trace")
        profile = (published_profile(sim.max_batch, args.published_overhead_ms) if args.profile == "published"
                   else load_latency_profile(args.profile))
        accuracy = load_report_accuracy(args.report, args.metric)
        extra = tuple(load_report_accuracy(args.report, m) for m in args.also_metric if m != args.metric)
        traces = [generate_trace(kind, trace_cfg) for kind in args.traces]
        out = Path(args.output) if args.output else None
        rows = run_comparison(traces, profile, accuracy, controller, sim, out, extra)
        print(f"latency: {profile.label}\naccuracy: {accuracy.metric} from {accuracy.source}\n")
        print(format_table(rows, controller.slo_ms))
        if out is not None:
            print(f"wrote {out / 'table.md'}, {out / 'results.json'} and serving_<trace>.png")
        return 0
