/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The pipelined tensor-core backends as named kernels (scripts/check_sass.py looks for these names),
 * and their launch code for one G:
 *   flexiqPipeInt4Kernel  4-bit groups on int4 mma (k32 for G = 32, k64 for G = 64), sm_80/86/87/89
 *   flexiqPipeInt8Kernel  4-bit groups as int8 mma on effective codes (sm_90+), bit-identical
 * Template arguments: <kSigned, tile shape, G>. The output type (FP32, FP16 or INT8 codes) is a runtime
 * flag of the epilogue only (storeValue); the input type only changes the input pass.
 *
 * Each G is instantiated in its own translation unit (flexiqPipelinedGemmG32.cu, ...G64.cu): with
 * both in one, nvcc's register allocation of the largest tiles was worse than of each alone, which compiles
 * without spills alone — and the two halves build in parallel.
 */
#ifndef FLEXIQ_PIPELINED_KERNELS_CUH
#define FLEXIQ_PIPELINED_KERNELS_CUH

#include "flexiqPipelinedGemm.cuh"

namespace flexiq
{
namespace
{

template <bool kSigned, class T, int32_t kG>
__global__ void __launch_bounds__(T::kThreads, 1) flexiqPipeInt4Kernel(MixedGemmParams p)
{
    pipe::pipelinedGemmTile<T, kG, true, kSigned>(p);
}

template <bool kSigned, class T, int32_t kG>
__global__ void __launch_bounds__(T::kThreads, 1) flexiqPipeInt8Kernel(MixedGemmParams p)
{
    pipe::pipelinedGemmTile<T, kG, false, kSigned>(p);
}

using KernelFn = void (*)(MixedGemmParams);

template <class T, int32_t kG>
KernelFn kernelFor(bool int4, bool isSigned)
{
    if (int4)
        return isSigned ? flexiqPipeInt4Kernel<true, T, kG> : flexiqPipeInt4Kernel<false, T, kG>;
    return isSigned ? flexiqPipeInt8Kernel<true, T, kG> : flexiqPipeInt8Kernel<false, T, kG>;
}

template <class T, int32_t kG>
cudaError_t launchTile(MixedGemmParams const& p, bool int4, bool isSigned, cudaStream_t stream)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    dim3 const grid(static_cast<uint32_t>((mOut + T::kCtaM - 1) / T::kCtaM),
        static_cast<uint32_t>((p.outChannels + T::kCtaN - 1) / T::kCtaN));
    kernelFor<T, kG>(int4, isSigned)<<<grid, T::kThreads, tile::PipeSmem<T, kG>::kTotal, stream>>>(p);
    return cudaGetLastError();
}

template <class T, int32_t kG>
cudaError_t prepareTile()
{
    for (bool int4 : {true, false})
        for (bool s : {true, false})
        {
            cudaError_t const e = cudaFuncSetAttribute(kernelFor<T, kG>(int4, s),
                cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int32_t>(tile::PipeSmem<T, kG>::kTotal));
            if (e != cudaSuccess)
                return e;
        }
    return cudaSuccess;
}

} // namespace

template <int32_t kG>
cudaError_t launchPipelinedGemmG(
    MixedGemmParams const& p, PipeTileId tileId, bool int4, bool isSigned, cudaStream_t stream)
{
    switch (tileId)
    {
    case PipeTileId::k128x128: return launchTile<tile::PipeTile128x128, kG>(p, int4, isSigned, stream);
    case PipeTileId::k128x64: return launchTile<tile::PipeTile128x64, kG>(p, int4, isSigned, stream);
    case PipeTileId::k64x64: return launchTile<tile::PipeTile64x64, kG>(p, int4, isSigned, stream);
    }
    return cudaErrorInvalidValue;
}

template <int32_t kG>
cudaError_t preparePipelinedKernelsG()
{
    cudaError_t e = prepareTile<tile::PipeTile128x128, kG>();
    if (e == cudaSuccess)
        e = prepareTile<tile::PipeTile128x64, kG>();
    if (e == cudaSuccess)
        e = prepareTile<tile::PipeTile64x64, kG>();
    return e;
}

} // namespace flexiq

#endif // FLEXIQ_PIPELINED_KERNELS_CUH
