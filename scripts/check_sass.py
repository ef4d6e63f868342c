#!/usr/bin/env python3
"""Check the SASS of the FlexiQ hot kernels without a GPU (docs/design.md §4, §6).

For one arch (default sm_86) of a built kernel library (libflexiq_kernels_capi.so or
libflexiq_kernels.a) it asserts that:
  * every flexiqInt4MmaKernel instantiation issues the native int4 MMAs (IMMA.16832.S4.S4 for G = 32
    and IMMA.16864.S4.S4 for G = 64; U4.S4 for unsigned activations) and the int8 MMA for its 8-bit
    groups;
  * every flexiqInt8MmaKernel instantiation issues IMMA.16832.S8.S8 (U8.S8) and no int4 MMA;
  * no hot kernel (input pass, both MMA kernels, and the reference kernel) touches local memory:
    no LDL/STL in the SASS and STACK:0 / LOCAL:0 in `cuobjdump -res-usage`.
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

HOT_KERNELS = ("flexiqInt4MmaKernel", "flexiqInt8MmaKernel", "flexiqInputPassKernel", "flexiqReferenceKernel")


@dataclass
class KernelReport:
    """What one kernel's SASS and resource usage show."""

    name: str
    imma: set[str] = field(default_factory=set)
    local_ops: int = 0
    stack: int | None = None
    local: int | None = None


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
    return reports


def parse_res_usage(text: str, reports: dict[str, KernelReport]) -> None:
    """Fill STACK/LOCAL from `cuobjdump -res-usage` output."""
    name = None
    for line in text.splitlines():
        m = re.match(r"\s*Function (\S+):", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"STACK:(\d+).*LOCAL:(\d+)", line)
        if m and name in reports:
            reports[name].stack, reports[name].local = int(m.group(1)), int(m.group(2))


def _signed(name: str) -> bool:
    # kSigned is the first bool template argument of every FlexiQ kernel: ...Lb1E... / ...Lb0E...
    m = re.search(r"Lb([01])E", name)
    return m is not None and m.group(1) == "1"


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
        print(f"{name}\n    IMMA: {' '.join(sorted(rep.imma)) or '-'}  LDL/STL: {rep.local_ops}  "
              f"STACK: {rep.stack}  LOCAL: {rep.local}")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    print("check_sass: PASSED" if not failures else f"check_sass: FAILED ({len(failures)} problems)")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
