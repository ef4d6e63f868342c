/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host warp emulator of the FlexiQ CUDA kernels (CPU only, for CI without a GPU).
 *
 * It compiles the kernels' own device code (plugins/kernels/flexiqInputPass.cuh and
 * flexiqMixedGemm.cuh) with the host compiler and runs every CTA with one std::thread per CUDA
 * thread. mma.sync is emulated per warp with the PTX ISA semantics: each lane scatters its
 * fragment registers (m16n8k32 s8/s4, m16n8k64 s4) into the warp's A/B tiles by the fragment mappings (checked against the ISA
 * tables in test_fragments.py), a barrier, each lane computes its C/D elements, a barrier. So the
 * kernels' indexing, padding, tile-edge, shift and n4 logic are checked bit-exactly on a CPU; what
 * this cannot check is real hardware behaviour (timing, memory model, the IMMA units themselves).
 *
 * C ABI: flexiqEmulateForward (see the bottom), built by tests/unit/kernels/test_warp_emulator.py.
 */
#include <cuda_runtime_api.h> // cudaError_t/cudaStream_t and CUDA's host_defines (__device__ etc.)

#include <barrier>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace
{
thread_local uint3 tThreadIdx;
thread_local uint3 tBlockIdx;
} // namespace

#define threadIdx tThreadIdx
#define blockIdx tBlockIdx

template <typename T>
T __ldg(T const* p)
{
    return *p;
}

#include "flexiqFragments.h"
#include "flexiqInputPass.cuh"
#include "flexiqMixedGemm.cuh"
#include "flexiqParams.h"
#include "flexiqShape.h"

namespace flexiq
{
namespace
{

//! Shared state of one emulated warp: the operand tiles of the current mma.
struct WarpState
{
    explicit WarpState()
        : sync(32)
    {
    }
    std::barrier<> sync;
    int32_t a[16][64]; // A[16 x K], K = 32 or 64
    int32_t b[64][8];  // B[K x 8]
};

thread_local WarpState* tWarp = nullptr;

int32_t lane()
{
    return static_cast<int32_t>(tThreadIdx.x & 31);
}

int32_t signExtend(uint32_t v, int32_t bits)
{
    int32_t const shift = 32 - bits;
    return static_cast<int32_t>(v << shift) >> shift;
}

//! D += A * B over the K columns the lanes scattered, each lane computing its own C/D elements.
void warpMultiply(int32_t (&d)[4], int32_t kDepth)
{
    tWarp->sync.arrive_and_wait();
    int32_t const l = lane();
    for (int32_t i = 0; i < 4; ++i)
    {
        int32_t const row = fragCRow(l, i);
        int32_t const col = fragCCol(l, i);
        int32_t sum = 0;
        for (int32_t k = 0; k < kDepth; ++k)
            sum += tWarp->a[row][k] * tWarp->b[k][col];
        d[i] += sum;
    }
    tWarp->sync.arrive_and_wait(); // nobody overwrites the tiles before every lane has read them
}

} // namespace

template <bool kSignedA>
void mmaS8(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2])
{
    int32_t const l = lane();
    for (int32_t i = 0; i < 16; ++i) // element i is byte (i & 3) of register i / 4, low to high
    {
        uint32_t const byte = (a[i >> 2] >> (8 * (i & 3))) & 0xFFu;
        tWarp->a[fragARowS8(l, i)][fragAColS8(l, i)] = kSignedA ? signExtend(byte, 8) : static_cast<int32_t>(byte);
    }
    for (int32_t i = 0; i < 8; ++i)
        tWarp->b[fragBRowS8(l, i)][fragBColS8(l, i)] = signExtend((b[i >> 2] >> (8 * (i & 3))) & 0xFFu, 8);
    warpMultiply(d, 32);
}

template <bool kSignedA>
void mmaS4(int32_t (&d)[4], uint32_t const (&a)[2], uint32_t b)
{
    int32_t const l = lane();
    for (int32_t i = 0; i < 16; ++i) // element i is nibble (i & 7) of register i / 8, low to high
    {
        uint32_t const nib = (a[i >> 3] >> (4 * (i & 7))) & 0xFu;
        tWarp->a[fragARowS4(l, i)][fragAColS4(l, i)] = kSignedA ? signExtend(nib, 4) : static_cast<int32_t>(nib);
    }
    for (int32_t i = 0; i < 8; ++i)
        tWarp->b[fragBRowS4(l, i)][fragBColS4(l, i)] = signExtend((b >> (4 * i)) & 0xFu, 4);
    warpMultiply(d, 32);
}

