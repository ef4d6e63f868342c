/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * All tile, stage and arch choices of the FlexiQ mixed GEMM, in one block, plus the mma.sync wrappers.
 */
#ifndef FLEXIQ_TILE_CONFIG_CUH
#define FLEXIQ_TILE_CONFIG_CUH

#include "flexiqContract.h" // FLEXIQ_HD

#include <cstdint>

namespace flexiq
{
namespace tile
{

// ---- tile configuration -----------------------------------------------------------------------
// MMA atoms: int8 m16n8k32 (32 channels; one G = 32 group or half a G = 64 group). Int4: one atom
// per channel group, so the per-group factor s_a * step_w is applied once per atom: m16n8k32 for G = 32
// (IMMA.16832.S4.S4) and m16n8k64 for G = 64 (IMMA.16864.S4.S4). Which is faster per MAC on
// Ampere/Ada is what benchmarks/bench_kernels.py measures (docs/design.md §4).
constexpr int32_t kMmaM = 16;
constexpr int32_t kMmaN = 8;
constexpr int32_t kMmaK = 32;
constexpr int32_t kMmaK4Wide = 64; // int4 m16n8k64 atom (G = 64)
// Warp tile: 2 x 4 atoms = 32 x 32 outputs; int32 accumulators 2*4*4 = 32 registers per thread,
// plus the same again for the int4 per-group partial tile.
constexpr int32_t kWarpTilesM = 2;
constexpr int32_t kWarpTilesN = 4;
constexpr int32_t kWarpM = kWarpTilesM * kMmaM; // 32
constexpr int32_t kWarpN = kWarpTilesN * kMmaN; // 32
// CTA: 2 x 2 warps = 64 x 64 outputs, 128 threads.
constexpr int32_t kWarpsM = 2;
constexpr int32_t kWarpsN = 2;
constexpr int32_t kCtaM = kWarpsM * kWarpM; // 64
constexpr int32_t kCtaN = kWarpsN * kWarpN; // 64
constexpr int32_t kThreads = 32 * kWarpsM * kWarpsN;
// Occupancy hint: 2 CTAs/SM lets ptxas use up to 255 registers (acc + int4 partial tile + fragments)
// without spilling; the default heuristic capped the int8 kernel at 128 and spilled.
constexpr int32_t kMinCtasPerSm = 2;
// Stages: 1. Fragments are loaded straight from global memory (L1/L2-cached 32-bit loads whose
// addresses come from flexiqFragments.h); no shared-memory staging or cp.async pipeline yet.
// Arch: compiled for every FLEXIQ_CUDA_ARCHS entry (>= sm_80). Int4 mma is native on sm_80/86/87/89
// and emulated on sm_90+, where flexiqSelectBackend picks the int8 backend instead.
constexpr int32_t kStages = 1;
// Input pass: one thread per (input pixel, channel group), pixel fastest for coalesced NCHW reads.
constexpr int32_t kInputPassThreads = 128;
// Reference kernel: one thread per output element.
constexpr int32_t kReferenceThreads = 128;

static_assert(kMmaK == 32, "one int4 atom must cover one G = 32 group");
static_assert(kThreads == 128, "launch bounds below assume 128 threads");

// ---- pipelined backends (flexiqPipelinedGemm.cuh) -------------------------------------------------
// One K-tile = one channel group of one tap (G channels), so a K-tile is wholly 4-bit or 8-bit and
// needs one factor s_a * step_w per (row, group). Global -> shared by 16-byte cp.async.cg, kPipeStages(G) stages
// (4 for G = 32, 3 for G = 64: about the same bytes in flight), XOR-swizzled tiles read by
// ldmatrix. Three CTA shapes, 4 or 8 warps; the runner (flexiqLauncher.cpp) picks one
// per layer shape (M, N) and SM count.
template <int32_t kCtaM_, int32_t kCtaN_, int32_t kWarpsM_, int32_t kWarpsN_>
struct PipeTile
{
    static constexpr int32_t kCtaM = kCtaM_;
    static constexpr int32_t kCtaN = kCtaN_;
    static constexpr int32_t kWarpsM = kWarpsM_;
    static constexpr int32_t kWarpsN = kWarpsN_;
    static constexpr int32_t kThreads = 32 * kWarpsM * kWarpsN;
    static constexpr int32_t kWarpM = kCtaM / kWarpsM;
    static constexpr int32_t kWarpN = kCtaN / kWarpsN;
    static constexpr int32_t kTilesM = kWarpM / kMmaM; //!< m16 atoms per warp
    static constexpr int32_t kTilesN = kWarpN / kMmaN; //!< n8 atoms per warp
    // ldmatrix.x4 covers two m-tiles (int4 G = 32 A), four n-tiles (int4 G = 32 B) or two n-tiles.
    static_assert(kTilesM % 2 == 0 && kTilesN % 4 == 0, "warp tile must be a multiple of 32 x 32");
    static_assert(kThreads == 128 || kThreads == 256, "copy loops are written for 128 or 256 threads");
};
// 128 x 128 runs 8 warps of 64 x 32 (64 accumulators per thread): with 4 warps of 64 x 64 the
// 128 accumulators plus the loop-invariant fragment and copy addresses needed more than 255
// registers and spilled (nvcc 13), and one 4-warp CTA per SM hid no latency.
using PipeTile128x128 = PipeTile<128, 128, 2, 4>;
using PipeTile128x64 = PipeTile<128, 64, 2, 2>;
using PipeTile64x64 = PipeTile<64, 64, 2, 2>;

constexpr int32_t pipeStages(int32_t groupSize)
{
    return groupSize == 32 ? 4 : 3;
}

//! Shared memory of one CTA: kStages x {A codes, B codes, A row factors, the K-tile's weight step}. (Each thread keeps
//! its A row's pixel in registers: no row table.) Every stage starts at a multiple of 128 bytes, which the
//! copies' XOR-stepped chunk addresses rely on.
template <class T, int32_t kG>
struct PipeSmem
{
    static constexpr int32_t kStages = pipeStages(kG);
    static constexpr uint32_t kStage0 = 0;
    static constexpr uint32_t kA = 0;                                 //!< [kCtaM, G] bytes (4-bit: half)
    static constexpr uint32_t kB = T::kCtaM * kG;                     //!< [kCtaN, G] bytes (4-bit: half)
    static constexpr uint32_t kRowF = kB + T::kCtaN * kG;             //!< int32 [kCtaM] step_a
    static constexpr uint32_t kWStep = kRowF + T::kCtaM * 4;          //!< int32 step_w[g] (CTA-uniform)
    static constexpr uint32_t kStageBytes = kWStep + 128;             //!< 4 bytes used: stages stay line-aligned
    static constexpr uint32_t kTotal = kStage0 + kStages * kStageBytes;
    static_assert(kStageBytes % 128 == 0 && kB % 128 == 0, "stages and the B tile start on 128-byte lines");

