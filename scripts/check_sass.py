#!/usr/bin/env python3
"""Check the SASS of the FlexiQ hot kernels without a GPU (docs/design.md §4, §6).

For one arch (default sm_86) of a built kernel library (libflexiq_kernels_capi.so or
libflexiq_kernels.a) it asserts that:
  * every flexiqInt4MmaKernel instantiation issues the native int4 MMAs (IMMA.16832.S4.S4 for G = 32
    and IMMA.16864.S4.S4 for G = 64; U4.S4 for unsigned activations) and the int8 MMA for its 8-bit
    groups;
  * every flexiqInt8MmaKernel instantiation issues IMMA.16832.S8.S8 (U8.S8) and no int4 MMA;
  * every pipelined kernel (flexiqPipeInt4Kernel / flexiqPipeInt8Kernel, one per tile config and G)
    copies with LDGSTS (cp.async), reads fragments with LDSM (ldmatrix) and issues its IMMA forms:
    the int4 one for its G (16832 for G = 32, 16864 for G = 64) plus 16832 int8; the int8 one only
    16832 int8;
  * no hot kernel touches local memory: no LDL/STL in the SASS and STACK:0 / LOCAL:0 in
    `cuobjdump -res-usage`.
It prints, per kernel, registers, shared memory per CTA (static + the pipelined kernels' dynamic
ring, from their tile config) and the resulting CTAs per SM on that arch.
cuobjdump comes from PATH or the `nvidia-cuda-cuobjdump` wheel. Exit status 0 on success, 1 on a
failed check, 2 when the tool or the library is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HOT_KERNELS = ("flexiqInt4MmaKernel", "flexiqInt8MmaKernel", "flexiqInputPassKernel", "flexiqReferenceKernel",
               "flexiqPipeInt4Kernel", "flexiqPipeInt8Kernel")
PIPELINED = ("flexiqPipeInt4Kernel", "flexiqPipeInt8Kernel")

# Per-SM limits of the checked archs (CUDA C Programming Guide, compute capabilities table):
# registers, max threads, max CTAs, shared memory usable by CTAs (bytes), per-CTA reserved shared memory.
ARCH_LIMITS = {
    "sm_80": dict(regs=65536, threads=2048, ctas=32, smem=164 * 1024, reserved=1024),
    "sm_86": dict(regs=65536, threads=1536, ctas=16, smem=100 * 1024, reserved=1024),
    "sm_89": dict(regs=65536, threads=1536, ctas=24, smem=100 * 1024, reserved=1024),
}


@dataclass
class KernelReport:
    """What one kernel's SASS and resource usage show."""

    name: str
    imma: set[str] = field(default_factory=set)
    local_ops: int = 0
    ldgsts: int = 0
    ldsm: int = 0
    stack: int | None = None
    local: int | None = None
    regs: int | None = None
    shared: int | None = None


def find_cuobjdump() -> str | None:
    """Cuobjdump on PATH, else the one the nvidia-cuda-cuobjdump wheel installs next to this Python."""
    found = shutil.which("cuobjdump")
    if found:
        return found
    for base in {Path(sys.prefix), Path(sys.base_prefix)}:
        for cand in base.glob("lib/python*/site-packages/nvidia/*/bin/cuobjdump"):
            return str(cand)
    return None


def parse_sass(text: str) -> dict[str, KernelReport]:
    """Split `cuobjdump -sass` output into kernels and collect IMMA opcodes and LDL/STL counts."""
    reports: dict[str, KernelReport] = {}
    current: KernelReport | None = None
    for line in text.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            current = reports.setdefault(m.group(1), KernelReport(m.group(1)))
            continue
        if current is None:
            continue
        current.imma.update(re.findall(r"IMMA\.[0-9A-Z.]+", line))
        if re.search(r"\b(LDL|STL)(\.[A-Z0-9]+)*\b", line):
            current.local_ops += 1
        if re.search(r"\bLDGSTS\b", line):
            current.ldgsts += 1
        if re.search(r"\bLDSM\b", line):
            current.ldsm += 1
    return reports


