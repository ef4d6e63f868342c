/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The pipelined tensor-core backends as named kernels (scripts/check_sass.py looks for these names):
 *   flexiqPipeInt4Kernel  4-bit groups on int4 mma (k32 for G = 32, k64 for G = 64), sm_80/86/87/89
 *   flexiqPipeInt8Kernel  4-bit groups as int8 mma on effective codes (sm_90+), bit-identical
 * Template arguments: <kSigned, tile shape, G>. The output type is a runtime flag (epilogue only).
 */
#include "flexiqPipelinedGemm.cuh"

namespace flexiq
{
namespace
{

template <bool kSigned, class T, int32_t kG>
__global__ void __launch_bounds__(128, 1) flexiqPipeInt4Kernel(MixedGemmParams p)
{
    pipe::pipelinedGemmTile<T, kG, true, kSigned>(p);
}

template <bool kSigned, class T, int32_t kG>
__global__ void __launch_bounds__(128, 1) flexiqPipeInt8Kernel(MixedGemmParams p)
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

template <class T>
KernelFn kernelFor(int32_t groupSize, bool int4, bool isSigned)
{
    return groupSize == 32 ? kernelFor<T, 32>(int4, isSigned) : kernelFor<T, 64>(int4, isSigned);
}

template <class T>
int32_t smemFor(int32_t groupSize)
{
    return static_cast<int32_t>(groupSize == 32 ? tile::PipeSmem<T, 32>::kTotal : tile::PipeSmem<T, 64>::kTotal);
}

template <class T>
cudaError_t launchTile(MixedGemmParams const& p, bool int4, bool isSigned, cudaStream_t stream)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    dim3 const grid(static_cast<uint32_t>((mOut + T::kCtaM - 1) / T::kCtaM),
        static_cast<uint32_t>((p.outChannels + T::kCtaN - 1) / T::kCtaN));
    kernelFor<T>(p.groupSize, int4, isSigned)<<<grid, T::kThreads, smemFor<T>(p.groupSize), stream>>>(p);
    return cudaGetLastError();
}

template <class T>
cudaError_t prepareTile()
{
    for (int32_t g : {32, 64})
        for (bool int4 : {true, false})
            for (bool s : {true, false})
            {
                cudaError_t const e = cudaFuncSetAttribute(
                    kernelFor<T>(g, int4, s), cudaFuncAttributeMaxDynamicSharedMemorySize, smemFor<T>(g));
                if (e != cudaSuccess)
                    return e;
            }
    return cudaSuccess;
}

} // namespace

int32_t pipelinedSmemBytes(PipeTileId tileId, int32_t groupSize)
{
    switch (tileId)
    {
    case PipeTileId::k128x128: return smemFor<tile::PipeTile128x128>(groupSize);
    case PipeTileId::k128x64: return smemFor<tile::PipeTile128x64>(groupSize);
    case PipeTileId::k64x64: return smemFor<tile::PipeTile64x64>(groupSize);
    }
    return 0;
}

cudaError_t preparePipelinedKernels()
{
    cudaError_t e = prepareTile<tile::PipeTile128x128>();
    if (e == cudaSuccess)
        e = prepareTile<tile::PipeTile128x64>();
    if (e == cudaSuccess)
        e = prepareTile<tile::PipeTile64x64>();
    return e;
}

cudaError_t launchPipelinedGemm(
    MixedGemmParams const& p, PipeTileId tileId, bool int4, bool isSigned, cudaStream_t stream)
{
    switch (tileId)
    {
    case PipeTileId::k128x128: return launchTile<tile::PipeTile128x128>(p, int4, isSigned, stream);
    case PipeTileId::k128x64: return launchTile<tile::PipeTile128x64>(p, int4, isSigned, stream);
    case PipeTileId::k64x64: return launchTile<tile::PipeTile64x64>(p, int4, isSigned, stream);
    }
    return cudaErrorInvalidValue;
}

} // namespace flexiq
