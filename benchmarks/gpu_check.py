#!/usr/bin/env python3
"""First-GPU check: kernel tests, bit-exact spot checks, layer timings vs vendor baselines, ratio switch.

Needs one NVIDIA GPU, its driver, the CUDA runtime and PyTorch; no TensorRT, no compiler: the kernel
library (build/plugins/kernels/libflexiq_kernels_capi.so) and the C++ CPU reference
(build/plugins/reference/libflexiq_cpu_reference.so) are built beforehand on any machine with nvcc
(scripts/gpu_check.sh --prepare). Steps, each bounded by what is left of --budget-s:
  1. tests/gpu/kernels with pytest (every backend vs the CPU reference; FLEXIQ_FORCE_INT4=1 on sm_90+);
  2. spot check: every backend vs the CPU reference on the benchmark shapes at batch 1 (int32 bit-exact);
  3. timing: each benchmark layer at 0/25/50/75/100% through flexiqEnqueue replayed in a CUDA graph,
     next to torch._int_mm (cuBLASLt INT8 GEMM, same M x N x K, no im2col) and FP16 conv/GEMM (cuDNN/cuBLAS);
  4. ratio switch: one H2D copy of the int32 flexiq_max_4bit_ch vector before a graph replay, its cost
     and whether the replayed output matches a direct enqueue at the new ratio.
Writes gpu_check.json and gpu_check.md into --out. Prints its plan and GPU-time estimate first;
--dry-run stops there. Without a usable GPU it refuses with exit status 2 and one line saying why.
docs/performance.md says how to run and read it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfmodel.layers import BENCH_LAYERS, RATIOS, Layer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXIT_REFUSED = 2
CPU_REF_MACS_PER_S = 0.5e9  # the C++ reference runs ~1 GMAC/s on one core here; halved for the estimate
STARTUP_S = 20.0  # torch import + CUDA context + library load


@dataclass(frozen=True)
class CheckConfig:
    """What the check runs and how long it may take."""

    out: Path = field(default=Path("gpu_check_out"), metadata={"help": "folder for gpu_check.json and .md"})
    budget_s: float = field(default=480.0, metadata={"help": "wall-clock budget; later steps are cut to fit"})
    iters: int = field(default=50, metadata={"help": "graph replays per timed configuration"})
    batch: int = field(default=16, metadata={"help": "batch of the timed layers (gemm rows = batch x tokens)"})
    group_size: int = field(default=0, metadata={
        "help": "G of the timed layers: 0 = what the converter gives each layer by default (docs/design.md "
                "§2.2: 64 for most, 32 for narrow ones), or 32 / 64 for all"})
    tests_timeout_s: float = field(default=240.0, metadata={"help": "limit for the pytest step"})
    skip_tests: bool = field(default=False, metadata={"help": "skip step 1 (pytest)"})


@dataclass
class PlanItem:
    """One step of the plan with its estimated seconds."""

    step: str
    what: str
    estimate_s: float


def _count_gpu_tests() -> int | None:
    """Number of tests pytest collects in tests/gpu/kernels, or None without pytest."""
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               "tests/gpu/kernels"], cwd=REPO, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(\d+) tests? collected", proc.stdout) or re.search(r"collected (\d+) item", proc.stdout)
    if m:
        return int(m.group(1))
    return sum(1 for line in proc.stdout.splitlines() if "::" in line) or None


def timed_layers(cfg: CheckConfig) -> list[Layer]:
    return [layer.with_batch(cfg.batch) for layer in BENCH_LAYERS]


def make_plan(cfg: CheckConfig) -> list[PlanItem]:
    """The steps with conservative time estimates (GPU-side work is small next to host overheads)."""
    nb = len(backends())
    nt = len(timed_configs())
    plan = [PlanItem("startup", "import torch, create the CUDA context, load the kernel library", STARTUP_S)]
    if not cfg.skip_tests:
        n = _count_gpu_tests()
        est = min(cfg.tests_timeout_s, 15.0 + 0.2 * (n if n is not None else 400))
        plan.append(PlanItem("kernel_tests", f"pytest tests/gpu/kernels ({n if n is not None else '?'} tests; "
                                             f"limit {cfg.tests_timeout_s:.0f} s)", est))
    spot = sum(3 * (0.2 * nb + layer.with_batch(1).macs() / CPU_REF_MACS_PER_S) for layer in BENCH_LAYERS)
    plan.append(PlanItem("spot_check", f"{len(BENCH_LAYERS)} layers at batch 1 x {nb} backends x ratios 0/50/100%, "
                                       "int32 bit-exact vs the C++ CPU reference", spot))
    layers = timed_layers(cfg)
    per_cfg = 0.3 + cfg.iters * 0.002  # setup + capture, then replays of at most ~2 ms each
    timing = len(layers) * (nt * len(RATIOS) * per_cfg + 3 * (0.5 + cfg.iters * 0.002))
    plan.append(PlanItem("timing", f"{len(layers)} layers at batch {cfg.batch} x {nt} backend/I-O pairs "
                                   f"(FP16 I/O; pipelined also INT8 codes and workspace edges) x {len(RATIOS)} ratios + int_mm/FP16 "
                                   f"baselines, {cfg.iters} graph replays each", timing))
    plan.append(PlanItem("ratio_switch", "H2D copy of the max4bit vector + graph replay, 5 ratios, cost and correctness", 5.0))
    return plan


def print_plan(plan: list[PlanItem], cfg: CheckConfig) -> float:
    total = sum(p.estimate_s for p in plan)
    print("gpu_check plan (estimated GPU-machine time):")
    for p in plan:
        print(f"  {p.step:13} {p.estimate_s:6.0f} s  {p.what}")
    print(f"  {'total':13} {total:6.0f} s  (~{total / 60:.1f} min; budget {cfg.budget_s:.0f} s, "
          f"steps past it are cut and reported as such)")
    return total


def preflight() -> tuple[object, object, tuple[int, int], str]:
    """(torch, kernel library, (major, minor), "") or raises Refusal with the reason."""
    try:
        import torch
    except ImportError as exc:
        raise Refusal(f"PyTorch is not importable ({exc}); install torch with CUDA support") from None
    if not torch.cuda.is_available():
        raise Refusal("no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False: no GPU, no driver, "
                      "or a CPU-only torch build)")
    from perfmodel import abi
    lib, why = abi.load_kernels()
    if lib is None:
        raise Refusal(f"{why} (build it on a machine with nvcc: bash scripts/gpu_check.sh --prepare)")
    count, sm = abi.device_info(lib)
    if count == 0:
        raise Refusal("the kernel library sees no CUDA device (cudaGetDeviceCount returned 0)")
    if sm < (8, 0):
        raise Refusal(f"sm_{sm[0]}{sm[1]} has no int8/int4 m16n8k32 mma (sm_80 or newer needed)")
    return torch, lib, sm, ""


class Refusal(Exception):
    """The check cannot run on this machine; the message says why."""


class Deadline:
    """Seconds left of the budget."""

    def __init__(self, budget_s: float) -> None:
        self.end = time.monotonic() + budget_s

    def left(self) -> float:
        return self.end - time.monotonic()


# ---- steps ------------------------------------------------------------------------------------------

def run_kernel_tests(cfg: CheckConfig, sm: tuple[int, int], deadline: Deadline) -> dict:
    env = dict(os.environ)
    if sm >= (9, 0):
        env["FLEXIQ_FORCE_INT4"] = "1"
    limit = min(cfg.tests_timeout_s, max(10.0, deadline.left() - 200))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu/kernels"]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-1500:] if isinstance(exc.stdout, bytes) else (exc.stdout or "")[-1500:]
        return {"status": "timeout", "limit_s": limit, "tail": str(tail)}
    out = proc.stdout + proc.stderr
    if "No module named pytest" in out:
        return {"status": "not run", "reason": "pytest is not installed on this machine"}
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", out)}
    return {"status": "passed" if proc.returncode == 0 else "failed", "returncode": proc.returncode,
            "counts": counts, "force_int4": env.get("FLEXIQ_FORCE_INT4") == "1",
            "seconds": round(time.monotonic() - t0, 1), "tail": out[-3000:]}


def backends() -> list[str]:
    """Every tensor-core backend the kernel ABI names (int4* run emulated on sm_90+, flagged in the results)."""
    try:
        from perfmodel import abi
    except ImportError:  # a dry run on a machine without numpy: the first-version pair
        return ["int4", "int8"]
    return [b for b in abi.BACKENDS if b not in ("auto", "reference")]


FP16_IO, INT8_EDGE, WORKSPACE_EDGE = "FP16 I/O", "INT8 I/O", "workspace I/O"


def timed_configs() -> list[tuple[str, str]]:
    """(backend, I/O) pairs timed per layer: every backend with FP16 I/O; the pipelined ones also with INT8
    codes in and out, and with workspace edges in and out (no input pass; `convert --workspace-edges`)."""
    piped = [b for b in backends() if b.endswith("_pipe")]
    return [(b, FP16_IO) for b in backends()] + [(b, io) for io in (INT8_EDGE, WORKSPACE_EDGE) for b in piped]


def _reader_of(cfg: CheckConfig, layer: Layer, producer):
    """A random next layer of `layer` (C_in = its N, G by the converter's rule) for a workspace edge's producer."""
    import numpy as np
    from perfmodel import abi

    from flexiq_trt.plugin_spec import layer_group_size
    return abi.random_layer(np.random.default_rng(1), conv=layer.conv, in_channels=layer.out_channels,
                            out_channels=layer.out_channels, group_size=layer_group_size(cfg.group_size,
                                                                                         layer.out_channels))


def layer_g(cfg: CheckConfig, layer: Layer) -> int:
    """The group size a layer is checked and timed at (the converter's per-layer rule unless forced)."""
    from perfmodel import abi  # noqa: F401  (puts the repository's python/ on sys.path)

    from flexiq_trt.plugin_spec import layer_group_size
    return layer_group_size(cfg.group_size, layer.in_channels)


def _random(layer: Layer, g: int, seed: int = 0):
    import numpy as np
    from perfmodel import abi
    rng = np.random.default_rng(seed)
    q = abi.random_layer(rng, conv=layer.conv, in_channels=layer.in_channels, out_channels=layer.out_channels,
                         group_size=g, geometry=layer.geometry())
    x = abi.random_input(rng, q, layer.batch * layer.tokens, layer.height, layer.width, True)
    return q, abi.HostLayer.from_layer(q), x


def run_spot_check(cfg: CheckConfig, lib, sm, deadline: Deadline) -> list[dict]:
    import numpy as np
    from perfmodel import abi
    ref = abi.load_cpu_reference(cfg.out / "cpu_reference")
    if ref is None:
        return [{"status": "not run", "reason": "libflexiq_cpu_reference.so not found and no g++ to build it"}]
    if sm >= (9, 0):
        os.environ["FLEXIQ_FORCE_INT4"] = "1"
    rows = []
    for layer in BENCH_LAYERS:
        small = layer.with_batch(1)
        g = layer_g(cfg, layer)
        q, host, x = _random(small, g, seed=1)
        for ratio in (0.0, 0.5, 1.0):
            if deadline.left() < 150:
                rows.append({"layer": layer.name, "ratio": ratio, "status": "cut (budget)"})
                continue
            n4 = int(ratio * q.padded_channels) // g * g
            x16 = x.astype(np.float16).astype(np.float32)  # the GPU runs FP16 I/O: same input values
            want, _ = abi.cpu_forward(ref, host, x16, n4)
            for backend in backends():
                got, _, _ = abi.gpu_forward(lib, host, x, np.array([n4], np.int32), backend, True)
                bad = int(np.count_nonzero(got != want))
                rows.append({"layer": layer.name, "G": g, "backend": backend, "ratio": ratio, "n4": n4,
                             "status": "bit-exact" if bad == 0 else f"MISMATCH in {bad} of {want.size}"})
    return rows


def _time_graph(torch, fn, iters: int) -> tuple[float, str]:
    """ms per call of `fn` replayed in a CUDA graph (falls back to eager launches if capture fails)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn(stream)
    torch.cuda.synchronize()
    mode = "graph"
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            fn(stream)
        run = graph.replay
    except RuntimeError:
        mode, run = "eager", (lambda: fn(torch.cuda.current_stream()))
    torch.cuda.synchronize()
    run()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        run()
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / iters, mode


def run_timing(cfg: CheckConfig, torch, lib, sm, deadline: Deadline) -> list[dict]:
    from perfmodel import abi
    rows = []
    for layer in timed_layers(cfg):
        if deadline.left() < 60:
            rows.append({"layer": layer.name, "status": "cut (budget)"})
            continue
        g = layer_g(cfg, layer)
        q, host, x = _random(layer, g)
        row: dict = {"layer": layer.name, "G": g, "M": layer.rows, "N": layer.out_channels,
                     "K": layer.taps * layer.in_channels, "gmacs": round(layer.macs() / 1e9, 3), "flexiq": {}}
        for backend, io in timed_configs():
            if io == INT8_EDGE:  # codes in and codes out, as between two FlexiQ layers (docs/design.md §2.8)
                edge = abi.Int8Io(True, True, q.act_scale, q.act_signed)
                dev = abi.DeviceLayer.create(lib, abi.HostLayer.from_layer(q, edge), x, backend, fp16=False,
                                             int8_in=True, int8_out=True)
            elif io == WORKSPACE_EDGE:  # a layer inside a chain of workspace edges: no input pass
                reader = _reader_of(cfg, layer, q)
                host_w = abi.workspace_host(abi.permuted_producer(q, reader), reader)
                dev = abi.DeviceLayer.create(lib, host_w, x, backend, fp16=False, edge_in=True, edge_out=True)
            else:
                dev = abi.DeviceLayer.create(lib, host, x, backend, fp16=True)
            times = []
            for ratio in RATIOS:
                n4 = int(ratio * q.padded_channels) // g * g
                dev.max4bit.fill_(n4)
                ms, mode = _time_graph(torch, dev.enqueue, cfg.iters)
                times.append(round(ms, 5))
            emulated = backend.startswith("int4") and sm not in abi.NATIVE_INT4_SMS
            key = backend if io == FP16_IO else f"{backend} {INT8_EDGE}"
            row["flexiq"][key] = {"ms": times, "mode": mode, "emulated_int4": emulated, "io": io}
        row["baselines"] = _baselines(torch, layer, cfg.iters)
        rows.append(row)
    return rows


def _baselines(torch, layer: Layer, iters: int) -> dict:
    """cuBLASLt INT8 GEMM (torch._int_mm) and FP16 GEMM on M x K x N; cuDNN FP16 conv for convs."""
    m, n, k = layer.rows, layer.out_channels, layer.taps * layer.in_channels
    dev = torch.device("cuda")
    out: dict = {}
    a8 = torch.randint(-127, 128, (max(m, 17), k), dtype=torch.int8, device=dev)
    b8 = torch.randint(-127, 128, (k, n), dtype=torch.int8, device=dev)
    try:
        out["int8_int_mm_ms"] = round(_time_graph(torch, lambda s: torch._int_mm(a8, b8), iters)[0], 5)
    except RuntimeError as exc:
        out["int8_int_mm_ms"] = f"unavailable: {str(exc).splitlines()[0][:120]}"
    a16, b16 = a8.half(), b8.half()
    out["fp16_gemm_ms"] = round(_time_graph(torch, lambda s: a16 @ b16, iters)[0], 5)
    if layer.conv:
        torch.backends.cudnn.benchmark = True
        x = torch.randn(layer.batch, layer.in_channels, layer.height, layer.width, device=dev, dtype=torch.half)
        x = x.to(memory_format=torch.channels_last)
        w = torch.randn(layer.out_channels, layer.in_channels, *layer.kernel, device=dev, dtype=torch.half)
        w = w.to(memory_format=torch.channels_last)
        pad = (layer.pads[0], layer.pads[1])
        conv = torch.nn.functional.conv2d
        out["fp16_conv_cudnn_ms"] = round(_time_graph(
            torch, lambda s: conv(x, w, stride=layer.stride, padding=pad), iters)[0], 5)
    return out


def run_ratio_switch(cfg: CheckConfig, torch, lib, sm) -> dict:
    """Graph replay with and without a preceding H2D copy of the max4bit vector; outputs checked."""
    from perfmodel import abi
    layer = next(lay for lay in timed_layers(cfg) if "layer3.conv2" in lay.name)
    g = layer_g(cfg, layer)
    q, host, x = _random(layer, g)
    backend = "auto"  # what a deployment runs: the backend the library picks for this device
    dev = abi.DeviceLayer.create(lib, host, x, backend, fp16=True)
    vecs = [torch.tensor([int(r * q.padded_channels) // g * g], dtype=torch.int32).pin_memory()
            for r in RATIOS]
    stream = torch.cuda.Stream()
    direct = []
    with torch.cuda.stream(stream):
        for v in vecs:  # reference outputs: a direct enqueue at each ratio
            dev.max4bit.copy_(v)
            dev.enqueue(stream)
            direct.append(dev.output.clone())
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            dev.enqueue(stream)
    correct = True
    for v, want in zip(vecs, direct, strict=True):
        dev.max4bit.copy_(v, non_blocking=True)
        graph.replay()
        torch.cuda.synchronize()
        correct &= bool(torch.equal(dev.output, want))
    n = cfg.iters * 4
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n):
        graph.replay()
    stop.record()
    stop.synchronize()
    replay_ms = start.elapsed_time(stop) / n
    start.record()
    for i in range(n):
        dev.max4bit.copy_(vecs[i % len(vecs)], non_blocking=True)
        graph.replay()
    stop.record()
    stop.synchronize()
    switch_ms = start.elapsed_time(stop) / n
    return {"layer": layer.name, "backend": backend, "replay_ms": round(replay_ms, 5),
            "copy_plus_replay_ms": round(switch_ms, 5), "switch_cost_us": round((switch_ms - replay_ms) * 1000, 2),
            "outputs_match_direct_enqueue": correct}


# ---- report -----------------------------------------------------------------------------------------

def write_markdown(result: dict, path: Path) -> None:
    dev = result["device"]
    lines = [f"# gpu_check on {dev.get('name')} (sm_{dev.get('sm')}), MEASURED", "",
             f"torch {dev.get('torch')}, CUDA {dev.get('cuda')}; {result['elapsed_s']} s (estimate {result['estimate_s']} s)", ""]
    kt = result.get("kernel_tests", {})
    lines += [f"**Kernel tests**: {kt.get('status')} {kt.get('counts', '')} "
              f"{'(int4 forced, emulated)' if kt.get('force_int4') else ''}", ""]
    spot = result.get("spot_check", [])
    bad = [r for r in spot if r.get("status") not in ("bit-exact",)]
    lines += [f"**Spot check** (batch 1, vs CPU reference): {len(spot) - len(bad)} of {len(spot)} bit-exact"]
    lines += [f"- {r.get('layer')} {r.get('backend')} {r.get('ratio')}: {r.get('status')}" for r in bad] + [""]
    lines += ["**Layer latency, ms per call (CUDA-graph replay; FP16 I/O unless the backend names INT8 or workspace I/O)**", "",
              "| layer | backend | " + " | ".join(f"{int(r * 100)}%" for r in RATIOS)
              + " | 0%/100% | int8 _int_mm | FP16 GEMM | FP16 cuDNN conv |",
              "|---|---|" + "---:|" * (len(RATIOS) + 4)]
    for row in result.get("timing", []):
        if "flexiq" not in row:
            lines.append(f"| {row['layer']} | {row.get('status')} |" + " |" * (len(RATIOS) + 4))
            continue
        base = row["baselines"]
        for backend, t in row["flexiq"].items():
            cells = " | ".join(f"{ms:.4f}" for ms in t["ms"])
            tag = backend + (" (emulated)" if t.get("emulated_int4") else "")
            lines.append(f"| {row['layer']} | {tag} | {cells} | {t['ms'][0] / t['ms'][-1]:.2f}x | "
                         f"{base.get('int8_int_mm_ms')} | {base.get('fp16_gemm_ms')} | {base.get('fp16_conv_cudnn_ms', '-')} |")
    rs = result.get("ratio_switch", {})
    lines += ["", f"**Ratio switch** ({rs.get('layer')}, {rs.get('backend')}): replay {rs.get('replay_ms')} ms, "
              f"copy + replay {rs.get('copy_plus_replay_ms')} ms, switch cost {rs.get('switch_cost_us')} us; "
              f"outputs match a direct enqueue: {rs.get('outputs_match_direct_enqueue')}", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 all good, 1 a check failed, 2 refused (no usable GPU/library)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = CheckConfig()
    for f in CheckConfig.__dataclass_fields__.values():
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            ap.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            ap.add_argument(flag, type=type(f.default) if not isinstance(f.default, Path) else Path,
                            default=getattr(defaults, f.name), help=f.metadata["help"])
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the time estimate only")
    args = ap.parse_args(argv)
    cfg = CheckConfig(**{k: getattr(args, k) for k in CheckConfig.__dataclass_fields__})
    plan = make_plan(cfg)
    estimate = print_plan(plan, cfg)
    if args.dry_run:
        return 0
    t0 = time.monotonic()
    deadline = Deadline(cfg.budget_s)
    try:
        torch, lib, sm, _ = preflight()
    except Refusal as exc:
        print(f"gpu_check: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    cfg.out.mkdir(parents=True, exist_ok=True)
    props = torch.cuda.get_device_properties(0)
    result: dict = {"label": "MEASURED", "config": {k: str(v) for k, v in asdict(cfg).items()},
                    "estimate_s": round(estimate), "plan": [asdict(p) for p in plan],
                    "device": {"name": props.name, "sm": f"{sm[0]}{sm[1]}", "sms": props.multi_processor_count,
                               "torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node()}}
    print(f"device: {props.name} sm_{sm[0]}{sm[1]}, {props.multi_processor_count} SMs")
    if not cfg.skip_tests:
        print("step kernel_tests ...", flush=True)
        result["kernel_tests"] = run_kernel_tests(cfg, sm, deadline)
        print(f"  {result['kernel_tests'].get('status')} {result['kernel_tests'].get('counts', '')}")
    print("step spot_check ...", flush=True)
    result["spot_check"] = run_spot_check(cfg, lib, sm, deadline)
    print("step timing ...", flush=True)
    result["timing"] = run_timing(cfg, torch, lib, sm, deadline)
    print("step ratio_switch ...", flush=True)
    result["ratio_switch"] = run_ratio_switch(cfg, torch, lib, sm)
    result["elapsed_s"] = round(time.monotonic() - t0, 1)
    (cfg.out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    write_markdown(result, cfg.out / "gpu_check.md")
    print((cfg.out / "gpu_check.md").read_text())
    failed = (result.get("kernel_tests", {}).get("status") in ("failed", "timeout")
              or any("MISMATCH" in str(r.get("status")) for r in result["spot_check"])
              or not result["ratio_switch"].get("outputs_match_direct_enqueue"))
    print(f"gpu_check: {'FAILED' if failed else 'done'} in {result['elapsed_s']} s; wrote {cfg.out}/gpu_check.json and .md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
