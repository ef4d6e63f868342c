/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Entry points of the pipelined backends: dispatch on G to the per-G kernels
 * (flexiqPipelinedGemmG32.cu, flexiqPipelinedGemmG64.cu; kernels in flexiqPipelinedKernels.cuh).
 */
#include "flexiqKernelsInternal.h"
#include "flexiqTileConfig.cuh"

namespace flexiq
{

template <int32_t kG>
cudaError_t launchPipelinedGemmG(
    MixedGemmParams const& p, PipeTileId tileId, bool int4, bool isSigned, cudaStream_t stream);
template <int32_t kG>
cudaError_t preparePipelinedKernelsG();

namespace
{

template <class T>
int32_t smemFor(int32_t groupSize)
{
    return static_cast<int32_t>(groupSize == 32 ? tile::PipeSmem<T, 32>::kTotal : tile::PipeSmem<T, 64>::kTotal);
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
    cudaError_t const e = preparePipelinedKernelsG<32>();
    return e == cudaSuccess ? preparePipelinedKernelsG<64>() : e;
}

cudaError_t launchPipelinedGemm(
    MixedGemmParams const& p, PipeTileId tileId, bool int4, bool isSigned, cudaStream_t stream)
{
    return p.groupSize == 32 ? launchPipelinedGemmG<32>(p, tileId, int4, isSigned, stream)
                             : launchPipelinedGemmG<64>(p, tileId, int4, isSigned, stream);
}

} // namespace flexiq
