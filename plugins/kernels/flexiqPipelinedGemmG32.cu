/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The pipelined kernels for G = 32 (flexiqPipelinedKernels.cuh says why each G has its own file).
 */
#include "flexiqPipelinedKernels.cuh"

namespace flexiq
{

template cudaError_t launchPipelinedGemmG<32>(MixedGemmParams const&, PipeTileId, bool, bool, cudaStream_t);
template cudaError_t preparePipelinedKernelsG<32>();

} // namespace flexiq
