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
 *   input    : conv NCHW [B, C_in, H, W]; gemm [M, C_in] (treated as NCHW with B = M, H = W = 1);
 *              FP32/FP16 values, or INT8 activation codes of the layer (FlexiqProblem::dataType), or a
 *              workspace edge: the image of this layer's input pass (flexiqEdgeImage.h), no input pass runs
 *   output   : conv NCHW [B, N, P, Q];    gemm [M, N]; FP32/FP16, or INT8 codes of the consumers'
 *              quantizer (FlexiqProblem::outputType, FlexiqLayerArgs::outputScale / outputSigned), or the
 *              workspace edge of the one reader (FlexiqLayerArgs::reader*; output channel j is the reader's
 *              permuted channel j: the pipelined kernels write it from the CTA tile in their epilogue)
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
    kFLEXIQ_BACKEND_AUTO = 0,      //!< resolve with the runner of the current device
    kFLEXIQ_BACKEND_INT4_MMA = 1,  //!< first-version kernel (fragments from global memory), int4 mma for 4-bit groups
    kFLEXIQ_BACKEND_INT8_MMA = 2,  //!< first-version kernel, 4-bit groups as int8 mma on effective codes
    kFLEXIQ_BACKEND_REFERENCE = 3, //!< one thread per output, plain loops (cross-checks only)
    kFLEXIQ_BACKEND_INT4_PIPELINED = 4, //!< cp.async/ldmatrix multistage, int4 mma (sm_80/86/87/89; sm_80: G = 64)
    kFLEXIQ_BACKEND_INT8_PIPELINED = 5, //!< cp.async/ldmatrix multistage, int8 mma (sm_90+; sm_80: G = 32)
};

//! Tile configurations of the pipelined backends (CTA outputs M x N; 4 warps each).
enum FlexiqTileConfig : int32_t
{
    kFLEXIQ_TILE_AUTO = -1,   //!< chosen by flexiqRunnerSelectTile
    kFLEXIQ_TILE_128x128 = 0, //!< warp tile 64 x 64
    kFLEXIQ_TILE_128x64 = 1,  //!< warp tile 64 x 32
    kFLEXIQ_TILE_64x64 = 2,   //!< warp tile 32 x 32
};

//! The device's backend for compute capability smMajor.smMinor, i.e. for layers whose group size does not
//! change it (kFLEXIQ_BACKEND_REFERENCE is never chosen automatically): the pipelined int4 backend on
//! sm_80/86/87/89, the pipelined int8 backend on sm_90+. FLEXIQ_FORCE_INT4=1 in the environment forces
//! int4 on sm_90+ (emulated there, for tests). Returns kFLEXIQ_BACKEND_AUTO for sm_75 and older (unsupported).
FlexiqBackend flexiqSelectBackend(int smMajor, int smMinor);

//! The backend for a layer of group size `groupSize` (32 or 64) on that device: flexiqSelectBackend's, except
//! sm_80 exactly (GA100: A100, A30) with G = 32 -> INT8_PIPELINED, PREDICTED faster there than int4 at high
//! 4-bit ratios (docs/performance.md, "Int8 backend on A100 at G = 32"; to be re-checked by scripts/gpu_check.sh).
//! FLEXIQ_FORCE_INT4=1 still gives int4 for every layer on sm_80+.
FlexiqBackend flexiqSelectLayerBackend(int smMajor, int smMinor, int groupSize);

//! Per-device runner (CUTLASS device-operator style: made once, then only runs): the device's
//! compute capability and SM count, the backend chosen for it and per layer group size
//! (flexiqRunnerLayerBackend), and the tile choice per layer shape.
//! Opaque; read-only after creation, so one runner serves every thread and stream of its device.
typedef struct FlexiqRunner FlexiqRunner;

//! A runner for a device described by hand (no CUDA call): for unit tests of the selection logic
//! on a CPU and for planning. Never null; flexiqRunnerBackend() is AUTO for sm_75 and older.
//! Enqueue through it only after flexiqRunnerForDevice() has prepared the device's kernels.
FlexiqRunner* flexiqRunnerCreate(int smMajor, int smMinor, int smCount);
void flexiqRunnerDestroy(FlexiqRunner* runner);

//! The runner of CUDA device `device`, made on first use (device queries, kernels opted into their
//! shared-memory size) and cached for the process; thread-safe. Owned by the library.
FlexiqStatus flexiqRunnerForDevice(int device, FlexiqRunner const** runner);