    FLEXIQ_HD static uint32_t stage(int32_t s)
    {
        return kStage0 + static_cast<uint32_t>(s) * kStageBytes;
    }
};

} // namespace tile

// ---- mma.sync wrappers (PTX ISA 9.7.14: mma.sync.aligned.m16n8k32.row.col) ----------------------
#if defined(FLEXIQ_WARP_EMULATION)
// The host warp emulator (tests/unit/kernels/emulation) defines these with the ISA semantics.
template <bool kSignedA>
void mmaS8(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2]);
template <bool kSignedA>
void mmaS4(int32_t (&d)[4], uint32_t const (&a)[2], uint32_t b);
template <bool kSignedA>
void mmaS4K64(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2]);
#else

//! d[4] (C[16 x 8] s32) += A[16 x 32] s8|u8 (a[4] .b32) * B[32 x 8] s8 (b[2] .b32)
template <bool kSignedA>
__device__ __forceinline__ void mmaS8(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    if constexpr (kSignedA)
    {
        asm volatile(
            "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    else
    {
        asm volatile(
            "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
#endif
}

//! d[4] (C[16 x 8] s32) += A[16 x 32] s4|u4 (a[2] .b32) * B[32 x 8] s4 (b .b32)
template <bool kSignedA>
__device__ __forceinline__ void mmaS4(int32_t (&d)[4], uint32_t const (&a)[2], uint32_t b)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    if constexpr (kSignedA)
    {
        asm volatile(
            "mma.sync.aligned.m16n8k32.row.col.s32.s4.s4.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(b));
    }
    else
    {
        asm volatile(
            "mma.sync.aligned.m16n8k32.row.col.s32.u4.s4.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(b));
    }
#endif
}

//! d[4] (C[16 x 8] s32) += A[16 x 64] s4|u4 (a[4] .b32) * B[64 x 8] s4 (b[2] .b32)
template <bool kSignedA>
__device__ __forceinline__ void mmaS4K64(int32_t (&d)[4], uint32_t const (&a)[4], uint32_t const (&b)[2])
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    if constexpr (kSignedA)
    {
        asm volatile(
            "mma.sync.aligned.m16n8k64.row.col.s32.s4.s4.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
    else
    {
        asm volatile(
            "mma.sync.aligned.m16n8k64.row.col.s32.u4.s4.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
#endif
}

#endif // FLEXIQ_WARP_EMULATION

} // namespace flexiq

#endif // FLEXIQ_TILE_CONFIG_CUH