def res_usage_table(text: str) -> dict[str, dict[str, int | None]]:
    """{function: {regs, shared, stack, local}} from `cuobjdump -res-usage` output.

    The one parser of that output: the performance model (benchmarks/perfmodel/sass.py) reads it too.
    """
    table: dict[str, dict[str, int | None]] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            name = m.group(1)
            continue
        if name is not None and re.search(r"STACK:(\d+).*LOCAL:(\d+)", line):
            values = {key: re.search(rf"{key.upper()}:(\d+)", line) for key in ("reg", "shared", "stack", "local")}
            table[name] = {("regs" if k == "reg" else k): int(v.group(1)) if v else None for k, v in values.items()}
            name = None
    return table


def parse_res_usage(text: str, reports: dict[str, KernelReport]) -> None:
    """Fill registers, shared memory, STACK and LOCAL of the reported kernels."""
    for name, usage in res_usage_table(text).items():
        if name in reports:
            report = reports[name]
            report.regs, report.shared = usage["regs"], usage["shared"]
            report.stack, report.local = usage["stack"], usage["local"]


def _signed(name: str) -> bool:
    # kSigned is the first bool template argument of every FlexiQ kernel: ...Lb1E... / ...Lb0E...
    m = re.search(r"Lb([01])E", name)
    return m is not None and m.group(1) == "1"


