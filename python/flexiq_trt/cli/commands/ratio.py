"""ratio: print the int32 `flexiq_max_4bit_ch` vector for a ratio (or a table of the ladder)."""

from __future__ import annotations

import argparse
import json


class Ratio:
    """Turn a ratio into the runtime vector of a converted model (.flexiq.json, .flexiq.onnx or -sim.onnx)."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model and ratios."""
        p.add_argument("model", help="a .flexiq.json sidecar or either FlexiQ ONNX artifact")
        p.add_argument("ratios", nargs="*", type=float, help="ratios in [0, 1] (default: the ladder)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def run(self, args: argparse.Namespace) -> int:
        """Print one line per ratio: ratio, achieved MAC share, vector."""
        from flexiq_trt.ratios import check_ratio, load_ratio_table

        table = load_ratio_table(args.model)
        ratios = [check_ratio(r) for r in args.ratios] or table.ladder
        rows = [{"ratio": r, "mac_share": table.achieved_ratio(v := table.vector(r)), "vector": v.tolist()}
                for r in ratios]
        if args.json:
            print(json.dumps(rows))
            return 0
        print(f"{'ratio':>6} {'4-bit MACs':>10}  flexiq_max_4bit_ch (L={table.num_layers}, G={table.group_size_label})")
        for row in rows:
            print(f"{row['ratio']:>6.3f} {row['mac_share']:>10.3f}  {row['vector']}")
        return 0
