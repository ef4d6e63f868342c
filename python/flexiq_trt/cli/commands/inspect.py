"""inspect: list a model's FlexiQ-eligible layers (and why others are kept) without converting."""

from __future__ import annotations

import argparse

from flexiq_trt.cli.arg_groups import add_dataclass_group
from flexiq_trt.quantization.config import QuantConfig


class Inspect:
    """Show which Conv/Gemm/MatMul layers a conversion would replace, with MACs and reasons."""

    def add_args(self, p: argparse.ArgumentParser) -> None:
        """Model and group size (QuantConfig.group_size, the one field eligibility depends on)."""
        p.add_argument("model", help="ONNX model")
        add_dataclass_group(p, QuantConfig, "Quantization", only=("group_size",))

    def run(self, args: argparse.Namespace) -> int:
        """Print the plan as a table."""
        from flexiq_trt.intake import find_layers, load_model, prepare_model

        quant = QuantConfig(group_size=QuantConfig().group_size if args.group_size is None else args.group_size)
        layers, skipped = find_layers(prepare_model(load_model(args.model)), quant.group_size)
        total = sum(float(el.macs) for el in layers) or 1.0
        sizes = sorted({quant.group_size_for(el.in_channels) for el in layers})
        print(f"{len(layers)} eligible layer(s), {len(skipped)} kept; group size "
              f"{'/'.join(map(str, sizes)) or '-'}{' (auto, per layer)' if quant.group_size == 0 else ''}")
        print(f"{'node':<40} {'op':<7} {'C_in':>6} {'G':>3} {'N':>6} {'MACs':>12} {'share':>6}")
        for el in layers:
            print(f"{el.name[:40]:<40} {el.op_type:<7} {el.in_channels:>6} {quant.group_size_for(el.in_channels):>3} "
                  f"{el.out_channels:>6} {int(el.macs):>12} {float(el.macs) / total:>6.1%}")
        for s in skipped:
            print(f"{s.name[:40]:<40} {s.op_type:<7} kept: {s.reason}")
        return 0
