"""Write the conversion report: `report.json`, `report.md` and `report.png` (metric against ratio).

Every figure is shown with its sample count and its 95% interval ("value [low, high]"; the methods
are in report/intervals.py), and each ratio's change against INT8 (ratio 0) with a paired
interval, so a difference the data cannot resolve is marked as such rather than ranked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flexiq_trt.quantization.stage import FIXED_DAMP, NO_BIAS_CORRECTION
from flexiq_trt.report.metrics import without_per_sample

HEADLINE_METRICS = ("accuracy", "top1_agreement", "cosine")
NOT_SIGNIFICANT = "n.s."


def shown_metrics(rows: list[dict]) -> list[str]:
    """Labelled accuracy and top-1 agreement where present, else cosine.

    Both classifier metrics are shown because they answer different questions: accuracy is what a
    user ships, agreement with FP32 is what quantization changes, and it moves with the ratio even
    where accuracy is flat or its interval is wide.
    """
    found = [m for m in ("accuracy", "top1_agreement") if any(r.get(m) is not None for r in rows)]
    return found or ["cosine"]


def headline_metric(rows: list[dict]) -> str:
    """The most meaningful metric present: labelled accuracy, else top-1 agreement, else cosine."""
    for name in HEADLINE_METRICS:
        if any(r.get(name) is not None for r in rows):
            return name
    return "cosine"


def _fmt(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def with_interval(figures: dict, metric: str) -> str:
    """`value [low, high]` from a row or baseline dict (just the value where no interval is recorded)."""
    value = figures.get(metric)
    ci = (figures.get("intervals") or {}).get(metric)
    if value is None or not ci:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(float(ci[0]))}, {_fmt(float(ci[1]))}]"


def difference(row: dict | None, metric: str) -> str:
    """`+diff [low, high]` against INT8 (paired), marked n.s. when the interval contains 0."""
    d = None if row is None else (row.get("vs_int8") or {}).get(metric)
    if not d:
        return "–"
    text = f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
    return text if d["significant"] else f"{text} {NOT_SIGNIFICANT}"


def _cell(row: dict | None, metric: str, share: float) -> str:
    """A metric with its interval, and the row's own 4-bit MAC share when it differs from the ratio's first row."""
    if row is None:
        return "–"
    own = row.get("mac_share", share)
    return with_interval(row, metric) + (f" (@{own:.3f})" if abs(own - share) > 5e-4 else "")


def _row_samples(rows: list[dict], metric: str) -> int | None:
    """The sample count behind `metric` in the rows (labelled samples for accuracy)."""
    for r in rows:
        if r.get(metric) is not None:
            return r.get("labelled") if metric in ("accuracy", "fp32_accuracy") and r.get("labelled") else r.get("samples")
    return None


def _int8_edge_line(report: dict) -> list[str]:
    """The INT8-edge summary line of the plugin ONNX (absent in reports older than the field)."""
    edges = report["layers"].get("int8_edges")
    if not edges:
        return []
    return [f"- INT8 between layers in the plugin ONNX: {edges['outputs']} layer(s) write codes that "
            f"{edges['inputs']} layer(s) read (docs/design.md §2.8)"]


def _offset_line(report: dict) -> list[str]:
    """How many layers read a bounded signed input shifted to unsigned codes (absent when none)."""
    offsets = report["layers"].get("input_offsets")
    if not offsets:
        return []
    bounds = sorted({f"{-o['lower_bound']:g}" for o in offsets})
    return [f"- offset inputs: {len(offsets)} layer(s) read a bounded signed input shifted by +{' / +'.join(bounds)} "
            f"to unsigned codes, the shift folded into their biases (docs/design.md §2.3)"]


def _silent_line(report: dict) -> list[str]:
    """Input channels that never fired in calibration (absent when none): a hint that the data is too narrow."""
    silent = report["layers"].get("silent_channels")
    if not silent:
        return []
    return [f"- {sum(s['channels'] for s in silent)} input channel(s) of {len(silent)} layer(s) (almost) never fired "
            f"on the calibration data; their 4-bit weights were kept close to the float weights, and calibration "
            f"data that exercises them would make the 4-bit figures more trustworthy (docs/accuracy.md, \"Channels "
            f"silent in calibration\")"]


def _finetune_line(report: dict) -> list[str]:
    """What the distillation finetune did (absent without --finetune)."""
    f = report.get("finetune")
    if not f:
        return []
    before, after = f["loss_before"], f["loss_after"]
    losses = ", ".join(f"{float(r):.2f}: {before[r]:.4g} → {after[r]:.4g}" for r in before)
    return [f"- distillation finetuning: {f['steps']} steps in {f['train_seconds']:.0f} s (budget "
            f"{f['budget_seconds']:.0f} s; the stage {f['seconds']:.0f} s wall, {f['cpu_seconds']:.0f} s CPU) on "
            f"{f['calibration_samples']} calibration samples; distillation loss on {f['loss_samples']} of them "
            f"(fake-quant, plain 4-bit weights) per ratio, before → after: {losses}"]


def _block_rounding_line(report: dict) -> list[str]:
    """What the block-by-block learned rounding did, or why it did not run (absent with --no-block-rounding)."""
    b = report.get("block_rounding")
    if not b:
        return []
    if "skipped" in b:
        return [f"- block-by-block learned rounding: not run ({b['skipped']})"]
    blocks = b["blocks"]
    missed = b.get("blocks_not_reached", 0)
    changed, codes = sum(x["changed"] for x in blocks), sum(x["codes"] for x in blocks)
    ratios = list(blocks[0]["loss_before"]) if blocks else []
    ratio_of = [np.mean([x["loss_after"][r] / max(x["loss_before"][r], 1e-12) for x in blocks]) for r in ratios]
    reverted = sum(1 for x in blocks if not x.get("kept", True))
    return [f"- block-by-block learned rounding: {len(blocks)} blocks ({reverted} kept the stored codes, the "
            f"learned ones being worse on the calibration samples), {b['iterations']} steps each on "
            f"{b['samples']} samples (the {b['calibration_samples']} calibration samples with augmented views, at most "
            f"{b.get('max_samples', b['samples'])}), "
            f"{b['seconds']:.0f} s wall, {b['cpu_seconds']:.0f} s CPU; {changed} of {codes} 4-bit codes "
            f"({100 * changed / max(codes, 1):.1f}%) round the other way; block loss after / before on "
            f"{b['fixed_samples']} calibration samples, mean over blocks, per ratio: "
            + ", ".join(f"{float(r):.2f}: {v:.3f}" for r, v in zip(ratios, ratio_of, strict=True))
            + (f"; the {b['budget_seconds']:.0f} s budget ran out before the last {missed} blocks, which keep "
               "their stored codes" if missed else "")]


def group_size_text(report: dict) -> str:
    """The group size for the summary: 32, 64, or (group_size 0) the per-layer mix with layer counts."""
    if report["group_size"]:
        return str(report["group_size"])
    counts = report.get("group_sizes") or {}
    return "per layer" + (": " + ", ".join(f"{n} layers G={g}" for g, n in counts.items()) if counts else "")


def to_markdown(report: dict) -> str:
    """A human-readable summary: setup, baselines, and one table row per (ratio, variant)."""
    rows = report["rows"]
    lines = [f"# FlexiQ conversion report: `{report['model']}`", ""]
    for w in report.get("warnings", []):
        lines.append(f"> **Warning:** {w}")
    cols = HEADLINE_METRICS + ("kl", "rel_l2_error")
    lines += [
        f"- eligible layers: {report['layers']['eligible']} (skipped: {len(report['layers']['skipped'])}), "
        f"group size {group_size_text(report)}, selector `{report['selector']}`",
        *_int8_edge_line(report),
        *_offset_line(report),
        *_silent_line(report),
        *_finetune_line(report),
        *_block_rounding_line(report),
        f"- calibration: {report['calibration']['samples']} samples"
        f"{' (SYNTHETIC: accuracy figures are meaningless)' if report['calibration'].get('synthetic') else ''}",
        f"- evaluation: {report['eval']['samples']} held-out samples ({report['eval']['source']})",
        "- every figure is `value [low, high]`, a 95% interval: Wilson for proportions (accuracy, agreement), "
        "bootstrap over samples for means (cosine, KL, relative L2); n is the number of samples behind it", "",
        "## Baselines", "", "| model | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, m in report.get("baselines", {}).items():
        lines.append(f"| {name} | {m.get('samples', '–')} | " + " | ".join(with_interval(m, k) for k in cols) + " |")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    ratios = sorted({r["ratio"] for r in rows})
    for metric in shown_metrics(rows):
        lines += ["", f"## {metric} by ratio of eligible MACs in 4-bit (n = {_row_samples(rows, metric)})", "",
                  "| ratio | 4-bit MAC share | n | " + " | ".join(variants) + " |",
                  "|---|---|---|" + "---|" * len(variants)]
        for ratio in ratios:
            by_v = {r["variant"]: r for r in rows if r["ratio"] == ratio}
            share = next(iter(by_v.values()))["mac_share"]
            lines.append(f"| {ratio:.2f} | {share:.3f} | {_row_samples(list(by_v.values()), metric)} | "
                         + " | ".join(_cell(by_v.get(v), metric, share) for v in variants) + " |")
    lines += ["", "Variants: `flexiq` is the configured conversion; `naive` uses top-bit extraction (step 16) for "
              "weights and activations; `plain` uses each weight group's smallest step with plain rounding "
              "instead of error-compensating rounding."
              + (" `no_bias_corr` is the configured conversion without the ratio-aware bias correction (one "
                 "bias at every ratio)." if NO_BIAS_CORRECTION in variants else "")
              + (" `fixed_damp` is the configured conversion with GPTQ's damping fixed at the first candidate "
                 "instead of chosen per group by cross-validation." if FIXED_DAMP in variants else "")
              + (" With `--finetune`, `flexiq` is the finetuned conversion (the artifact), `before_finetune` the "
                 "configured conversion before finetuning (same order), `finetuned_<rounding>` the finetuned layers "
                 "stored with the other 4-bit rounding; the baselines are those of the conversion before finetuning."
                 if "before_finetune" in variants else "")
              + (" With `--block-rounding`, `flexiq` has the learned 4-bit codes (the artifact), "
                 "`before_block_rounding` the codes before learning (same order, same INT8 model)."
                 if "before_block_rounding" in variants else ""), ""]
    for metric in shown_metrics(rows):
        lines += _difference_section(rows, metric, variants, ratios)
    lines += ["![accuracy vs ratio](report.png)", ""]
    lines += _selection_section(report.get("search_log", []))
    lines += mixquant_section(report.get("search_log", []))
    if report["layers"]["skipped"]:
        lines += ["## Layers kept in the original precision", "", "| node | op | reason |", "|---|---|---|"]
        lines += [f"| {s['name']} | {s['op_type']} | {s['reason']} |" for s in report["layers"]["skipped"]]
    return "\n".join(lines) + "\n"


def _difference_section(rows: list[dict], metric: str, variants: list[str], ratios: list[float]) -> list[str]:
    """Each ratio's change of `metric` against the same variant at ratio 0 (INT8), paired interval."""
    if not any(r.get("vs_int8") for r in rows):
        return []
    lines = [f"## Change of {metric} against INT8 (ratio 0) of the same variant", "",
             "| ratio | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for ratio in ratios:
        by_v = {r["variant"]: r for r in rows if r["ratio"] == ratio}
        if any(r.get("vs_int8") for r in by_v.values()):
            lines.append(f"| {ratio:.2f} | " + " | ".join(difference(by_v.get(v), metric) for v in variants) + " |")
    return lines + ["", "Difference and 95% interval from a paired bootstrap over the same samples; "
                    f"`{NOT_SIGNIFICANT}` marks an interval that contains 0: on these samples that ratio cannot be "
                    "told apart from INT8, whatever the sign of the difference.", ""]


def summary_table(report: dict, variant: str = "flexiq") -> str:
    """The accuracy-vs-ratio table the CLI prints: `variant`'s metrics with intervals, n and change vs INT8."""
    rows = report["rows"]
    mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["ratio"])
    if not mine:
        return ""
    metrics = shown_metrics(mine)
    counts = ", ".join(f"{m} n = {_row_samples(mine, m)}" for m in metrics)
    lines = [f"`{variant}` by 4-bit ratio on held-out samples ({counts}); value [95% interval]; change vs INT8 "
             f"(ratio 0) from a paired bootstrap, {NOT_SIGNIFICANT} = the data cannot tell it from INT8:", "",
             "| ratio | 4-bit MAC share | " + " | ".join(f"{m} | change vs INT8" for m in metrics) + " |",
             "|---|---|" + "---|---|" * len(metrics)]
    for r in mine:
        cells = [c for m in metrics for c in (with_interval(r, m), difference(r, m))]
        lines.append(f"| {r['ratio']:.2f} | {r['mac_share']:.3f} | " + " | ".join(cells) + " |")
    for name, m in report.get("baselines", {}).items():
        if any(m.get(k) is not None for k in metrics):
            lines.append(f"| {name} | | " + " | ".join(c for k in metrics for c in (with_interval(m, k), "")) + " |")
    return "\n".join(lines) + "\n"


