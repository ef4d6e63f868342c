/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Launch of the input pass (docs/design.md §2, §4): one thread per (input pixel, channel group); the body,
 * shared with the host warp emulator, is inputPassThread() in flexiqInputPass.cuh.
 */
#include "flexiqInputPass.cuh"
#include "flexiqTileConfig.cuh"

namespace flexiq
{
namespace
{

//! One thread per (input pixel, channel group blockIdx.y).
//! Blocks past the rows (pipelined backends only) widen the weight steps (blockIdx.y == 0).
template <int32_t kG, bool kSigned, typename InT>
__global__ void __launch_bounds__(tile::kInputPassThreads) flexiqInputPassKernel(InputPassParams p, uint32_t rowBlocks)
{
    if (blockIdx.x >= rowBlocks)
    {
        int64_t const i = static_cast<int64_t>(blockIdx.x - rowBlocks) * blockDim.x + threadIdx.x;
        if (blockIdx.y == 0 && i < p.groups)
            widenWeightStepThread(p, i);
        return;
    }
    int64_t const row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (row < p.rows)
        inputPassThread<kG, kSigned, InT>(p, row, static_cast<int32_t>(blockIdx.y));
}

template <int32_t kG, bool kSigned>
cudaError_t launchTyped(InputPassParams const& p, cudaStream_t stream)
{
    dim3 const block(tile::kInputPassThreads);
    uint32_t const rowBlocks = static_cast<uint32_t>((p.rows + block.x - 1) / block.x);
    uint32_t const stepBlocks = p.wStepWide != nullptr ? (static_cast<uint32_t>(p.groups) + block.x - 1) / block.x : 0u;
    dim3 const grid(rowBlocks + stepBlocks, static_cast<uint32_t>(p.groups));
    if (p.inputType == kFLEXIQ_FP16)
        flexiqInputPassKernel<kG, kSigned, __half><<<grid, block, 0, stream>>>(p, rowBlocks);
    else if (p.inputType == kFLEXIQ_INT8)
        flexiqInputPassKernel<kG, kSigned, int8_t><<<grid, block, 0, stream>>>(p, rowBlocks); // INT8 edge: codes
    else
        flexiqInputPassKernel<kG, kSigned, float><<<grid, block, 0, stream>>>(p, rowBlocks);
    return cudaGetLastError();
}

} // namespace

cudaError_t launchInputPass(InputPassParams const& p, bool isSigned, cudaStream_t stream)
{
    if (p.groupSize == 32)
        return isSigned ? launchTyped<32, true>(p, stream) : launchTyped<32, false>(p, stream);
    return isSigned ? launchTyped<64, true>(p, stream) : launchTyped<64, false>(p, stream);
}

} // namespace flexiq
