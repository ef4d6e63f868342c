/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The two tensor-core backends as named kernels (scripts/check_sass.py looks for these names):
 *   flexiqInt4MmaKernel  4-bit groups on mma m16n8k32 .s4/.u4 x .s4, shifted per group (sm_80/86/87/89)
 *   flexiqInt8MmaKernel  4-bit groups as int8 mma on effective codes (sm_90+), bit-identical
 */
#include "flexiqMixedGemm.cuh"

namespace flexiq
{
namespace
{

template <bool kSigned, typename OutT>
__global__ void __launch_bounds__(tile::kThreads, tile::kMinCtasPerSm) flexiqInt4MmaKernel(MixedGemmParams p)
{
    mixedGemmTile<true, kSigned, OutT>(p);
}

template <bool kSigned, typename OutT>
__global__ void __launch_bounds__(tile::kThreads, tile::kMinCtasPerSm) flexiqInt8MmaKernel(MixedGemmParams p)
{
    mixedGemmTile<false, kSigned, OutT>(p);
}

dim3 gridFor(MixedGemmParams const& p)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    return dim3(static_cast<uint32_t>((mOut + tile::kCtaM - 1) / tile::kCtaM),
        static_cast<uint32_t>((p.outChannels + tile::kCtaN - 1) / tile::kCtaN));
}

template <bool kInt4>
cudaError_t launch(MixedGemmParams const& p, bool isSigned, bool fp16, cudaStream_t stream)
{
    dim3 const grid = gridFor(p);
    dim3 const block(tile::kThreads);
#define FLEXIQ_LAUNCH(S, T)                                                                                            \
    (kInt4 ? flexiqInt4MmaKernel<S, T> : flexiqInt8MmaKernel<S, T>)<<<grid, block, 0, stream>>>(p)
    if (isSigned && fp16)
        FLEXIQ_LAUNCH(true, __half);
    else if (isSigned)
        FLEXIQ_LAUNCH(true, float);
    else if (fp16)
        FLEXIQ_LAUNCH(false, __half);
    else
        FLEXIQ_LAUNCH(false, float);
#undef FLEXIQ_LAUNCH
    return cudaGetLastError();
}

} // namespace

cudaError_t launchInt4MmaGemm(MixedGemmParams const& p, bool isSigned, bool fp16, cudaStream_t stream)
{
    return launch<true>(p, isSigned, fp16, stream);
}

cudaError_t launchInt8MmaGemm(MixedGemmParams const& p, bool isSigned, bool fp16, cudaStream_t stream)
{
    return launch<false>(p, isSigned, fp16, stream);
}

} // namespace flexiq
