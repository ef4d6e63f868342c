"""The kernel C ABI as the GPU benchmarks use it: the one module to edit when the ABI changes.

Two ways in, both from libflexiq_kernels_capi.so:
* host-pointer calls (`flexiqCapiRunLayer`, via tests/unit/kernels/flexiq_kernel_ctypes.py, shared
  with the kernel tests) for bit-exact comparisons against the C++ CPU reference;
* device-pointer calls (`flexiqGetWorkspaceSize` + `flexiqEnqueue` on a torch CUDA stream) for
  timing, so an enqueue can be captured in a CUDA graph and a ratio switch is one H2D copy into the
  int32 `flexiq_max_4bit_ch` tensor the kernels read (docs/design.md §4).
torch is imported lazily: this module loads on a machine without it.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO / "python", REPO / "tests" / "unit" / "kernels"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import flexiq_kernel_ctypes as kc  # noqa: E402

BACKENDS = kc.BACKENDS
NATIVE_INT4_SMS = kc.NATIVE_INT4_SMS
HostLayer = kc.HostLayer
Int8Io = kc.Int8Io
workspace_host = kc.workspace_host
permuted_producer = kc.permuted_producer
random_layer = kc.random_layer
random_input = kc.random_input
gpu_forward = kc.gpu_forward
cpu_forward = kc.cpu_forward
load_cpu_reference = kc.load_cpu_reference
output_shape = kc.output_shape
FP32, FP16, INT8, WORKSPACE = kc.FP32, kc.FP16, kc.INT8, kc.WORKSPACE  # FlexiqDataType


def load_kernels() -> tuple[ctypes.CDLL | None, str]:
    """(library, "") or (None, reason), with the device-pointer entry points declared."""
    lib, why = kc.load_kernels_capi()
    if lib is None:
        return None, why
    args_p, prob_p = ctypes.POINTER(kc.FlexiqLayerArgs), ctypes.POINTER(kc.FlexiqProblem)
    lib.flexiqGetWorkspaceSize.argtypes, lib.flexiqGetWorkspaceSize.restype = [args_p, prob_p], ctypes.c_size_t
    lib.flexiqEnqueue.argtypes = [ctypes.c_int32, args_p, prob_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    lib.flexiqEnqueue.restype = ctypes.c_int32
    lib.flexiqLastCudaError.argtypes, lib.flexiqLastCudaError.restype = [], ctypes.c_int32
    return lib, ""


def device_info(lib: ctypes.CDLL) -> tuple[int, tuple[int, int]]:
    """(CUDA device count, (major, minor) of device 0) through the library's own CUDA runtime."""
    return kc.device_info(lib)


@dataclass
class DeviceLayer:
    """One layer's fields, input, output, max4bit and workspace as torch CUDA tensors, ready to enqueue."""

    lib: ctypes.CDLL
    args: kc.FlexiqLayerArgs
    problem: kc.FlexiqProblem
    tensors: dict
    workspace_size: int
    backend: int

    @classmethod
    def create(cls, lib: ctypes.CDLL, host: kc.HostLayer, x: np.ndarray, backend: str, fp16: bool,
               num_layers: int = 1, int8_in: bool = False, int8_out: bool = False,
               edge_in: bool = False, edge_out: bool = False) -> DeviceLayer:
        """Upload the host layer and input; output and workspace allocated on the current device.

        `int8_in` / `int8_out`: INT8 edges (docs/design.md §2.8): the input is uploaded as the layer's
        activation codes of `x`; the output holds the codes of host.args.outputScale / outputSigned.
        `edge_in` / `edge_out`: workspace edges (`host` from `workspace_host`, a producer's with its
        reader's fields): the input is an all-zero reader image (valid: every code and shift 0) of
        `x`'s rows, the output the image for the reader.
        """
        import torch
        dev = torch.device("cuda")
        t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in host.arrays.items()}
        args = kc.FlexiqLayerArgs.from_buffer_copy(host.args)
        for k, v in t.items():
            setattr(args, k, v.data_ptr())
        layer = host.layer
        batch = x.shape[0]
        h, w = (x.shape[2], x.shape[3]) if layer.is_conv else (1, 1)
        dtype = torch.float16 if fp16 else torch.float32
        if edge_in:
            per_row = kc.edge_bytes_per_row(layer.padded_channels, layer.group_size)
            t["input"] = torch.zeros(batch * h * w * per_row, dtype=torch.int8, device=dev)
        elif int8_in:
            codes = kc.activation_codes(x, layer.act_scale, layer.act_signed)
            t["input"] = torch.from_numpy(np.ascontiguousarray(codes)).to(dev)
        else:
            t["input"] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev).to(dtype)
        in_type = WORKSPACE if edge_in else INT8 if int8_in else (FP16 if fp16 else FP32)
        out_type = WORKSPACE if edge_out else INT8 if int8_out else (FP16 if fp16 and not (int8_in or edge_in) else FP32)
        out_shape = output_shape(layer, batch, h, w)
        if edge_out:
            rows = int(np.prod(out_shape)) // layer.out_channels
            g_r = host.args.readerGroupSize
            t["output"] = torch.empty(rows * kc.edge_bytes_per_row(-(-layer.out_channels // g_r) * g_r, g_r),
                                      dtype=torch.int8, device=dev)
        else:
            out_dtype = {INT8: torch.int8, FP16: torch.float16, FP32: torch.float32}[out_type]
            t["output"] = torch.empty(out_shape, dtype=out_dtype, device=dev)
        t["max4bit"] = torch.zeros(num_layers, dtype=torch.int32, device=dev)
        problem = kc.FlexiqProblem(batch, h, w, in_type, out_type, t["input"].data_ptr(),
                                   t["output"].data_ptr(), t["max4bit"].data_ptr(), None)
        size = int(lib.flexiqGetWorkspaceSize(ctypes.byref(args), ctypes.byref(problem)))
        t["workspace"] = torch.empty(max(size, 4), dtype=torch.uint8, device=dev)
        return cls(lib, args, problem, t, size, BACKENDS[backend])

    def enqueue(self, stream) -> None:
        """flexiqEnqueue on a torch stream; a failure raises with the status and CUDA error code."""
        status = self.lib.flexiqEnqueue(self.backend, ctypes.byref(self.args), ctypes.byref(self.problem),
                                        self.tensors["workspace"].data_ptr(), self.workspace_size,
                                        ctypes.c_void_p(stream.cuda_stream))
        if status != 0:
            raise RuntimeError(f"flexiqEnqueue returned status {status} (cudaError {self.lib.flexiqLastCudaError()})")

    @property
    def max4bit(self):
        """The device int32 vector the kernels read n4 from (index = layer_index)."""
        return self.tensors["max4bit"]

    @property
    def output(self):
        return self.tensors["output"]
