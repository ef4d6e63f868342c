/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Input pass of a FlexiQ layer (docs/design.md §2, §4): gather the NCHW input by the permutation (zero
 * padding for channels >= C_in), quantize to 8-bit codes with an IEEE division (an INT8 input already
 * holds the codes: activationCodeFromInt8, docs/design.md §2.3), pick each
 * (pixel, group)'s activation step s (docs/design.md §2.5: dynamic rule from the group's maximum
 * magnitude, or 1 << p of the static table) and write
 *   codes8 [rows, C_pad]   8-bit codes of every group the GEMM reads as int8: all groups for the
 *                          reference backend, the 8-bit suffix for the int4 backend, and for the
 *                          int8 backend all groups with effective codes in the 4-bit prefix
 *   codes4 [rows, C_pad/2] int4 backend only: 4-bit codes extract4Step(q, s) of the 4-bit prefix groups,
 *                          low nibble first
 *   shiftA [rows, C_pad/G] int8: the step s (1..16; the name predates integer steps)
 *   factorA [rows, C_pad/G] int32 s and wStepWide [C_pad/G] int32 step_w (pipelined backends)
 * n4 is read from device memory and clamped here, so ratio switches need no host round trip.
 * The body is a device function so the host warp emulator (tests/unit/kernels) runs the same code.
 */
#ifndef FLEXIQ_INPUT_PASS_CUH
#define FLEXIQ_INPUT_PASS_CUH

#include "flexiqContract.h"
#include "flexiqKernelsInternal.h"
#include "flexiqLayerArgs.h"
#include "flexiqSmemOps.cuh"

#include <type_traits>

#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
#include <cuda_fp16.h>
#endif

namespace flexiq
{

__device__ __forceinline__ float loadInput(float const* p, int64_t i)
{
    return __ldg(p + i);
}

#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
__device__ __forceinline__ float loadInput(__half const* p, int64_t i)
{
    return __half2float(p[i]); // exact widening
}
#endif

//! The 8-bit activation code of input element i: quantized from a float/half value, or read from an
//! INT8 edge tensor that already holds this layer's codes.
template <bool kSigned, typename InT>
__device__ __forceinline__ int32_t loadCode(InT const* p, int64_t i, float actScale)
{
    if constexpr (std::is_same_v<InT, int8_t>)
        return activationCodeFromInt8(__ldg(p + i), kSigned);
    else
        return quantizeActivation(loadInput(p, i), actScale, kSigned);
}

//! The second half of the input pass for one (row, group g) whose G 8-bit codes are q (magMax: the maximum
//! of their magnitudeBits): the step s (static table or dynamic rule), shiftA and factorA (both hold s) and
//! the codes by n4 and the format. The input pass and a producer writing a workspace edge (flexiqPipelinedGemm.cuh) both call
//! it, so the image a reader gets from its producer is the one its own input pass would write.
template <int32_t kG, bool kSigned, class Sink>
__device__ __forceinline__ void writeRowGroup(
    Sink const& p, int64_t row, int32_t g, int32_t const (&q)[kG], int32_t magMax, int32_t n4)
{
    int32_t const step = p.actStaticShift != nullptr ? actStepFromShift(__ldg(p.actStaticShift + g))
                                                  : actStepFromMagnitude(magMax, kSigned);
    int32_t const mult = actStepMultiplier(step); // once per group: extract4StepMul has no divide
    smem::checkGlobal(p.shiftA + row * p.groups + g, 1);
    p.shiftA[row * p.groups + g] = static_cast<int8_t>(step);
    if (p.factorA != nullptr)
    {
        smem::checkGlobal(p.factorA + row * p.groups + g, 4);
        p.factorA[row * p.groups + g] = step; // pipelined int4 backend: one IMAD per accumulator
    }

    bool const fourBit = g * kG < n4;
    if (p.codes4 != nullptr && fourBit)
    {
        // Int4 backend, 4-bit group: the MMA reads only the packed codes.
        uint32_t* out4 = reinterpret_cast<uint32_t*>(p.codes4 + (row * p.cPad + g * kG) / 2); // [G/8] words
        smem::checkGlobal(out4, kG / 2);
#pragma unroll
        for (int32_t w = 0; w < kG / 8; ++w)
        {
            uint32_t word = 0;
#pragma unroll
            for (int32_t j = 0; j < 8; ++j)
            {
                word |= (static_cast<uint32_t>(extract4StepMul(q[8 * w + j], step, mult, kSigned)) & 0xFu) << (4 * j);
            }
            out4[w] = word;
        }
        return;
    }
    bool const effective = p.writeEffective != 0 && fourBit;
    uint32_t* out8 = reinterpret_cast<uint32_t*>(p.codes8 + row * p.cPad + g * kG); // [G/4] words
    smem::checkGlobal(out8, kG);
#pragma unroll
    for (int32_t w = 0; w < kG / 4; ++w)
    {
        uint32_t word = 0;
#pragma unroll
        for (int32_t j = 0; j < 4; ++j)
        {
            int32_t const v = effective ? extract4StepMul(q[4 * w + j], step, mult, kSigned) * step : q[4 * w + j];
            word |= (static_cast<uint32_t>(v) & 0xFFu) << (8 * j);
        }
        out8[w] = word;
    }
}

//! Work of one thread: input pixel `row`, channel group `g`. q[kG] stays in registers (unrolled).
template <int32_t kG, bool kSigned, typename InT>
__device__ __forceinline__ void inputPassThread(InputPassParams const& p, int64_t row, int32_t g)
{
    static_assert(kG == 32 || kG == 64, "group size");
    int64_t const b = row / p.pixels;
    int64_t const hw = row % p.pixels;
    InT const* in = static_cast<InT const*>(p.input);
    int32_t const n4 = clampN4(p.max4bit != nullptr ? __ldg(p.max4bit + p.layerIndex) : 0, p.cPad, kG);

    int32_t q[kG]; // [G] 8-bit codes of this (pixel, group)
    int32_t magMax = 0;
#pragma unroll
    for (int32_t i = 0; i < kG; ++i)
    {
        // A null permutation (INT8 codes only: a producer's codes already in the reader's order) is the identity.
        int32_t src = 0;
        if constexpr (std::is_same_v<InT, int8_t>)
            src = p.permutation != nullptr ? __ldg(p.permutation + g * kG + i) : g * kG + i;
        else
            src = __ldg(p.permutation + g * kG + i);
        // zero padding (src >= C_in) has code 0 in both input kinds
        q[i] = src < p.inChannels ? loadCode<kSigned>(in, (b * p.inChannels + src) * p.pixels + hw, p.actScale) : 0;
        int32_t const m = magnitudeBits(q[i], kSigned);
        magMax = m > magMax ? m : magMax;
    }
    writeRowGroup<kG, kSigned>(p, row, g, q, magMax, n4);
}

//! Pipelined backends: wStepWide[g] = step_w[g] as int32, so the GEMM copies a K-tile's step with one
//! 4-byte cp.async. `i` runs over the groups.
__device__ __forceinline__ void widenWeightStepThread(InputPassParams const& p, int64_t i)
{
    p.wStepWide[i] = static_cast<int32_t>(__ldg(p.wStep + i));
}

} // namespace flexiq

#endif // FLEXIQ_INPUT_PASS_CUH
