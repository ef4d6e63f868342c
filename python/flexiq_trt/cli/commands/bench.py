"""bench: latency and throughput of a FlexiQ engine per ratio (and batch size) on a GPU."""

from __future__ import annotations

import argparse

from flexiq_trt.cli.arg_groups import add_dataclass_group


class Bench:
    """Time a FlexiQ engine at several ratios side by side (mean, p50, p99, throughput); needs a GPU."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """The engine, then the BenchConfig fields."""
        from flexiq_trt.runtime.bench import BenchConfig

        p.add_argument("engine", help="a FlexiQ engine (flexiq-trt build) for this GPU")
        add_dataclass_group(p, BenchConfig, "Benchmark")

    def run(self, args: argparse.Namespace) -> int:
        """Measure, print the table, optionally write the latency profile."""
        from flexiq_trt.cli.arg_groups import dataclass_from_args
        from flexiq_trt.runtime.bench import BenchConfig, format_table, run_bench

        config = dataclass_from_args(BenchConfig, args)
        result = run_bench(args.engine, config)
        print(format_table(result))
        if config.profile_json:
            print(f"latency profile: {config.profile_json}")
        return 0