//! The device's backend (flexiqSelectBackend at the runner's creation); AUTO for an unsupported device.
FlexiqBackend flexiqRunnerBackend(FlexiqRunner const* runner);

//! The backend the runner uses for kFLEXIQ_BACKEND_AUTO on a layer of args->groupSize
//! (flexiqSelectLayerBackend with the runner's device and its FLEXIQ_FORCE_INT4 reading); no pointer is
//! read, so host args do. Null args: flexiqRunnerBackend. A caller that makes the device weights asks it
//! which backend's data to make (an int8 backend: FlexiqLayerArgs::weightEffective).
FlexiqBackend flexiqRunnerLayerBackend(FlexiqRunner const* runner, FlexiqLayerArgs const* args);

//! The backend a call with `requested` runs: AUTO -> flexiqRunnerLayerBackend's, or the device's where that
//! differs and args lacks weightEffective (sm_80 G = 32 without effective weights runs INT4_PIPELINED); a
//! pipelined backend falls back to the first-version kernel of the same MMA kind when the weights are not
//! 16-byte aligned, and INT8_PIPELINED to INT8_MMA without (16-byte aligned) weightEffective.
FlexiqBackend flexiqRunnerResolveBackend(FlexiqRunner const* runner, FlexiqBackend requested, FlexiqLayerArgs const* args);

//! Tile configuration of the pipelined backends for one layer shape: the largest CTA tile that
//! still gives every SM a CTA (128 x 128, else 128 x 64, else 64 x 64).
FlexiqTileConfig flexiqRunnerSelectTile(FlexiqRunner const* runner, FlexiqLayerArgs const* args, FlexiqProblem const* problem);

//! Runs one layer with the runner's device facts (no device query). `tile` AUTO selects per shape.
FlexiqStatus flexiqRunnerEnqueue(FlexiqRunner const* runner, FlexiqBackend backend, FlexiqTileConfig tile,
    FlexiqLayerArgs const* args, FlexiqProblem const* problem, void* workspace, size_t workspaceSize,
    cudaStream_t stream);

//! Checks the layer arguments (group size, channel multiples, geometry, K limit, pointers;
//! weights 4-byte aligned. The pipelined backends need 16 bytes, see flexiqRunnerResolveBackend).
//! Writes a short reason into `why` (may be null) on failure.
FlexiqStatus flexiqCanImplement(FlexiqLayerArgs const* args, char* why, size_t whyLen);

//! flexiqCanImplement plus the per-call checks of a problem: sizes, pointers, and the input/output
//! types (FP32, FP16 or INT8 codes; an INT8 output needs args->outputScale > 0, docs/design.md §2.3).
//! flexiqRunnerEnqueue runs exactly this check first.
FlexiqStatus flexiqCanImplementProblem(
    FlexiqLayerArgs const* args, FlexiqProblem const* problem, char* why, size_t whyLen);

//! Output spatial size of a conv (gemm: 1 x 1).
void flexiqOutputHW(FlexiqLayerArgs const* args, int32_t height, int32_t width, int32_t* outH, int32_t* outW);

//! Bytes of device workspace flexiqEnqueue needs (quantized codes, activation steps). Independent of n4 and of the
//! backend, so it is safe to size it at build time for the maximum shape. INT8 codes need no more; a
//! workspace-edge input needs no code planes, a workspace-edge output adds B * N * P * Q bytes (the
//! first-version and reference kernels' INT8 codes before the second launch, flexiqLauncher.cpp).
size_t flexiqGetWorkspaceSize(FlexiqLayerArgs const* args, FlexiqProblem const* problem);

//! Runs the layer on `stream`: input pass (gather by permutation, quantize, activation steps, 4-bit codes)
//! then the mixed GEMM with the fused epilogue. Asynchronous; safe for CUDA graph capture.
//! Looks up the cached runner of the current device (cudaGetDevice only) and calls flexiqRunnerEnqueue.
FlexiqStatus flexiqEnqueue(FlexiqBackend backend, FlexiqLayerArgs const* args, FlexiqProblem const* problem,
    void* workspace, size_t workspaceSize, cudaStream_t stream);

//! The cudaError_t of the last failing launch on this host thread (cudaSuccess if none).
cudaError_t flexiqLastCudaError();

} // extern "C"

#endif // FLEXIQ_KERNELS_H