def _selection_section(log: list[dict]) -> list[str]:
    """What the evolutionary search did at each ladder ratio (from its log); empty for other selectors."""
    results = [e for e in log if e.get("event") == "ratio_result"]
    if not results:
        return []
    screening = {e["ratio"]: e for e in log if e.get("event") == "screening"}
    lines = ["## Channel selection (evolutionary search)", "",
             "| ratio | set kept | calibration fitness: baseline → search best | held-out guard: baseline → kept "
             "| guard tests passed | population ranked by |", "|---|---|---|---|---|---|"]
    for e in results:
        guard = (f"{e['holdout_fitness_greedy']:.4g} → {e['holdout_fitness_chosen']:.4g}"
                 if "holdout_fitness_chosen" in e else "–")
        tests = f"{e['guard_passed']} of {e['guard_tests']}" if "guard_tests" in e else "–"
        sc = screening.get(e["ratio"])
        ranked = (f"linearized model ({sc['items']} items × {sc['samples']} samples, {sc['seconds']:.1f} s)"
                  if sc else "real simulation")
        lines.append(f"| {e['ratio']:.2f} | {e['chosen']} | {e['calib_fitness_greedy']:.4g} → "
                     f"{e['calib_fitness_best']:.4g} | {guard} | {tests} | {ranked} |")
    lines += ["", "Fitness = mean L2 distance to the INT8 model's (softmax) outputs, lower is better. The baseline is "
              "the greedy or range-order set; the search's set is kept only when it beats it on held-out "
              "calibration samples in a paired test (docs/selection.md); each improvement of the calibration best is "
              "one guard test.", ""]
    return lines