template <bool kSignedA>
void mmaS4K64(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2])
{
    int32_t const l = lane();
    for (int32_t i = 0; i < 32; ++i) // element i is nibble (i & 7) of register i / 8, low to high
    {
        uint32_t const nib = (a[i >> 3] >> (4 * (i & 7))) & 0xFu;
        tWarp->a[fragARowS4K64(l, i)][fragAColS4K64(l, i)]
            = kSignedA ? signExtend(nib, 4) : static_cast<int32_t>(nib);
    }
    for (int32_t i = 0; i < 16; ++i)
        tWarp->b[fragBRowS4K64(l, i)][fragBColS4K64(l, i)] = signExtend((b[i >> 3] >> (4 * (i & 7))) & 0xFu, 4);
    warpMultiply(d, 64);
}

template void mmaS8<true>(int32_t (&)[4], uint32_t const (&)[4], uint32_t const (&)[2]);
template void mmaS8<false>(int32_t (&)[4], uint32_t const (&)[4], uint32_t const (&)[2]);
template void mmaS4<true>(int32_t (&)[4], uint32_t const (&)[2], uint32_t);
template void mmaS4<false>(int32_t (&)[4], uint32_t const (&)[2], uint32_t);
template void mmaS4K64<true>(int32_t (&)[4], uint32_t const (&)[4], uint32_t const (&)[2]);
template void mmaS4K64<false>(int32_t (&)[4], uint32_t const (&)[4], uint32_t const (&)[2]);

namespace
{

template <bool kInt4, bool kSigned>
void runGemmGrid(MixedGemmParams const& p)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    uint32_t const gridX = static_cast<uint32_t>((mOut + tile::kCtaM - 1) / tile::kCtaM);
    uint32_t const gridY = static_cast<uint32_t>((p.outChannels + tile::kCtaN - 1) / tile::kCtaN);
    for (uint32_t by = 0; by < gridY; ++by)
        for (uint32_t bx = 0; bx < gridX; ++bx)
        {
            std::vector<WarpState*> warps;
            for (int32_t w = 0; w < tile::kThreads / 32; ++w)
                warps.push_back(new WarpState());
            std::vector<std::thread> threads;
            for (uint32_t t = 0; t < static_cast<uint32_t>(tile::kThreads); ++t)
                threads.emplace_back([&, t] {
                    tThreadIdx = uint3{t, 0, 0};
                    tBlockIdx = uint3{bx, by, 0};
                    tWarp = warps[t / 32];
                    mixedGemmTile<kInt4, kSigned, float>(p);
                });
            for (auto& th : threads)
                th.join();
            for (auto* w : warps)
                delete w;
        }
}

template <int32_t kG, bool kSigned>
void runInputPass(InputPassParams const& p)
{
    for (int64_t row = 0; row < p.rows; ++row)
        for (int32_t g = 0; g < p.groups; ++g)
            inputPassThread<kG, kSigned, float>(p, row, g);
}

} // namespace
} // namespace flexiq

//! Emulates flexiqEnqueue for FP32 I/O with the Int4Mma (backend 1) or Int8Mma (backend 2) kernel.
//! `args` holds host pointers. Writes int32 accumulators and the float output (NCHW / [M, N]).
//! Returns 0, or 1 with a reason for invalid arguments.
extern "C" __attribute__((visibility("default"))) int32_t flexiqEmulateForward(int32_t backend,
    FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width, float const* input,
    int32_t const* max4bit, int32_t* acc, float* output, char* why, size_t whyLen)
{
    using namespace flexiq;
    FlexiqLayerArgs const& a = *args;
    FlexiqProblem const problem{batch, height, width, 0, input, output, max4bit, acc};
    if (!checkLayerArgs(a, why, whyLen) || !checkProblem(a, problem, why, whyLen) || (backend != 1 && backend != 2))
        return 1;
    bool const int4 = backend == 1;
    bool const isSigned = a.actSigned != 0;
    int64_t const rows = static_cast<int64_t>(batch) * height * width;
    int32_t const groups = a.paddedChannels / a.groupSize;
    // Word-aligned buffers, as the device workspace is.
    std::vector<uint32_t> codes8((rows * a.paddedChannels + 3) / 4 + 1);
    std::vector<uint32_t> codes4((rows * a.paddedChannels / 2 + 3) / 4 + 1);
    std::vector<int8_t> shiftA(static_cast<size_t>(rows * groups));

    InputPassParams in = makeInputPassParams(a, problem);
    in.codes8 = reinterpret_cast<int8_t*>(codes8.data());
    in.codes4 = int4 ? reinterpret_cast<int8_t*>(codes4.data()) : nullptr;
    in.shiftA = shiftA.data();
    in.writeEffective = int4 ? 0 : 1;
    if (a.groupSize == 32)
        isSigned ? runInputPass<32, true>(in) : runInputPass<32, false>(in);
    else
        isSigned ? runInputPass<64, true>(in) : runInputPass<64, false>(in);

    MixedGemmParams const g = makeMixedGemmParams(a, problem, in);
    if (int4)
        isSigned ? runGemmGrid<true, true>(g) : runGemmGrid<true, false>(g);
    else
        isSigned ? runGemmGrid<false, true>(g) : runGemmGrid<false, false>(g);
    return 0;
}
