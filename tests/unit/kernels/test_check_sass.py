"""SASS checks of the hot kernels (scripts/check_sass.py), runnable in CI without a GPU.

The parser is tested on hand-written SASS so a broken check cannot pass silently; the real check
runs on the built library when it and cuobjdump are available, and skips with a reason otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from flexiq_kernel_ctypes import REPO_ROOT

_spec = importlib.util.spec_from_file_location("check_sass", REPO_ROOT / "scripts" / "check_sass.py")
check_sass = importlib.util.module_from_spec(_spec)
sys.modules["check_sass"] = check_sass  # dataclasses resolve their module by name
_spec.loader.exec_module(check_sass)

INT4 = "_ZN6flexiq12_GLOBAL__N_119flexiqInt4MmaKernelILb1EfEEvNS_15MixedGemmParamsE"
INT8 = "_ZN6flexiq12_GLOBAL__N_119flexiqInt8MmaKernelILb0EfEEvNS_15MixedGemmParamsE"
INP = "_ZN6flexiq12_GLOBAL__N_121flexiqInputPassKernelILi32ELb1EfEEvNS_15InputPassParamsE"
REF = "_ZN6flexiq12_GLOBAL__N_121flexiqReferenceKernelILb1EfEEvNS_15MixedGemmParamsE"


PIPE4 = ("_ZN6flexiq55_GLOBAL__N__a8a919ac_22_flexiqPipelinedGemm_cu_777ef7c320flexiqPipeInt4KernelILb1ENS_4tile8"
         "PipeTileILi128ELi128ELi2ELi2EEELi64EEEvNS_15MixedGemmParamsE")
PIPE8 = ("_ZN6flexiq55_GLOBAL__N__a8a919ac_22_flexiqPipelinedGemm_cu_777ef7c320flexiqPipeInt8KernelILb0ENS_4tile8"
         "PipeTileILi64ELi64ELi2ELi2EEELi32EEEvNS_15MixedGemmParamsE")
PIPE_OK = ("LDGSTS.E.BYPASS.LTC128B.128 [R3], [R4.64] ;\n  LDSM.16.M88.4 R8, [R2] ;")


def _sass(int4_ops: str, int8_ops: str, extra: str = "", pipe4: str = "IMMA.16864.S4.S4 R0, R4, R8, R0",
          pipe_mem: str = PIPE_OK) -> str:
    return "\n".join([
        f"\t\tFunction : {INT4}", f"        /*0100*/  {int4_ops} ;", "        /*0110*/  IMMA.16832.S8.S8 R0, R4, R8, R0 ;",
        "        /*0120*/  IMMA.16864.S4.S4 R0, R4, R8, R0 ;",
        f"\t\tFunction : {INT8}", f"        /*0100*/  {int8_ops} ;",
        f"\t\tFunction : {INP}", f"        /*0100*/  STG.E [R2.64], R4 ;{extra}",
        f"\t\tFunction : {REF}", "        /*0100*/  IMAD R0, R1, R2, R3 ;",
        f"\t\tFunction : {PIPE4}", f"        /*0100*/  {pipe4} ;", "        /*0110*/  IMMA.16832.S8.S8 R0, R4, R8, R0 ;",
        f"  {pipe_mem}",
        f"\t\tFunction : {PIPE8}", "        /*0100*/  IMMA.16832.U8.S8 R0, R4, R8, R0 ;", f"  {pipe_mem}",
    ])


def _res(stack: int = 0) -> str:
    return "\n".join(f" Function {n}:\n  REG:128 STACK:{stack} SHARED:0 LOCAL:0 CONSTANT[0]:456"
                     for n in (INT4, INT8, INP, REF, PIPE4, PIPE8))


def _failures(sass: str, res: str) -> list[str]:
    reports = check_sass.parse_sass(sass)
    check_sass.parse_res_usage(res, reports)
    return check_sass.check(reports)


def test_clean_sass_passes():
    assert _failures(_sass("IMMA.16832.S4.S4 R0, R4, R8, R0", "IMMA.16832.U8.S8 R0, R4, R8, R0"), _res()) == []


def test_missing_int4_mma_is_reported():
    fails = _failures(_sass("IMMA.16832.S8.S8 R0, R4, R8, R0", "IMMA.16832.U8.S8 R0, R4, R8, R0"), _res())
    assert any("missing IMMA.16832.S4.S4" in f for f in fails)


def test_int4_mma_in_int8_backend_is_reported():
    fails = _failures(_sass("IMMA.16832.S4.S4 R0, R4, R8, R0", "IMMA.16832.U4.S4 R0, R4, R8, R0"), _res())
    assert any("must not issue int4" in f for f in fails)


def test_local_memory_is_reported():
    fails = _failures(_sass("IMMA.16832.S4.S4 R0", "IMMA.16832.U8.S8 R0", "\n  /*0200*/ LDL.64 R4, [R1+0x8] ;"),
                      _res(stack=16))
    assert any("LDL/STL" in f for f in fails) and any("STACK:16" in f for f in fails)


def test_pipelined_kernel_without_cp_async_or_ldmatrix_is_reported():
    ok = ("IMMA.16832.S4.S4 R0", "IMMA.16832.U8.S8 R0")
    fails = _failures(_sass(*ok, pipe_mem="LDG.E.128 R4, [R2.64] ;\n  LDS.128 R8, [R2] ;"), _res())
    assert any("no LDGSTS" in f for f in fails) and any("no LDSM" in f for f in fails)


def test_pipelined_int4_kernel_needs_the_int4_mma_of_its_group_size():
    ok = ("IMMA.16832.S4.S4 R0", "IMMA.16832.U8.S8 R0")
    assert _failures(_sass(*ok), _res()) == []
    fails = _failures(_sass(*ok, pipe4="IMMA.16832.S4.S4 R0, R4, R8, R0"), _res())  # G = 64 kernel with k32 only
    assert any("flexiqPipeInt4Kernel" in f and "missing IMMA.16864.S4.S4" in f for f in fails)


def test_occupancy_and_shared_memory_of_a_pipelined_kernel():
    rep = check_sass.KernelReport(PIPE4, regs=255, shared=0)
    assert check_sass.pipelined_shape(PIPE4) == (128, 128, 64)
    assert check_sass.dynamic_smem(PIPE4) == 3 * (256 * 64 + 128 * 4 + 128) == 51072  # tile::PipeSmem: codes, step_a, step_w
    assert check_sass.occupancy(rep, "sm_86") == 1  # 255 regs x 128 threads fill half the register file
    rep.regs = 128
    assert check_sass.occupancy(rep, "sm_86") == 1  # then 50 KB of shared memory per CTA limits it
    assert check_sass.occupancy(rep, "sm_80") == 3  # 164 KB on sm_80


def _built_library():
    env = os.environ.get("FLEXIQ_KERNELS_CAPI_LIB")
    if env:
        return env
    found = sorted(REPO_ROOT.glob("build*/**/libflexiq_kernels_capi.so"))
    return str(found[0]) if found else None


@pytest.mark.plugin
@pytest.mark.parametrize("arch", ["sm_80", "sm_86", "sm_89"])
def test_built_kernels_use_tensor_cores_and_no_local_memory(arch):
    lib = _built_library()
    if lib is None:
        pytest.skip("libflexiq_kernels_capi.so not built (set FLEXIQ_KERNELS_CAPI_LIB or build plugins/kernels)")
    tool = check_sass.find_cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found (pip install nvidia-cuda-cuobjdump)")
    reports, failures = check_sass.run(lib, arch, tool)
    assert failures == [], "\n".join(failures)
    # {signed, unsigned} x output {fp32, fp16, int8 codes}
    assert sum("flexiqInt4MmaKernel" in n for n in reports) == 6
    assert sum("flexiqReferenceKernel" in n for n in reports) == 6
    # input pass: G {32, 64} x {signed, unsigned} x input {fp32, fp16, int8 codes}
    assert sum("flexiqInputPassKernel" in n for n in reports) == 12
    for kernel in ("flexiqPipeInt4Kernel", "flexiqPipeInt8Kernel"):  # {s, u} x 3 tiles x G {32, 64}
        assert sum(kernel in n for n in reports) == 12, kernel
