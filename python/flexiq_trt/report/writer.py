"""Write the conversion report: `report.json`, `report.md` and `report.png` (metric against ratio)."""

from __future__ import annotations

import json
from pathlib import Path

HEADLINE_METRICS = ("accuracy", "top1_agreement", "cosine")


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


def _cell(row: dict | None, metric: str, share: float) -> str:
    """A metric, with the row's own 4-bit MAC share when it differs from the ratio's first row."""
    if row is None:
        return "–"
    own = row.get("mac_share", share)
    return _fmt(row.get(metric)) + (f" (@{own:.3f})" if abs(own - share) > 5e-4 else "")


def to_markdown(report: dict) -> str:
    """A human-readable summary: setup, baselines, and one table row per (ratio, variant)."""
    rows = report["rows"]
    metric = headline_metric(rows)
    lines = [f"# FlexiQ conversion report: `{report['model']}`", ""]
    for w in report.get("warnings", []):
        lines.append(f"> **Warning:** {w}")
    lines += [
        f"- eligible layers: {report['layers']['eligible']} (skipped: {len(report['layers']['skipped'])}), "
        f"group size {report['group_size']}, selector `{report['selector']}`",
        f"- calibration: {report['calibration']['samples']} samples"
        f"{' (SYNTHETIC: accuracy figures are meaningless)' if report['calibration'].get('synthetic') else ''}",
        f"- evaluation: {report['eval']['samples']} held-out samples ({report['eval']['source']})", "",
        "## Baselines", "", "| model | " + " | ".join(HEADLINE_METRICS + ("kl", "rel_l2_error")) + " |",
        "|---|" + "---|" * (len(HEADLINE_METRICS) + 2)]
    for name, m in report.get("baselines", {}).items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in HEADLINE_METRICS + ("kl", "rel_l2_error")) + " |")
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines += ["", f"## {metric} by ratio of eligible MACs in 4-bit", "",
              "| ratio | 4-bit MAC share | " + " | ".join(variants) + " |",
              "|---|---|" + "---|" * len(variants)]
    for ratio in sorted({r["ratio"] for r in rows}):
        by_v = {r["variant"]: r for r in rows if r["ratio"] == ratio}
        share = next(iter(by_v.values()))["mac_share"]
        lines.append(f"| {ratio:.2f} | {share:.3f} | " + " | ".join(_cell(by_v.get(v), metric, share) for v in variants)
                     + " |")
    lines += ["", "Variants: `flexiq` is the configured conversion; `naive` uses top-bit extraction (p = 4) for "
              "weights and activations; `plain` uses the smallest shift with plain rounding of the weights "
              "instead of error-compensating rounding.", "", "![accuracy vs ratio](report.png)", ""]
    lines += _selection_section(report.get("search_log", []))
    lines += mixquant_section(report.get("search_log", []))
    if report["layers"]["skipped"]:
        lines += ["## Layers kept in the original precision", "", "| node | op | reason |", "|---|---|---|"]
        lines += [f"| {s['name']} | {s['op_type']} | {s['reason']} |" for s in report["layers"]["skipped"]]
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
    """Metric against ratio, one line per variant, baselines as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    metric = headline_metric(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pts = sorted((r["mac_share"], r[metric]) for r in rows if r["variant"] == variant and r.get(metric) is not None)
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=variant)
    for name, m in report.get("baselines", {}).items():
        if m.get(metric) is not None:
            ax.axhline(m[metric], linestyle="--", linewidth=1, color="gray" if name == "fp32" else "tab:red",
                       label=name)
    ax.set_xlabel("share of eligible MACs in 4-bit")
    ax.set_ylabel(metric)
    ax.set_title(Path(report["model"]).name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """Write the three report files; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report.png"]
    paths[0].write_text(json.dumps(report, indent=1, default=float))
    paths[1].write_text(to_markdown(report))
    plot(report, paths[2])
    return paths