def pipelined_shape(name: str) -> tuple[int, int, int] | None:
    """(CTA M, CTA N, G) of a pipelined kernel from its mangled template arguments, else None."""
    m = re.search(r"PipeTileILi(\d+)ELi(\d+)ELi\d+ELi\d+EEELi(\d+)E", name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m and any(k in name for k in PIPELINED) else None


def dynamic_smem(name: str) -> int:
    """Dynamic shared memory of a pipelined kernel (tile::PipeSmem in flexiqTileConfig.cuh); 0 otherwise."""
    shape = pipelined_shape(name)
    if shape is None:
        return 0
    cta_m, cta_n, g = shape
    stages = 4 if g == 32 else 3
    return stages * ((cta_m + cta_n) * g + cta_m * 4 + 128)  # codes, row factors, the K-tile's weight step (a line)


_PIPE_TILE = re.compile(r"PipeTileILi(\d+)ELi(\d+)ELi(\d+)ELi(\d+)EE")


def threads_per_cta(name: str) -> int:
    """Launch size of a hot kernel.

    32 x warpsM x warpsN for a PipeTile<M, N, warpsM, warpsN> kernel (its mangled template
    arguments), else 128 (tile::kThreads, kInputPassThreads).
    """
    m = _PIPE_TILE.search(name)
    return 32 * int(m.group(3)) * int(m.group(4)) if m else 128


def occupancy(rep: KernelReport, arch: str) -> int | None:
    """CTAs per SM on `arch` from registers (256-per-warp allocation granularity), shared memory and threads."""
    lim = ARCH_LIMITS.get(arch)
    if lim is None or rep.regs is None:
        return None
    threads = threads_per_cta(rep.name)
    warps = threads // 32
    regs_per_warp = -(-max(rep.regs, 1) * 32 // 256) * 256
    by_regs = lim["regs"] // (regs_per_warp * warps)
    smem = (rep.shared or 0) + dynamic_smem(rep.name)
    by_smem = lim["smem"] // (smem + lim["reserved"]) if smem else lim["ctas"]
    return min(by_regs, by_smem, lim["threads"] // threads, lim["ctas"])


def check(reports: dict[str, KernelReport]) -> list[str]:
    """Human-readable failures; empty when every check passes."""
    failures: list[str] = []
    for kernel in HOT_KERNELS:
        if not any(kernel in n for n in reports):
            failures.append(f"no {kernel} instantiation found in the SASS")
    for name, rep in sorted(reports.items()):
        if not any(k in name for k in HOT_KERNELS):
            continue
        act = "S" if _signed(name) else "U"
        if "flexiqInt4MmaKernel" in name:
            for op in (f"IMMA.16832.{act}4.S4", f"IMMA.16864.{act}4.S4", f"IMMA.16832.{act}8.S8"):
                if op not in rep.imma:
                    failures.append(f"{name}: missing {op} (has {sorted(rep.imma)})")
        if "flexiqInt8MmaKernel" in name:
            if f"IMMA.16832.{act}8.S8" not in rep.imma:
                failures.append(f"{name}: missing IMMA.16832.{act}8.S8 (has {sorted(rep.imma)})")
            if any("4.S4" in op for op in rep.imma):
                failures.append(f"{name}: the int8 backend must not issue int4 MMA ({sorted(rep.imma)})")
        if any(k in name for k in PIPELINED):
            shape = pipelined_shape(name)
            g = shape[2] if shape else 32
            want = [f"IMMA.16832.{act}8.S8"]
            if "flexiqPipeInt4Kernel" in name:
                want.append(f"IMMA.{16832 if g == 32 else 16864}.{act}4.S4")
            elif any("4.S4" in op for op in rep.imma):
                failures.append(f"{name}: the int8 backend must not issue int4 MMA ({sorted(rep.imma)})")
            for op in want:
                if op not in rep.imma:
                    failures.append(f"{name}: missing {op} (has {sorted(rep.imma)})")
            if rep.ldgsts == 0:
                failures.append(f"{name}: no LDGSTS (cp.async) in a pipelined kernel")
            if rep.ldsm == 0:
                failures.append(f"{name}: no LDSM (ldmatrix) in a pipelined kernel")
        if rep.local_ops:
            failures.append(f"{name}: {rep.local_ops} LDL/STL instructions (local memory)")
        if rep.stack not in (0, None) or rep.local not in (0, None):
            failures.append(f"{name}: STACK:{rep.stack} LOCAL:{rep.local} (expected 0)")
        if rep.stack is None:
            failures.append(f"{name}: no resource usage reported")
    return failures


def _tool_output(cmd: list[str]) -> str:
    """Run a cuobjdump command and return its stdout.

    A failure names the command and its stderr (`cuobjdump -sass` also needs nvdisasm next to it:
    pip install nvidia-cuda-nvdisasm).
    """
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def run(library: Path, arch: str, cuobjdump: str) -> tuple[dict[str, KernelReport], list[str]]:
    """Disassemble `library` for `arch` and check it."""
    sass = _tool_output([cuobjdump, "-sass", "-arch", arch, str(library)])
    res = _tool_output([cuobjdump, "-res-usage", "-arch", arch, str(library)])
    reports = parse_sass(sass)
    parse_res_usage(res, reports)
    return reports, check(reports)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path, help="libflexiq_kernels_capi.so or libflexiq_kernels.a")
    parser.add_argument("--arch", default="sm_86", help="SASS arch to check (default sm_86)")
    args = parser.parse_args(argv)
    tool = find_cuobjdump()
    if tool is None:
        print("check_sass: cuobjdump not found (pip install nvidia-cuda-cuobjdump)", file=sys.stderr)
        return 2
    if not args.library.is_file():
        print(f"check_sass: {args.library} does not exist (build plugins/kernels first)", file=sys.stderr)
        return 2
    try:
        reports, failures = run(args.library, args.arch, tool)
    except RuntimeError as exc:
        print(f"check_sass: {exc}", file=sys.stderr)
        return 2
    for name, rep in sorted(reports.items()):
        smem = (rep.shared or 0) + dynamic_smem(name)
        print(f"{name}\n    IMMA: {' '.join(sorted(rep.imma)) or '-'}  LDGSTS: {rep.ldgsts}  LDSM: {rep.ldsm}  "
              f"LDL/STL: {rep.local_ops}  STACK: {rep.stack}  LOCAL: {rep.local}\n"
              f"    REG: {rep.regs}  shared/CTA: {smem} B  CTAs/SM ({args.arch}): {occupancy(rep, args.arch)}")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print("check_sass: PASSED" if not failures else f"check_sass: FAILED ({len(failures)} problems)")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
