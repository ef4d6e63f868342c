/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Mainloop and epilogue of the FlexiQ mixed int4/int8 implicit GEMM (docs/design.md §2, §4).
 *
 * Output row m is an output pixel (b, oh, ow) (gemm: a token), column n an output channel. The
 * reduction walks the taps (r, s) and, inside each tap, the channel groups g in permutation order:
 *   - 8-bit group:  acc += A8[m, g] . W8[n, g]                     (int8 mma, straight into acc)
 *   - 4-bit group, Int4 path: part = A4[m, g] . W4[n, g]           (one int4 mma atom: k32 for G = 32,
 *                                                                  k64 for G = 64; fresh partial tile)
 *                             acc += part * (s_a[pixel(m), g] * step_w[g])
 *   - 4-bit group, Int8 path: acc += (A4 * s_a)[m, g] . (W4 * step_w[g])[n, g]  (int8 mma, effective codes)
 * s_a is the activation step (1..16, docs/design.md §2.5) that the input pass writes into shiftA, step_w[g]
 * the group's weight step (1..16, weight_step, docs/design.md §2.6), shared by all N rows and taps.
 * Out-of-image taps read zero fragments, so padding adds nothing. Every branch depends only on the
 * group index and n4, so it is warp-uniform.
 */
#ifndef FLEXIQ_MIXED_GEMM_CUH
#define FLEXIQ_MIXED_GEMM_CUH

#include "flexiqContract.h"
#include "flexiqFragments.h"
#include "flexiqKernelsInternal.h"
#include "flexiqTileConfig.cuh"

#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
#include <cuda_fp16.h>
#endif