def mixquant_section(log: list[dict]) -> list[str]:
    """MixQuant's own 2..8-bit allocation per QEM (from the MixQuant selector's log); empty without it."""
    sweep = [e for e in log if e.get("event") == "mixquant_allocation"]
    if not sweep:
        return []
    thresholds = {e["layer"]: e["qem_4bit"] for e in log if "qem_4bit" in e}
    lines = ["## MixQuant's own allocation", "",
             "Per layer, the lowest bit-width b in 2..8 whose weight MSE (uniform symmetric b-bit, per output "
             "channel, on the float weights) is at most QEM × its 8-bit MSE. FlexiQ's format has only 4 and 8 "
             "bits: the `mixquant` order puts a layer at 4-bit from the QEM at which MixQuant gives it ≤ 4 bits.",
             "", "| QEM | MAC-weighted mean bits | share of eligible MACs at ≤ 4 bits |", "|---|---|---|"]
    lines += [f"| {e['qem']:g} | {e['mean_bits']:.2f} | {100 * e['ratio_4bit']:.1f}% |" for e in sweep]
    lines += ["", "| layer | QEM for ≤ 4 bits | " + " | ".join(f"bits @ QEM {e['qem']:g}" for e in sweep) + " |",
              "|---|---|" + "---|" * len(sweep)]
    for layer in sweep[0]["bits"]:
        threshold = thresholds.get(layer)
        lines.append(f"| {layer} | {'–' if threshold is None else f'{threshold:.4g}'} | "
                     + " | ".join(str(e["bits"][layer]) for e in sweep) + " |")
    return lines + [""]


