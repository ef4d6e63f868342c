/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Reference CUDA backend: one thread per output element, the literal per-group sum of
 * docs/design.md §2 over the input pass's raw 8-bit codes and activation steps (4-bit groups:
 * (x4 . w4) * s_a * step_w[g]; the same loop as the C++ CPU reference). Slow; it exists to cross-check the tensor-core kernels on a GPU.
 */
#include "flexiqContract.h"
#include "flexiqKernelsInternal.h"
#include "flexiqLayerArgs.h"
#include "flexiqTileConfig.cuh"

#include <cuda_fp16.h>

namespace flexiq
{
namespace
{

__device__ __forceinline__ void storeRef(float* out, int64_t i, float v, MixedGemmParams const&)
{
    out[i] = v;
}

__device__ __forceinline__ void storeRef(__half* out, int64_t i, float v, MixedGemmParams const&)
{
    out[i] = __float2half_rn(v);
}

//! INT8 output: the consumers' code of v (docs/design.md §2.3), unsigned codes as their low 8 bits.
__device__ __forceinline__ void storeRef(int8_t* out, int64_t i, float v, MixedGemmParams const& p)
{
    reinterpret_cast<uint8_t*>(out)[i] = activationCodeBits(v, p.outputScale, p.outputSigned != 0);
}

template <bool kSigned, typename OutT>
__global__ void __launch_bounds__(tile::kReferenceThreads, tile::kMinCtasPerSm) flexiqReferenceKernel(MixedGemmParams p)
{
    int32_t const outPixels = p.outH * p.outW;
    int64_t const total = static_cast<int64_t>(p.batch) * p.outChannels * outPixels;
    int64_t const idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; // NCHW output index
    if (idx >= total)
        return;
    int32_t const pq = static_cast<int32_t>(idx % outPixels);
    int32_t const n = static_cast<int32_t>((idx / outPixels) % p.outChannels);
    int32_t const b = static_cast<int32_t>(idx / (static_cast<int64_t>(outPixels) * p.outChannels));
    int32_t const oh = pq / p.outW;
    int32_t const ow = pq % p.outW;
    int32_t const n4 = clampN4(p.max4bit != nullptr ? p.max4bit[p.layerIndex] : 0, p.cPad, p.groupSize);
    int64_t sum = 0;
    for (int32_t r = 0; r < p.r; ++r)
        for (int32_t s = 0; s < p.s; ++s)
        {
            int32_t const ih = oh * p.strideH - p.padTop + r * p.dilationH;
            int32_t const iw = ow * p.strideW - p.padLeft + s * p.dilationW;
            if (ih < 0 || ih >= p.height || iw < 0 || iw >= p.width)
                continue;
            int64_t const row = (static_cast<int64_t>(b) * p.height + ih) * p.width + iw;
            int64_t const kBase = static_cast<int64_t>(r * p.s + s) * p.cPad;
            for (int32_t g = 0; g < p.groups; ++g)
            {
                bool const fourBit = g * p.groupSize < n4;
                int32_t const sa = p.shiftA[row * p.groups + g]; // the activation step s (docs/design.md §2.5)
                int64_t part = 0;
                for (int32_t i = 0; i < p.groupSize; ++i)
                {
                    int32_t const c = g * p.groupSize + i;
                    int32_t const raw = p.codes8[row * p.cPad + c];
                    int32_t const xq = kSigned ? raw : (raw & 0xFF); // u8 codes are stored as their bits
                    int64_t const k = kBase + c;
                    if (fourBit)
                        part += static_cast<int64_t>(extract4Step(xq, sa, kSigned))
                            * unpackNibble(p.w4 + static_cast<int64_t>(n) * (p.kLen / 2), k, true);
                    else
                        part += static_cast<int64_t>(xq) * p.w8[static_cast<int64_t>(n) * p.kLen + k];
                }
                if (fourBit)
                    part *= int64_t{sa} * p.wStep[g]; // s_a * step_w[g] (docs/design.md §2.6)
                sum += part;
            }
        }
    int32_t const acc = static_cast<int32_t>(sum);
    if (p.accOut != nullptr)
        p.accOut[idx] = acc;
    storeRef(static_cast<OutT*>(p.output), idx,
        epilogue(acc, p.outScale[n], biasFor(p, n4)[n], p.activation, p.alpha, p.beta), p);
}

template <typename OutT>
void launchTyped(MixedGemmParams const& p, bool isSigned, dim3 grid, dim3 block, cudaStream_t stream)
{
    if (isSigned)
        flexiqReferenceKernel<true, OutT><<<grid, block, 0, stream>>>(p);
    else
        flexiqReferenceKernel<false, OutT><<<grid, block, 0, stream>>>(p);
}

} // namespace

cudaError_t launchReferenceGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream)
{
    int64_t const total = static_cast<int64_t>(p.batch) * p.outChannels * p.outH * p.outW;
    dim3 const block(tile::kReferenceThreads);
    dim3 const grid(static_cast<uint32_t>((total + block.x - 1) / block.x));
    if (p.outType == kFLEXIQ_FP16)
        launchTyped<__half>(p, isSigned, grid, block, stream);
    else if (p.outType == kFLEXIQ_INT8)
        launchTyped<int8_t>(p, isSigned, grid, block, stream);
    else
        launchTyped<float>(p, isSigned, grid, block, stream);
    return cudaGetLastError();
}

} // namespace flexiq
