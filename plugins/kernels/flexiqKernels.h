/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host launcher interface of the FlexiQ kernels (docs/design.md §2, §4).
 *
 * The plugin (and the GPU test C ABI) talk to the kernels only through this header, which has the
 * CUTLASS device-operator shape: flexiqCanImplement -> flexiqGetWorkspaceSize -> flexiqEnqueue.
 * No TensorRT types here; every function returns a FlexiqStatus (never throws, never aborts).
 *
 * Layouts (plugin_spec.py is authoritative):
 *   input    : conv NCHW [B, C_in, H, W]; gemm [M, C_in] (treated as NCHW with B = M, H = W = 1)
 *   output   : conv NCHW [B, N, P, Q];    gemm [M, N]
 *   weights  : int8 [N, K], K = R*S*C_pad in (r, s, c) order, c fastest, c in permutation order
 *              int4 packed [N, K/2], element 2j in the low nibble
 *   n4       : read on the device from max4bit[layerIndex], clamped to [0, C_pad] and rounded
 *              down to a multiple of G there (docs/design.md §2); a null max4bit means n4 = 0.
 */
#ifndef FLEXIQ_KERNELS_H
#define FLEXIQ_KERNELS_H

#include "flexiqLayerArgs.h"

#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

extern "C" {

//! Status codes of the kernel boundary (0 = success).
enum FlexiqStatus : int32_t
{
    kFLEXIQ_SUCCESS = 0,
    kFLEXIQ_ERROR_INVALID_ARGS = 1,    //!< canImplement failed: a field is out of range
    kFLEXIQ_ERROR_UNSUPPORTED_SM = 2,  //!< sm_75 and older (no int8/int4 m16n8k32 mma)
    kFLEXIQ_ERROR_WORKSPACE = 3,       //!< workspace pointer null or too small
    kFLEXIQ_ERROR_CUDA = 4,            //!< a CUDA launch failed; see flexiqLastCudaError()
    kFLEXIQ_ERROR_BACKEND = 5,         //!< the requested backend is not compiled for this device
};

//! Kernel backends. All compute the same int32 accumulators (bit-identical).
enum FlexiqBackend : int32_t
{
    kFLEXIQ_BACKEND_AUTO = 0,      //!< resolve with flexiqSelectBackend() on the current device
    kFLEXIQ_BACKEND_INT4_MMA = 1,  //!< 4-bit groups on int4 mma (k32 for G=32, k64 for G=64; native sm_80/86/87/89)
    kFLEXIQ_BACKEND_INT8_MMA = 2,  //!< 4-bit groups as int8 mma on effective codes (sm_90+)
    kFLEXIQ_BACKEND_REFERENCE = 3, //!< one thread per output, plain loops (cross-checks only)
};

//! Backend for a device of compute capability smMajor.smMinor (kFLEXIQ_BACKEND_REFERENCE is never
//! chosen automatically). FLEXIQ_FORCE_INT4=1 in the environment forces the int4 backend on sm_90+
//! (emulated there, for tests). Returns kFLEXIQ_BACKEND_AUTO for sm_75 and older (unsupported).
FlexiqBackend flexiqSelectBackend(int smMajor, int smMinor);

//! Checks the layer arguments (group size, channel multiples, geometry, K limit, pointers).
//! Writes a short reason into `why` (may be null) on failure.
FlexiqStatus flexiqCanImplement(FlexiqLayerArgs const* args, char* why, size_t whyLen);

//! Output spatial size of a conv (gemm: 1 x 1).
void flexiqOutputHW(FlexiqLayerArgs const* args, int32_t height, int32_t width, int32_t* outH, int32_t* outW);

//! Bytes of device workspace flexiqEnqueue needs (quantized codes, shifts). Independent of n4 and
//! of the backend, so it is safe to size it at build time for the maximum shape.
size_t flexiqGetWorkspaceSize(FlexiqLayerArgs const* args, FlexiqProblem const* problem);

//! Runs the layer on `stream`: input pass (gather by permutation, quantize, shifts, 4-bit codes)
//! then the mixed GEMM with the fused epilogue. Asynchronous; safe for CUDA graph capture.
FlexiqStatus flexiqEnqueue(FlexiqBackend backend, FlexiqLayerArgs const* args, FlexiqProblem const* problem,
    void* workspace, size_t workspaceSize, cudaStream_t stream);

//! The cudaError_t of the last failing launch on this host thread (cudaSuccess if none).
cudaError_t flexiqLastCudaError();

} // extern "C"

#endif // FLEXIQ_KERNELS_H