def plot(report: dict, path: Path) -> None:
    """Each shown metric against ratio, one panel each, with 95% error bars; baselines as lines and bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    metrics = shown_metrics(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 4.2), dpi=110, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        for i, variant in enumerate(variants):
            mine = sorted((r for r in rows if r["variant"] == variant and r.get(metric) is not None),
                          key=lambda r: r["mac_share"])
            dodge = (i - (len(variants) - 1) / 2) * 0.006  # keeps overlapping error bars apart
            if mine:
                ax.errorbar([r["mac_share"] + dodge for r in mine], [r[metric] for r in mine],
                            yerr=_error_bars(mine, metric), marker="o", capsize=3, label=variant)
        for name, m in report.get("baselines", {}).items():
            if m.get(metric) is not None:
                color = "gray" if name == "fp32" else "tab:red"
                ax.axhline(m[metric], linestyle="--", linewidth=1, color=color, label=name)
                ci = (m.get("intervals") or {}).get(metric)
                if ci and ci[1] > ci[0]:
                    ax.axhspan(ci[0], ci[1], color=color, alpha=0.12, linewidth=0)
        ax.set_xlabel("share of eligible MACs in 4-bit")
        ax.set_ylabel(f"{metric} (95% interval, n = {_row_samples(rows, metric)})")
        ax.set_title(f"{Path(report['model']).name}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _error_bars(rows: list[dict], metric: str) -> list[list[float]] | None:
    """Asymmetric error bars (below, above) from the rows' intervals; None when any row has none."""
    cis = [(r.get("intervals") or {}).get(metric) for r in rows]
    if any(ci is None for ci in cis):
        return None
    return [[max(0.0, r[metric] - ci[0]) for r, ci in zip(rows, cis, strict=True)],
            [max(0.0, ci[1] - r[metric]) for r, ci in zip(rows, cis, strict=True)]]


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """Write the three report files (per-sample values are never written); returns their paths."""
    report = without_per_sample(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report.png"]
    paths[0].write_text(json.dumps(report, indent=1, default=float))
    paths[1].write_text(to_markdown(report))
    plot(report, paths[2])
    return paths
