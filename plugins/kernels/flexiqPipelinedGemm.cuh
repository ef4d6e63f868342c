/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Pipelined mainloop of the FlexiQ mixed int4/int8 implicit GEMM (docs/design.md §2, §4), sm_80+.
 *
 * Same arithmetic as flexiqMixedGemm.cuh (and bit-identical to it), organised like a CUTLASS
 * multistage mainloop:
 *   - K-tile = one channel group g of one tap (r, s): G channels, wholly 4-bit (g * G < n4) or
 *     8-bit. Operands are the channels-last code tensors of the input pass (rows = input pixels,
 *     C_pad fastest: a G = 32 group is one 32-byte block per pixel, as in TensorRT's kCHW32) and the
 *     [N, K] weights; the CTA's A rows are gathered per tap (implicit GEMM, zero fill off-image).
 *   - global -> shared with 16-byte cp.async.cg into a kStages-deep ring (commit / wait_group),
 *     one __syncthreads per K-tile; tiles XOR-swizzled (smem::swizzledChunk) so every ldmatrix
 *     phase is bank-conflict free;
 *   - fragments by ldmatrix.x4: in bytes, the s8 m16n8k32 and the s4 m16n8k32 / m16n8k64 fragments
 *     are all "row groupID, 4 bytes at threadInGroup * 4 of a 16-byte chunk", so one loader serves
 *     both widths; each A fragment feeds kTilesN mmas and each B fragment kTilesM;
 *   - 4-bit groups, int4 path: part = A4 . W4 (fresh tile, one int4 atom per (m, n) atom), then
 *     acc += part * (step_a[row, g] * step_w[g]): one IMAD (FMA pipe) per accumulator; the row factor
 *     times the K-tile's CTA-uniform weight step is formed once per m-tile. The factors step_a (input
 *     pass, int32 [rows, groups]) and step_w (int32 [groups], docs/design.md §2.6) travel through the same
 *     pipeline as the codes (4-byte cp.async.ca);
 *   - 4-bit groups, int8 path (sm_90+): A holds effective codes a4 * step_a (input pass), B the effective
 *     weights w4 * step_w[g] made once with the device weights (FlexiqLayerArgs::weightEffective), so a
 *     4-bit K-tile is copied and computed exactly like an 8-bit one: the int8 path runs all K-tiles in
 *     one phase, and the copy selects B's source (effective weights or w8) per tile.
 * Planted faults for the emulator tests: only a build with FLEXIQ_FAULT_INJECTION (the emulator's
 * fault build, never a real one) consults smem::plantedFault():
 *   kFaultOffByOne   accept weight row n == N (reads one row past the weights)
 *   kFaultNoBarrier  drop the __syncthreads after the wait (readers race the copies)
 *   kFaultNoWait     drop the cp.async.wait_group (readers see copies still in flight)
 *   kFaultEdgeNoBarrier  workspace-edge epilogue: drop the __syncthreads between staging the code tile
 *                    and reading it (threads read codes other threads have not written yet)
 */
#ifndef FLEXIQ_PIPELINED_GEMM_CUH
#define FLEXIQ_PIPELINED_GEMM_CUH

#include "flexiqContract.h"
#include "flexiqFragments.h"
#include "flexiqInputPass.cuh"
#include "flexiqKernelsInternal.h"
#include "flexiqLayerArgs.h"
#include "flexiqSmemOps.cuh"
#include "flexiqTileConfig.cuh"

#include <type_traits>

#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
#include <cuda_fp16.h>
#endif