namespace flexiq
{

__device__ __forceinline__ uint32_t ldg32(int8_t const* p)
{
    return __ldg(reinterpret_cast<unsigned int const*>(p));
}

__device__ __forceinline__ void storeOut(float* out, int64_t i, float v, MixedGemmParams const&)
{
    out[i] = v;
}

#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
__device__ __forceinline__ void storeOut(__half* out, int64_t i, float v, MixedGemmParams const&)
{
    out[i] = __float2half_rn(v);
}
#endif

//! INT8 output (an INT8 edge, docs/design.md §2.3): the consumers' code of v, unsigned codes as their low 8 bits.
__device__ __forceinline__ void storeOut(int8_t* out, int64_t i, float v, MixedGemmParams const& p)
{
    reinterpret_cast<uint8_t*>(out)[i] = activationCodeBits(v, p.outputScale, p.outputSigned != 0);
}

//! Four effective int8 weights (w4 * step_w) from the packed nibbles of k..k+3 (k a multiple of 4).
__device__ __forceinline__ uint32_t effectiveWeights4(int8_t const* w4Row, int64_t k, int32_t step)
{
    uint32_t const pair = __ldg(reinterpret_cast<unsigned short const*>(w4Row + k / 2)); // nibbles k..k+3
    uint32_t word = 0;
#pragma unroll
    for (int32_t j = 0; j < 4; ++j)
    {
        int32_t const nib = static_cast<int32_t>((pair >> (4 * j)) & 0xFu);
        int32_t const w = effectiveWeight(nib - ((nib & 8) << 1), step); // in [-128, 112]
        word |= (static_cast<uint32_t>(w) & 0xFFu) << (8 * j);
    }
    return word;
}

template <bool kInt4Path, bool kSigned, typename OutT>
__device__ __forceinline__ void mixedGemmTile(MixedGemmParams const& p)
{
    using namespace tile;
    static_assert(kWarpTilesM * kMmaM == kWarpM && kWarpTilesN * kMmaN == kWarpN, "warp tile");
    int32_t const lane = threadIdx.x & 31;
    int32_t const warp = threadIdx.x >> 5;
    int32_t const warpRow = (warp % kWarpsM) * kWarpM;
    int32_t const warpCol = (warp / kWarpsM) * kWarpN;
    int32_t const outPixels = p.outH * p.outW;
    int64_t const mOut = static_cast<int64_t>(p.batch) * outPixels;
    int64_t const ctaRow = static_cast<int64_t>(blockIdx.x) * kCtaM + warpRow;
    int32_t const ctaCol = static_cast<int32_t>(blockIdx.y) * kCtaN + warpCol;
    int32_t const gSize = p.groupSize;
    int32_t const n4 = clampN4(p.max4bit != nullptr ? __ldg(p.max4bit + p.layerIndex) : 0, p.cPad, gSize);

    // A rows held by this thread: [kWarpTilesM][2] (fragment rows groupID and groupID + 8).
    int32_t rowImage[kWarpTilesM][2]; // b, or -1 past the last output row
    int32_t rowH0[kWarpTilesM][2];    // oh * stride - padTop
    int32_t rowW0[kWarpTilesM][2];    // ow * stride - padLeft
#pragma unroll
    for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
        for (int32_t h = 0; h < 2; ++h)
        {
            int64_t const m = ctaRow + mi * kMmaM + fragARowS8(lane, 4 * h);
            int32_t const rem = static_cast<int32_t>(m % outPixels);
            rowImage[mi][h] = m < mOut ? static_cast<int32_t>(m / outPixels) : -1;
            rowH0[mi][h] = (rem / p.outW) * p.strideH - p.padTop;
            rowW0[mi][h] = (rem % p.outW) * p.strideW - p.padLeft;
        }
    // B columns held by this thread: [kWarpTilesN] (fragment column groupID).
    int32_t colB[kWarpTilesN]; // n, or -1 past the last output channel
#pragma unroll
    for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
    {
        int32_t const n = ctaCol + ni * kMmaN + fragBColS8(lane, 0);
        colB[ni] = n < p.outChannels ? n : -1;
    }

    int32_t acc[kWarpTilesM][kWarpTilesN][4] = {}; // C[32 x 32] per warp, s32

    for (int32_t r = 0; r < p.r; ++r)
    {
        for (int32_t s = 0; s < p.s; ++s)
        {
            int64_t rowIn[kWarpTilesM][2]; // input pixel of each A row at this tap, or -1 (zero padding)
#pragma unroll
            for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                for (int32_t h = 0; h < 2; ++h)
                {
                    int32_t const ih = rowH0[mi][h] + r * p.dilationH;
                    int32_t const iw = rowW0[mi][h] + s * p.dilationW;
                    bool const inside = rowImage[mi][h] >= 0 && ih >= 0 && ih < p.height && iw >= 0 && iw < p.width;
                    rowIn[mi][h] = inside ? (static_cast<int64_t>(rowImage[mi][h]) * p.height + ih) * p.width + iw : -1;
                }
            int64_t const kTap = static_cast<int64_t>(r * p.s + s) * p.cPad;

            for (int32_t g = 0; g < p.groups; ++g)
            {
                bool const fourBit = g * gSize < n4;
                if (kInt4Path && fourBit)
                {
                    int32_t part[kWarpTilesM][kWarpTilesN][4] = {}; // this group's C[32 x 32], before its factor
                    int32_t const c0 = g * gSize;
                    if (gSize == kMmaK4Wide)
                    {
                        // One m16n8k64 atom per group.
                        uint32_t a[kWarpTilesM][4]; // A[16 x 64] s4 per m-tile: reg j = a_{8j..8j+7}
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t j = 0; j < 4; ++j)
                            {
                                int32_t const h = fragARowS4K64(lane, 8 * j) >= 8 ? 1 : 0;
                                int32_t const col = c0 + fragAColS4K64(lane, 8 * j);
                                a[mi][j] = rowIn[mi][h] >= 0 ? ldg32(p.codes4 + (rowIn[mi][h] * p.cPad + col) / 2) : 0u;
                            }
                        uint32_t b[kWarpTilesN][2]; // B[64 x 8] s4 per n-tile: reg j = b_{8j..8j+7}
#pragma unroll
                        for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
#pragma unroll
                            for (int32_t j = 0; j < 2; ++j)
                            {
                                int64_t const k = kTap + c0 + fragBRowS4K64(lane, 8 * j);
                                b[ni][j] = colB[ni] >= 0 ? ldg32(p.w4 + (colB[ni] * p.kLen + k) / 2) : 0u;
                            }
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
                                mmaS4K64<kSigned>(part[mi][ni], a[mi], b[ni]);
                    }
                    else
                    {
                        // One m16n8k32 atom per group (G = 32).
                        uint32_t a[kWarpTilesM][2]; // A[16 x 32] s4 per m-tile: reg h = 8 nibbles of row h*8+groupID
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t h = 0; h < 2; ++h)
                            {
                                int32_t const col = c0 + fragAColS4(lane, 8 * h);
                                a[mi][h] = rowIn[mi][h] >= 0 ? ldg32(p.codes4 + (rowIn[mi][h] * p.cPad + col) / 2) : 0u;
                            }
                        uint32_t b[kWarpTilesN]; // B[32 x 8] s4 per n-tile: 8 nibbles of k = tig*8..+7
#pragma unroll
                        for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
                        {
                            int64_t const k = kTap + c0 + fragBRowS4(lane, 0);
                            b[ni] = colB[ni] >= 0 ? ldg32(p.w4 + (colB[ni] * p.kLen + k) / 2) : 0u;
                        }
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
                                mmaS4<kSigned>(part[mi][ni], a[mi], b[ni]);
                    }
                    // Scale after the MMA: acc += part * (s_a[row] * step_w[g]), one IMAD per element with the
                    // row factor hoisted; this ALU work is the int4 path's overhead.
                    int32_t const stepW = __ldg(p.wStep + g);
                    int32_t rowFactor[kWarpTilesM][2]; // s_a * step_w of the C rows (groupID, groupID + 8)
#pragma unroll
                    for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                        for (int32_t h = 0; h < 2; ++h)
                            rowFactor[mi][h] = (rowIn[mi][h] >= 0 ? p.shiftA[rowIn[mi][h] * p.groups + g] : 1) * stepW;
#pragma unroll
                    for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t e = 0; e < 4; ++e)
                                acc[mi][ni][e] += part[mi][ni][e] * rowFactor[mi][e >> 1];
                }
                else
                {
                    bool const effectiveW = !kInt4Path && fourBit;
                    int32_t const stepW = effectiveW ? __ldg(p.wStep + g) : 1; // step_w (effective weights only)
                    for (int32_t c0 = g * gSize; c0 < (g + 1) * gSize; c0 += kMmaK)
                    {
                        uint32_t a[kWarpTilesM][4]; // A[16 x 32] s8 per m-tile: reg j = a_{4j..4j+3}
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t j = 0; j < 4; ++j)
                            {
                                int32_t const h = fragARowS8(lane, 4 * j) >= 8 ? 1 : 0;
                                int32_t const col = c0 + fragAColS8(lane, 4 * j);
                                a[mi][j] = rowIn[mi][h] >= 0 ? ldg32(p.codes8 + rowIn[mi][h] * p.cPad + col) : 0u;
                            }
                        uint32_t b[kWarpTilesN][2]; // B[32 x 8] s8 per n-tile: reg j = b_{4j..4j+3}
#pragma unroll
                        for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
#pragma unroll
                            for (int32_t j = 0; j < 2; ++j)
                            {
                                int64_t const k = kTap + c0 + fragBRowS8(lane, 4 * j);
                                int64_t const rowBase = static_cast<int64_t>(colB[ni]) * p.kLen;
                                if (colB[ni] < 0)
                                    b[ni][j] = 0u;
                                else if (effectiveW)
                                    b[ni][j] = effectiveWeights4(p.w4 + rowBase / 2, k, stepW);
                                else
                                    b[ni][j] = ldg32(p.w8 + rowBase + k);
                            }
#pragma unroll
                        for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
                            for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
                                mmaS8<kSigned>(acc[mi][ni], a[mi], b[ni]);
                    }
                }
            }
        }
    }

    // Fused epilogue: y = float(acc) * outScale[n] + bias[n], activation, NCHW store (FP32, FP16, or the
    // consumers' INT8 codes of y).
    OutT* out = static_cast<OutT*>(p.output);
#pragma unroll
    for (int32_t mi = 0; mi < kWarpTilesM; ++mi)
#pragma unroll
        for (int32_t ni = 0; ni < kWarpTilesN; ++ni)
#pragma unroll
            for (int32_t e = 0; e < 4; ++e)
            {
                int64_t const m = ctaRow + mi * kMmaM + fragCRow(lane, e);
                int32_t const n = ctaCol + ni * kMmaN + fragCCol(lane, e);
                if (m >= mOut || n >= p.outChannels)
                    continue;
                int64_t const idx = ((m / outPixels) * p.outChannels + n) * outPixels + (m % outPixels);
                if (p.accOut != nullptr)
                    p.accOut[idx] = acc[mi][ni][e];
                storeOut(out, idx,
                    epilogue(acc[mi][ni][e], __ldg(p.outScale + n), __ldg(biasFor(p, n4) + n), p.activation, p.alpha, p.beta),
                    p);
            }
}

} // namespace flexiq

#endif // FLEXIQ_MIXED_GEMM_CUH
