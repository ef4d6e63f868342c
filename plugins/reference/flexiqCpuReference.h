/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C++ CPU reference of a FlexiQ layer (docs/design.md §2): plain loops over the shared contract header.
 *
 * It is written in the *literal* per-group form (8-bit groups as int8 products, 4-bit groups
 * as (x4 . w4) * s_a * step_w[g] with the activation step s_a, docs/design.md §2.5, and the group's weight step step_w[g], §2.6), while the NumPy oracle uses the one-GEMM effective-code form, so the
 * cross-check in tests/unit/kernels also proves the two formulations agree. The CUDA kernels are
 * checked bit-exactly against this file's results.
 */
#ifndef FLEXIQ_CPU_REFERENCE_H
#define FLEXIQ_CPU_REFERENCE_H

#include "flexiqLayerArgs.h"

#include <cstddef>
#include <cstdint>

namespace flexiq
{

//! Input pass: NCHW input -> permuted 8-bit codes [B*H*W, C_pad] and activation steps s
//! [B*H*W, C_pad/G] (dynamic: per pixel and group from the group's maximum magnitude; static: 1 << p of
//! the table). `inputType` kFLEXIQ_FP32:
//! float values, quantized here; kFLEXIQ_INT8: int8 activation codes of this layer (an INT8 edge,
//! read by activationCodeFromInt8, docs/design.md §2.3).
void cpuQuantizeInput(FlexiqLayerArgs const& args, int32_t batch, int32_t height, int32_t width, int32_t inputType,
    void const* input, int32_t* codes, int32_t* steps);

//! Mixed accumulation over quantized codes -> int32 accumulators, NCHW [B, N, P, Q]. `n4` is already clamped.
void cpuMixedAccumulate(FlexiqLayerArgs const& args, int32_t batch, int32_t height, int32_t width,
    int32_t const* codes, int32_t const* steps, int32_t n4, int32_t* acc);

//! Epilogue over NCHW accumulators: y = acc * outScale[n] + bias[k][n] with k = n4 / G (the bias rung; `n4`
//! already clamped), then the activation. `outputType` kFLEXIQ_FP32: float y; kFLEXIQ_INT8: the
//! consumers' codes activationCodeBits(y, outputScale, outputSigned) as int8 bytes.
void cpuEpilogue(FlexiqLayerArgs const& args, int32_t batch, int32_t outPixels, int32_t n4, int32_t const* acc,
    int32_t outputType, void* output);

//! How a workspace edge (docs/design.md §2.8, flexiqEdgeImage.h) is written and read: the reader's n4 (raw
//! runtime value, clamped here) and the backends' format (1: int4 format, 0: int8 format).
struct CpuEdgeOptions
{
    int32_t readerN4;
    int32_t int4Format;
};

//! Producer side of a workspace edge: the image of the reader's input pass from the producer's float32
//! epilogue values `y` (NCHW [B, N, P, Q]; channel j = the reader's permuted channel j, channels
//! N..C_pad-1 zero codes). The reader is described by args.reader* and (outputScale, outputSigned).
void cpuWriteEdgeImage(FlexiqLayerArgs const& args, int32_t batch, int32_t outPixels, float const* y,
    CpuEdgeOptions const& edge, int8_t* image);

//! Reader side: codes [rows, C_pad] and steps [rows, C_pad/G] that, accumulated by cpuMixedAccumulate at
//! the same n4, give the same int32 sums as the input pass of the producer's float values (4-bit groups
//! come back as effective codes c4 * s, which extract4Step maps to the same 4-bit codes c4).
void cpuReadEdgeImage(FlexiqLayerArgs const& args, int64_t rows, int8_t const* image, CpuEdgeOptions const& edge,
    int32_t* codes, int32_t* steps);

//! cpuForward with workspace edges: input and output types may also be kFLEXIQ_INT8_WORKSPACE.
bool cpuForwardEdge(FlexiqLayerArgs const& args, FlexiqProblem const& problem, int32_t n4, CpuEdgeOptions const& edge,
    char* why, size_t whyLen);

//! A whole layer: input pass, accumulation and epilogue. `n4` is the raw runtime value (clamped here,
//! as every backend does); input and output types are kFLEXIQ_FP32 or kFLEXIQ_INT8. Returns false with
//! a reason in `why` for invalid arguments.
bool cpuForward(FlexiqLayerArgs const& args, FlexiqProblem const& problem, int32_t n4, char* why, size_t whyLen);

} // namespace flexiq

#endif // FLEXIQ_CPU_REFERENCE_H
