/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The two tensor-core backends as named kernels (scripts/check_sass.py looks for these names):
 *   flexiqInt4MmaKernel  4-bit groups on mma m16n8k32 .s4/.u4 x .s4, scaled per group (sm_80/86/87/89)
 *   flexiqInt8MmaKernel  4-bit groups as int8 mma on effective codes (sm_90+), bit-identical
 */
#include "flexiqLayerArgs.h"
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

template <bool kInt4, typename OutT>
void launchTyped(MixedGemmParams const& p, bool isSigned, cudaStream_t stream)
{
    dim3 const grid = gridFor(p);
    dim3 const block(tile::kThreads);
    if (isSigned)
        (kInt4 ? flexiqInt4MmaKernel<true, OutT> : flexiqInt8MmaKernel<true, OutT>)<<<grid, block, 0, stream>>>(p);
    else
        (kInt4 ? flexiqInt4MmaKernel<false, OutT> : flexiqInt8MmaKernel<false, OutT>)<<<grid, block, 0, stream>>>(p);
}

//! The output type (FP32, FP16 or INT8 codes) is a template argument: it changes only the epilogue's store.
template <bool kInt4>
cudaError_t launch(MixedGemmParams const& p, bool isSigned, cudaStream_t stream)
{
    if (p.outType == kFLEXIQ_FP16)
        launchTyped<kInt4, __half>(p, isSigned, stream);
    else if (p.outType == kFLEXIQ_INT8)
        launchTyped<kInt4, int8_t>(p, isSigned, stream);
    else
        launchTyped<kInt4, float>(p, isSigned, stream);
    return cudaGetLastError();
}

} // namespace

cudaError_t launchInt4MmaGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream)
{
    return launch<true>(p, isSigned, stream);
}

cudaError_t launchInt8MmaGemm(MixedGemmParams const& p, bool isSigned, cudaStream_t stream)
{
    return launch<false>(p, isSigned, stream);
}

} // namespace flexiq