namespace flexiq
{
namespace pipe
{

enum PlantedFault : int32_t
{
    kFaultNone = 0,
    kFaultOffByOne = 1,
    kFaultNoBarrier = 2,
    kFaultNoWait = 3,
    kFaultEdgeNoBarrier = 4,
};

__device__ __forceinline__ bool planted(PlantedFault f)
{
#if defined(FLEXIQ_FAULT_INJECTION)
    return smem::plantedFault() == f;
#else
    static_cast<void>(f);
    return false;
#endif
}

//! Stores output element i of the epilogue value v as the problem's output type: FP32, FP16, or the
//! consumers' INT8 code of v (an INT8 edge, docs/design.md §2.3; unsigned codes as their low 8 bits).
//! The type is a runtime flag: a branch per store after the main loop, not another set of kernels.
__device__ __forceinline__ void storeValue(MixedGemmParams const& p, int64_t i, float v)
{
    if (p.outType == kFLEXIQ_INT8)
    {
        uint8_t* o = static_cast<uint8_t*>(p.output) + i;
        smem::checkGlobal(o, sizeof(uint8_t));
        *o = activationCodeBits(v, p.outputScale, p.outputSigned != 0);
        return;
    }
#if !defined(FLEXIQ_WARP_EMULATION) || defined(FLEXIQ_EMULATE_FP16)
    if (p.outType == kFLEXIQ_FP16)
    {
        __half* o = static_cast<__half*>(p.output) + i;
        smem::checkGlobal(o, sizeof(__half));
        *o = __float2half_rn(v);
        return;
    }
#endif
    float* o = static_cast<float*>(p.output) + i;
    smem::checkGlobal(o, sizeof(float));
    *o = v;
}

//! Row stride of the CTA's code tile when the output is a workspace edge (16 bytes of skew: the 16-byte
//! reads of consecutive rows fall in different bank quads).
template <class T>
constexpr uint32_t edgeTileStride()
{
    return static_cast<uint32_t>(T::kCtaN) + 16u;
}

//! Workspace-edge epilogue, second half (docs/design.md §2.8): the CTA's output codes are staged in shared
//! memory at `tileBase` ([kCtaM rows, kCtaN columns], edgeTileStride), and each thread takes (row, reader
//! group) items of the tile and runs the reader's input-pass step on them (writeRowGroup, the function the
//! reader's own input pass calls). Columns >= N are zero codes; groups at or past the reader's C_pad are
//! not written. kCtaN is a multiple of the reader's G, so the tile holds whole groups.
template <class T, int32_t kGR, bool kSignedR>
__device__ __forceinline__ void storeEdgeGroups(MixedGemmParams const& p, int64_t ctaRow, int32_t ctaCol,
    int64_t mOut, uint32_t tileBase)
{
    static_assert(T::kCtaN % kGR == 0, "a CTA tile must hold whole reader groups");
    constexpr int32_t kGroupsPerTile = T::kCtaN / kGR;
    constexpr uint32_t kStride = edgeTileStride<T>();
    if (p.max4bit != nullptr)
        smem::checkGlobal(p.max4bit + p.edgeLayerIndex, sizeof(int32_t));
    int32_t const n4 = clampN4(p.max4bit != nullptr ? __ldg(p.max4bit + p.edgeLayerIndex) : 0, p.edge.cPad, kGR);
    for (int32_t it = static_cast<int32_t>(threadIdx.x); it < T::kCtaM * kGroupsPerTile; it += T::kThreads)
    {
        int32_t const rowL = it % T::kCtaM;
        int32_t const gl = it / T::kCtaM;
        int64_t const m = ctaRow + rowL;
        int32_t const c0 = ctaCol + gl * kGR;
        if (m >= mOut || c0 >= p.edge.cPad)
            continue;
        int32_t q[kGR];
        int32_t magMax = 0; // the group's maximum of magnitudeBits: the step rule (docs/design.md §2.5)
#pragma unroll
        for (int32_t c = 0; c < kGR / 16; ++c)
        {
            int32_t w[4];
            smem::lds128(tileBase + rowL * kStride + gl * kGR + c * 16, w);
#pragma unroll
            for (int32_t b = 0; b < 16; ++b)
            {
                int32_t const col = c0 + c * 16 + b;
                int8_t const byte = static_cast<int8_t>((static_cast<uint32_t>(w[b >> 2]) >> (8 * (b & 3))) & 0xFFu);
                int32_t const code = col < p.outChannels ? activationCodeFromInt8(byte, kSignedR) : 0;
                q[c * 16 + b] = code;
                magMax = magnitudeBits(code, kSignedR) > magMax ? magnitudeBits(code, kSignedR) : magMax;
            }
        }
        writeRowGroup<kGR, kSignedR>(p.edge, m, c0 / kGR, q, magMax, n4);
    }
}

//! Slot of CTA row `row`'s factor step_a in a stage: rows r and r + 8 of each 16-row block side by side,
//! so the two factors an m16 fragment's thread needs (rows gid and gid + 8) are one 8-byte load.
FLEXIQ_HD constexpr int32_t rowFactorSlot(int32_t row)
{
    return (row & ~15) | ((row & 7) << 1) | ((row >> 3) & 1);
}

//! The CTA tile of outputs [kCtaM x kCtaN] (see the file comment).
template <class T, int32_t kG, bool kInt4Path, bool kSigned>
__device__ __forceinline__ void pipelinedGemmTile(MixedGemmParams const& p)
{
    using L = tile::PipeSmem<T, kG>;
    constexpr int32_t kStages = L::kStages;
    constexpr int32_t kChunks8 = kG / 16; // 16-byte chunks per row of an 8-bit group
    constexpr int32_t kChunks4 = kG / 32; // ... of a 4-bit group
    constexpr int32_t kTM = T::kTilesM;
    constexpr int32_t kTN = T::kTilesN;

    int32_t const tid = static_cast<int32_t>(threadIdx.x);
    int32_t const lane = tid & 31;
    int32_t const warp = tid >> 5;
    int32_t const gid = groupId(lane);
    int32_t const tig = threadInGroup(lane);
    int32_t const warpRow = (warp % T::kWarpsM) * T::kWarpM;
    int32_t const warpCol = (warp / T::kWarpsM) * T::kWarpN;
    int32_t const outPixels = p.outH * p.outW;
    int64_t const mOut = static_cast<int64_t>(p.batch) * outPixels;
    int64_t const ctaRow = static_cast<int64_t>(blockIdx.x) * T::kCtaM;
    int32_t const ctaCol = static_cast<int32_t>(blockIdx.y) * T::kCtaN;
    if (p.max4bit != nullptr)
        smem::checkGlobal(p.max4bit + p.layerIndex, sizeof(int32_t));
    int32_t const n4 = clampN4(p.max4bit != nullptr ? __ldg(p.max4bit + p.layerIndex) : 0, p.cPad, kG);

    // Copy assignment, fixed for the whole kernel: thread tid owns A row rowA = tid / kTprA and B row
    // (output channel) rowB = tid / kTprB of every K-tile of either kind, and the q-th share of that row's
    // 16-byte chunks; the A row's 4-byte factor step_a rides with them, and thread 0 copies the 4-bit
    // K-tile's weight step step_w[g]. Every thread issues the same instructions for a K-tile of a given kind
    // (no branch on the thread index, so one path through the steady-state loop): where a job has one chunk
    // per row but two threads per row, the thread with q == 0 (A, factors) or q == 1 (B) copies and the
    // other's copy is predicated off (smem::cpAsync16If), which balances the two halves.
    constexpr int32_t kTprA = T::kThreads / T::kCtaM; // threads per A row
    constexpr int32_t kTprB = T::kThreads / T::kCtaN; // threads per B row
    static_assert((kTprA == 1 || kTprA == 2) && (kTprB == 1 || kTprB == 2), "one or two threads per tile row");
    int32_t const rowA = tid / kTprA;
    int32_t const qA = tid % kTprA;
    int32_t const rowB = tid / kTprB;
    int32_t const qB = tid % kTprB;

    // The A row's output pixel, hoisted out of the K-loop: (ih0, iw0) of tap (0, 0) and its input pixel
    // index pix0 = (image * H + ih0) * W + iw0; tap (r, s) reads pixel pix0 + r * dilH * W + s * dilW when
    // (ih0 + r * dilH, iw0 + s * dilW) lies inside the image. A row past the last output row gets ih0 far
    // outside every image, so each of its taps is zero padding.
    constexpr int32_t kFar = -(1 << 30);
    int32_t ih0 = kFar;
    int32_t iw0 = kFar;
    int32_t pix0 = 0;
    {
        int64_t const m = ctaRow + rowA;
        if (m < mOut)
        {
            int32_t const img = static_cast<int32_t>(m / outPixels);
            int32_t const rem = static_cast<int32_t>(m - static_cast<int64_t>(img) * outPixels);
            ih0 = (rem / p.outW) * p.strideH - p.padTop;
            iw0 = (rem % p.outW) * p.strideW - p.padLeft;
            pix0 = (img * p.height + ih0) * p.width + iw0;
        }
    }
    // The B row's weight row; a row past N copies zeros from row 0 (in bounds, src-size 0).
    int32_t const nB = ctaCol + rowB;
    bool const nValid = nB < p.outChannels || (planted(kFaultOffByOne) && nB == p.outChannels);
    int64_t const nSel = nValid ? nB : 0;

    // K-tile order (docs/design.md §4, main loop): every 4-bit K-tile first, then every 8-bit one,
    // each phase tap-major: (r, s, g) for g in [0, g4), then (r, s, g) for g in [g4, groups). The
    // int32 sum does not depend on the order (§2.9 bounds it without overflow), and with the kind of
    // a K-tile fixed per phase each loop below has one compute path and, in steady state, one copy
    // path: no per-tile branch on n4 inside the hot loop. The int8 path has one phase: its 4-bit K-tiles
    // (effective codes times effective weights) differ from 8-bit ones only in the B tile's source, which
    // the copy selects per tile (groups4 below), so all its K-tiles run through the 8-bit loops, in
    // (r, s, g) order for g in [0, groups).
    int32_t const taps = p.r * p.s;
    int32_t const groups4 = n4 / kG;                  // 4-bit groups per tap
    int32_t const g4 = kInt4Path ? groups4 : 0;       // ... of which the 4-bit phase runs (int4 path only)
    int32_t const k4 = taps * g4;
    int32_t const kTiles = taps * p.groups;

    // Copy cursor: the (r, s, g) of a K-tile. Only the steady-state loops keep one live and step it
    // (advance: g in [gBegin, gEnd), then s, then r, by selects); the prologue and the phase tails
    // compute it from the tile index (two divisions, a few times per CTA), which keeps the register
    // count of the 128 x 128 tile within 255 without spilling.
    struct Cursor
    {
        int32_t r, s, g;
    };
    auto advance = [&](Cursor& c, int32_t gBegin, int32_t gEnd) {
        int32_t const g1 = c.g + 1;
        bool const wrapG = g1 == gEnd;
        c.g = wrapG ? gBegin : g1;
        int32_t const s1 = c.s + (wrapG ? 1 : 0);
        bool const wrapS = s1 == p.s;
        c.s = wrapS ? 0 : s1;
        c.r += wrapS ? 1 : 0;
    };
    auto cursorOf = [&](int32_t t) -> Cursor {
        bool const four = t < k4;
        // groups per tap in t's phase, at least 1: t may lie past the last tile (cursor then unused)
        int32_t const phaseGroups = four ? g4 : p.groups - g4;
        int32_t const per = phaseGroups > 0 ? phaseGroups : 1;
        int32_t const u = four ? t : t - k4;
        int32_t const tap = u / per;
        return Cursor{tap / p.s, tap - (tap / p.s) * p.s, (four ? 0 : g4) + (u - tap * per)};
    };
    // Stage the next issue fills, outside the unrolled steady-state loops (which name their stages as
    // constants and leave it where it was: they issue whole rounds of kStages tiles).
    int32_t cpStage = 0;
    auto nextCpStage = [&]() -> uint32_t {
        uint32_t const st = L::stage(cpStage);
        cpStage = cpStage + 1 == kStages ? 0 : cpStage + 1;
        return st;
    };

    // Issues the cp.async copies of the K-tile at cursor c into stage `st` (no commit). kFour is the
    // tile's kind, known at compile time in every caller, so every thread's copies are a fixed list.
    auto issue = [&](auto fourTag, Cursor const& c, uint32_t st) {
        constexpr bool kFour = decltype(fourTag)::value;
        constexpr bool kA4 = kInt4Path && kFour; // packed 4-bit A and B: only the int4 path's 4-bit tiles
        constexpr int32_t kAChunks = kA4 ? kChunks4 : kChunks8;
        constexpr int32_t kBChunks = kAChunks;
        // chunks per thread; a "half" job (one chunk per row, two threads per row) is copied by one of them
        constexpr bool kAHalf = kAChunks < kTprA;
        constexpr bool kBHalf = kBChunks < kTprB;
        constexpr int32_t kAPer = kAHalf ? 1 : kAChunks / kTprA;
        constexpr int32_t kBPer = kBHalf ? 1 : kBChunks / kTprB;
        // Addresses: a per-thread base fixed for the kernel (row, chunk share; kept out of the loop) advanced
        // by a per-tile index times a constant, one 32 x 32 -> 64-bit multiply-add (smem::advanceBytes). The
        // index of the A row's (pixel, group) pair, pg = pix * groups + g, addresses its codes (pg * G or
        // pg * G / 2 bytes: C_pad = groups * G) and its factor (pg * 4); the weights' (tap, group) index
        // tg = tap * groups + g, the same for every thread, addresses the B row's K-tile. Both fit int32
        // (checkProblem bounds input pixels x groups).
        // A: the row's input pixel at tap (r, s), or zero fill (src-size 0, source pixel 0: in bounds).
        int32_t const rDil = c.r * p.dilationH;
        int32_t const sDil = c.s * p.dilationW;
        bool const inside = static_cast<uint32_t>(ih0 + rDil) < static_cast<uint32_t>(p.height)
            && static_cast<uint32_t>(iw0 + sDil) < static_cast<uint32_t>(p.width);
        int32_t const pix = inside ? pix0 + (rDil * p.width + sDil) : 0;
        int32_t const pg = pix * p.groups + c.g;
        int32_t const chA = kAHalf ? 0 : qA * kAPer;
        int8_t const* aSrc = smem::advanceBytes((kA4 ? p.codes4 : p.codes8) + chA * 16, pg, kA4 ? kG / 2 : kG);
        // the kAPer chunks of a thread start at a multiple of kAPer (<= 4) of one 128-byte line: their
        // swizzled positions are the first one's XOR j (smem::swizzledChunk)
        uint32_t const aDst = st + L::kA + smem::swizzledChunk(rowA, chA, kAChunks) * 16;
#pragma unroll
        for (int32_t j = 0; j < kAPer; ++j)
            smem::cpAsync16If(!kAHalf || qA == 0, aDst ^ static_cast<uint32_t>(j * 16), aSrc + j * 16,
                inside ? 16 : 0);
        if constexpr (kA4)
            smem::cpAsync4If(kTprA == 1 || qA == 0, st + L::kRowF + rowFactorSlot(rowA) * 4,
                smem::advanceBytes(p.factorA, pg, 4), inside ? 4 : 0);
        // B: [kCtaN rows (n), kBChunks] 16-byte chunks of w8, of the packed w4 for a 4-bit group on the int4
        // path, or on the int8 path of the effective weights w4 * step_w ([N, K] like w8) for a 4-bit group
        // (g < groups4: a select per tile, the int8 path's only difference between the two kinds).
        int32_t const chB = kBHalf ? 0 : qB * kBPer;
        int8_t const* bRow = kA4 ? p.w4 + nSel * (p.kLen / 2) + chB * 16
                                 : (!kInt4Path && c.g < groups4 ? p.wEff : p.w8) + nSel * p.kLen + chB * 16;
        int32_t const tg = (c.r * p.s + c.s) * p.groups + c.g;
        int8_t const* bSrc = smem::advanceBytes(bRow, tg, kA4 ? kG / 2 : kG);
        uint32_t const bDst = st + L::kB + smem::swizzledChunk(rowB, chB, kBChunks) * 16;
#pragma unroll
        for (int32_t j = 0; j < kBPer; ++j)
            smem::cpAsync16If(!kBHalf || qB == kTprB - 1, bDst ^ static_cast<uint32_t>(j * 16), bSrc + j * 16,
                nValid ? 16 : 0);
        if constexpr (kA4) // the int4 path's factor step_w[g] (the int8 path's B already holds it)
            smem::cpAsync4If(tid == 0, st + L::kWStep, smem::advanceBytes(p.wStepWide, c.g, 4), 4);
    };
    using Four = std::integral_constant<bool, true>;
    using Eight = std::integral_constant<bool, false>;
    // Issues K-tile t of either phase, or nothing past the last: prologue and phase tails only.
    auto issueTile = [&](int32_t t) {
        if (t < k4)
            issue(Four{}, cursorOf(t), nextCpStage());
        else if (t < kTiles)
            issue(Eight{}, cursorOf(t), nextCpStage());
    };
    // Start of every K-tile: its copies have landed (this thread's, then everyone's), and every warp
    // is done with the stage the next issue refills.
    auto awaitTile = [&]() {
        if (!planted(kFaultNoWait))
            smem::cpAsyncWait<kStages - 2>();
        if (!planted(kFaultNoBarrier))
            smem::barrier();
    };

    // ldmatrix.x4 of A rows [row0, row0 + 16) x chunks (c0, c0 + 1): the s8 k32 / s4 k64 A fragment.
    auto loadA16x2 = [&](uint32_t st, int32_t row0, int32_t c0, int32_t rowChunks, uint32_t (&a)[4]) {
        int32_t const j = lane >> 3; // matrix: 0 rows 0-7 c0, 1 rows 8-15 c0, 2 rows 0-7 c0+1, 3 rows 8-15 c0+1
        int32_t const row = row0 + (j & 1) * 8 + (lane & 7);
        smem::ldmatrixX4(a, st + L::kA + smem::swizzledChunk(row, c0 + (j >> 1), rowChunks) * 16);
    };
    // ldmatrix.x4 of B rows (n) [n0, n0 + 16) x chunks (c0, c0 + 1): two n-tiles' s8 k32 / s4 k64 B fragments.
    auto loadB2x2 = [&](uint32_t st, int32_t n0, int32_t c0, int32_t rowChunks, uint32_t (&b0)[2], uint32_t (&b1)[2]) {
        int32_t const j = lane >> 3; // matrix: 0 n 0-7 c0, 1 n 0-7 c0+1, 2 n 8-15 c0, 3 n 8-15 c0+1
        int32_t const n = n0 + (j >> 1) * 8 + (lane & 7);
        uint32_t r[4];
        smem::ldmatrixX4(r, st + L::kB + smem::swizzledChunk(n, c0 + (j & 1), rowChunks) * 16);
        b0[0] = r[0];
        b0[1] = r[1];
        b1[0] = r[2];
        b1[1] = r[3];
    };

    int32_t acc[kTM][kTN][4];
#pragma unroll
    for (int32_t mi = 0; mi < kTM; ++mi)
#pragma unroll
        for (int32_t ni = 0; ni < kTN; ++ni)
#pragma unroll
            for (int32_t e = 0; e < 4; ++e)
                acc[mi][ni][e] = 0;

    // int8 mma over one K-tile in k32 steps: an 8-bit group, or (int8 path) a 4-bit group, whose A holds
    // effective codes and whose B the effective weights: the same fragments, the same loop.
    auto compute8 = [&](uint32_t st) {
#pragma unroll
        for (int32_t kk = 0; kk < kG / 32; ++kk)
        {
            uint32_t b[kTN][2];
#pragma unroll
            for (int32_t ni = 0; ni < kTN; ni += 2)
                loadB2x2(st, warpCol + ni * 8, 2 * kk, kChunks8, b[ni], b[ni + 1]);
#pragma unroll
            for (int32_t mi = 0; mi < kTM; ++mi)
            {
                uint32_t a[4];
                loadA16x2(st, warpRow + mi * 16, 2 * kk, kChunks8, a);
#pragma unroll
                for (int32_t ni = 0; ni < kTN; ++ni)
                    mmaS8<kSigned>(acc[mi][ni], a, b[ni]);
            }
        }
    };

    // int4 mma over one 4-bit K-tile: part = A4 . W4 (fresh), then acc += part * (step_a[row] * step_w[g]).
    auto compute4 = [&](uint32_t st) {
        int32_t const stepW = static_cast<int32_t>(smem::lds32(st + L::kWStep)); // step_w[g]: one broadcast load
        // step_a * step_w of C rows rowC (gid) and rowC + 8 of an m16 tile (rowC % 16 < 8): one 8-byte load
        auto rowFactors = [&](int32_t rowC, int32_t (&f)[2]) {
            uint32_t x, y;
            smem::lds64(st + L::kRowF + rowFactorSlot(rowC) * 4, x, y);
            f[0] = static_cast<int32_t>(x) * stepW;
            f[1] = static_cast<int32_t>(y) * stepW;
        };
        if constexpr (kG == 32)
        {
            // m16n8k32 .s4: A 2 regs (rows gid, gid + 8 of the only chunk), B 1 reg per n-tile.
            uint32_t b[kTN];
#pragma unroll
            for (int32_t ni = 0; ni < kTN; ni += 4)
            {
                uint32_t r[4];
                int32_t const n = warpCol + (ni + (lane >> 3)) * 8 + (lane & 7);
                smem::ldmatrixX4(r, st + L::kB + smem::swizzledChunk(n, 0, 1) * 16);
#pragma unroll
                for (int32_t j = 0; j < 4; ++j)
                    b[ni + j] = r[j];
            }
#pragma unroll
            for (int32_t mi = 0; mi < kTM; mi += 2)
            {
                uint32_t r[4]; // (mi rows 0-7), (mi rows 8-15), (mi+1 rows 0-7), (mi+1 rows 8-15)
                int32_t const j = lane >> 3;
                int32_t const row = warpRow + (mi + (j >> 1)) * 16 + (j & 1) * 8 + (lane & 7);
                smem::ldmatrixX4(r, st + L::kA + smem::swizzledChunk(row, 0, 1) * 16);
#pragma unroll
                for (int32_t h = 0; h < 2; ++h)
                {
                    uint32_t const a[2] = {r[2 * h], r[2 * h + 1]};
                    int32_t const rowC = warpRow + (mi + h) * 16 + gid;
                    int32_t f[2];
                    rowFactors(rowC, f);
#pragma unroll
                    for (int32_t ni = 0; ni < kTN; ++ni)
                    {
                        int32_t part[4] = {0, 0, 0, 0};
                        mmaS4<kSigned>(part, a, b[ni]);
#pragma unroll
                        for (int32_t e = 0; e < 4; ++e)
                            acc[mi + h][ni][e] += part[e] * f[e >> 1];
                    }
                }
            }
        }
        else
        {
            // m16n8k64 .s4: A 4 regs, B 2 regs per n-tile (two chunks per row).
            uint32_t b[kTN][2];
#pragma unroll
            for (int32_t ni = 0; ni < kTN; ni += 2)
                loadB2x2(st, warpCol + ni * 8, 0, kChunks4, b[ni], b[ni + 1]);
#pragma unroll
            for (int32_t mi = 0; mi < kTM; ++mi)
            {
                uint32_t a[4];
                loadA16x2(st, warpRow + mi * 16, 0, kChunks4, a);
                int32_t const rowC = warpRow + mi * 16 + gid;
                int32_t f[2];
                rowFactors(rowC, f);
#pragma unroll
                for (int32_t ni = 0; ni < kTN; ++ni)
                {
                    int32_t part[4] = {0, 0, 0, 0};
                    mmaS4K64<kSigned>(part, a, b[ni]);
#pragma unroll
                    for (int32_t e = 0; e < 4; ++e)
                        acc[mi][ni][e] += part[e] * f[e >> 1];
                }
            }
        }
    };
    // The 4-bit phase's compute (the int8 path has no 4-bit phase: k4 = 0, these loops compile away).
    auto computeFour = [&](uint32_t st) {
        if constexpr (kInt4Path)
            compute4(st);
        else
            compute8(st);
    };

    // Prologue: kStages - 1 K-tiles in flight.
#pragma unroll
    for (int32_t t = 0; t < kStages - 1; ++t)
    {
        issueTile(t);
        smem::cpAsyncCommit();
    }

    // The steady-state loops run rounds of kStages K-tiles, unrolled (docs/performance.md, "Unrolled
    // steady state"): a round that starts at a tile kt with kt % kStages == 0 computes tile kt + u from
    // stage u and issues tile kt + u + kStages - 1 into stage (u + kStages - 1) % kStages, so every
    // stage offset is a compile-time constant (an immediate in the ldmatrix / LDS / copy addresses) and
    // no stage counter is live. Tiles before the first aligned tile of a phase and after its last whole
    // round run one at a time (at most kStages - 1 each side).
    // The 64 x 64 tile runs its 4-bit phase one K-tile per iteration: the rounds would cost it a CTA per SM
    // in registers (127 -> 159 at G = 64, sm_86) for a few issue slots.
    constexpr bool kRounds4 = T::kCtaM * T::kCtaN > 64 * 64;
    int32_t stage = 0; // kt % kStages, outside the rounds
    int32_t kt = 0;
    // 4-bit phase. It starts at kt = 0, aligned. Rounds: every tile issued (up to kt + 2 kStages - 2) is 4-bit.
    if constexpr (kRounds4)
    {
        if (2 * kStages - 2 < k4)
        {
            Cursor c = cursorOf(kStages - 1);
            for (; kt + 2 * kStages - 2 < k4; kt += kStages)
            {
#pragma unroll
                for (int32_t u = 0; u < kStages; ++u)
                {
                    awaitTile();
                    issue(Four{}, c, L::stage((u + kStages - 1) % kStages));
                    advance(c, 0, g4);
                    smem::cpAsyncCommit();
                    computeFour(L::stage(u));
                }
            }
        }
    }
    else if (kStages - 1 < k4)
    {
        // one K-tile per iteration; the stage counters are live
        Cursor c = cursorOf(kStages - 1);
        for (; kt + kStages - 1 < k4; ++kt)
        {
            awaitTile();
            issue(Four{}, c, nextCpStage());
            advance(c, 0, g4);
            smem::cpAsyncCommit();
            computeFour(L::stage(stage));
            stage = stage + 1 == kStages ? 0 : stage + 1;
        }
    }
    // ... its last tiles one at a time (fewer than kStages of them still issue 4-bit tiles; the last
    // kStages - 1 issue the first 8-bit tiles, or nothing).
    for (; kt < k4; ++kt)
    {
        awaitTile();
        issueTile(kt + kStages - 1);
        smem::cpAsyncCommit();
        computeFour(L::stage(stage));
        stage = stage + 1 == kStages ? 0 : stage + 1;
    }
    // 8-bit phase. Steady state: the tile issued (kt + kStages - 1) exists; one path per loop, like the 4-bit loop.
    Cursor c = cursorOf(kt + kStages - 1);
    auto eightTile = [&]() {
        awaitTile();
        issue(Eight{}, c, nextCpStage());
        advance(c, g4, p.groups);
        smem::cpAsyncCommit();
        compute8(L::stage(stage));
        stage = stage + 1 == kStages ? 0 : stage + 1;
    };
    // ... up to the first tile of stage 0 (k4 need not be a multiple of kStages),
    for (; stage != 0 && kt + kStages - 1 < kTiles; ++kt)
        eightTile();
    // ... whole rounds (cpStage is kStages - 1 at a round's start and end),
    for (; kt + 2 * kStages - 2 < kTiles; kt += kStages)
    {
#pragma unroll
        for (int32_t u = 0; u < kStages; ++u)
        {
            awaitTile();
            issue(Eight{}, c, L::stage((u + kStages - 1) % kStages));
            advance(c, g4, p.groups);
            smem::cpAsyncCommit();
            compute8(L::stage(u));
        }
    }
    // ... the tiles left that still issue one (fewer than kStages),
    for (; kt + kStages - 1 < kTiles; ++kt)
        eightTile();
    // ... and its last (at most kStages - 1) tiles, which issue nothing: unrolled, so that they add no loop.
#pragma unroll
    for (int32_t i = 0; i < kStages - 1; ++i)
    {
        if (kt < kTiles)
        {
            awaitTile();
            smem::cpAsyncCommit();
            compute8(L::stage(stage));
            stage = stage + 1 == kStages ? 0 : stage + 1;
            ++kt;
        }
    }
    smem::cpAsyncWait<0>(); // only empty groups remain; retire them before the CTA exits

    // Fused epilogue: y = float(acc) * outScale[n] + bias[rung, n], activation, NCHW store (FP32, FP16
    // or the consumers' INT8 codes, storeValue). The rung comes from groups4 (= n4 / G, live through the
    // loops anyway), not n4, which would stay live for it. A workspace-edge output stages the codes in the
    // pipeline's shared memory instead (every warp is past its last read of it: one barrier) and writes the
    // reader's input-pass image from there (storeEdgeGroups).
    bool const toEdge = p.outType == kFLEXIQ_INT8_WORKSPACE;
    uint32_t const edgeTile = L::kStage0;
    static_assert(T::kCtaM * edgeTileStride<T>() <= L::kStages * L::kStageBytes, "the code tile fits the stages");
    if (toEdge)
        smem::barrier();
    float const* const biasRow = biasFor(p, groups4 * kG);
#pragma unroll
    for (int32_t ni = 0; ni < kTN; ++ni)
#pragma unroll
        for (int32_t j = 0; j < 2; ++j)
        {
            int32_t const nTile = warpCol + ni * 8 + tig * 2 + j;
            int32_t const n = ctaCol + nTile;
            if (n >= p.outChannels)
                continue;
            smem::checkGlobal(p.outScale + n, sizeof(float));
            smem::checkGlobal(biasRow + n, sizeof(float));
            float const scale = __ldg(p.outScale + n);
            float const bias = __ldg(biasRow + n);
#pragma unroll
            for (int32_t mi = 0; mi < kTM; ++mi)
#pragma unroll
                for (int32_t h = 0; h < 2; ++h)
                {
                    int32_t const rowL = warpRow + mi * 16 + gid + 8 * h;
                    int64_t const m = ctaRow + rowL;
                    if (m >= mOut)
                        continue;
                    int64_t const idx = ((m / outPixels) * p.outChannels + n) * outPixels + (m % outPixels);
                    int32_t const v = acc[mi][ni][2 * h + j];
                    if (p.accOut != nullptr)
                    {
                        smem::checkGlobal(p.accOut + idx, sizeof(int32_t));
                        p.accOut[idx] = v;
                    }
                    float const y = epilogue(v, scale, bias, p.activation, p.alpha, p.beta);
                    if (toEdge)
                        smem::sts8(edgeTile + rowL * edgeTileStride<T>() + nTile,
                            activationCodeBits(y, p.outputScale, p.outputSigned != 0));
                    else
                        storeValue(p, idx, y);
                }
        }
    if (toEdge)
    {
        if (!planted(kFaultEdgeNoBarrier))
            smem::barrier();
        if (p.edgeGroupSize == 32)
            p.outputSigned != 0 ? storeEdgeGroups<T, 32, true>(p, ctaRow, ctaCol, mOut, edgeTile)
                                : storeEdgeGroups<T, 32, false>(p, ctaRow, ctaCol, mOut, edgeTile);
        else
            p.outputSigned != 0 ? storeEdgeGroups<T, 64, true>(p, ctaRow, ctaCol, mOut, edgeTile)
                                : storeEdgeGroups<T, 64, false>(p, ctaRow, ctaCol, mOut, edgeTile);
    }
}

} // namespace pipe
} // namespace flexiq

#endif // FLEXIQ_PIPELINED_GEMM_CUH
