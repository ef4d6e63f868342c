/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host CTA emulator of the FlexiQ CUDA kernels (CPU only, for CI without a GPU).
 *
 * It compiles the kernels' own device code (plugins/kernels/flexiqInputPass.cuh,
 * flexiqMixedGemm.cuh, flexiqPipelinedGemm.cuh) with the host compiler and runs every CTA with one
 * std::thread per CUDA thread:
 *   - mma.sync per warp with the PTX ISA semantics: each lane scatters its fragment registers into
 *     the warp's A/B tiles by the ISA-checked mappings (flexiqFragments.h), a warp barrier, each
 *     lane computes its C/D elements, a warp barrier;
 *   - shared memory per CTA (filled with a poison byte), __syncthreads as a barrier over the CTA's
 *     threads, ldmatrix .x1/.x2/.x4 by the ISA's fragment table (lane l receives 4 bytes at
 *     4 * (l % 4) of row l / 4 of each matrix, whose row addresses come from lanes 8 j .. 8 j + 7);
 *   - cp.async: a copy reads its source when issued but lands in shared memory only when a
 *     cp.async.wait_group retires its group, so a missing wait reads poison or stale data;
 *   - checks: every global access (loads, cp.async sources, stores) must lie inside a buffer the
 *     harness registered with its exact size; every shared access inside the CTA's allocation and
 *     aligned; shared memory is race-checked per byte: a write and another thread's access to the
 *     same byte in the same barrier interval, or any read of a byte with a cp.async in flight, is
 *     an error. The first error is reported (status 2) instead of results.
 * What this cannot check is the hardware itself (timing, the memory model beyond barriers, the
 * IMMA units); that is tests/gpu/kernels.
 *
 * C ABI: flexiqEmulateForward / flexiqEmulateForwardEx / flexiqEmulateSwizzle (see the bottom),
 * built by tests/unit/kernels/emulator_build.py.
 */
#include <cuda_runtime_api.h> // cudaError_t/cudaStream_t and CUDA's host_defines (__device__ etc.)

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace
{
thread_local uint3 tThreadIdx;
thread_local uint3 tBlockIdx;
} // namespace

#define threadIdx tThreadIdx
#define blockIdx tBlockIdx

namespace flexiq
{
namespace smem
{
bool checkGlobalOk(void const* p, uint64_t bytes);
}
} // namespace flexiq

template <typename T>
T __ldg(T const* p)
{
    if (!flexiq::smem::checkGlobalOk(p, sizeof(T)))
        return T{};
    return *p;
}

#include "flexiqEdgeImage.h"
#include "flexiqFragments.h"
#include "flexiqInputPass.cuh"
#include "flexiqMixedGemm.cuh"
#include "flexiqParams.h"
#include "flexiqPipelinedGemm.cuh"
#include "flexiqShape.h"

namespace flexiq
{
namespace
{

// ---- errors and global buffers ------------------------------------------------------------------

std::mutex gErrorMutex;
std::string gError; //!< first check failure of the current run

void fail(std::string const& msg)
{
    std::lock_guard<std::mutex> lock(gErrorMutex);
    if (gError.empty())
        gError = msg;
}

struct Region
{
    uintptr_t lo, hi;
    std::string name;
};
std::vector<Region> gRegions; //!< written before a run, read-only while the threads run

void addRegion(void const* p, uint64_t bytes, char const* name)
{
    if (p != nullptr)
        gRegions.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + bytes, name});
}

// ---- warps and CTAs ---------------------------------------------------------------------------

//! Shared state of one emulated warp: the operand tiles of the current mma, ldmatrix row addresses.
struct WarpState
{
    WarpState()
        : sync(32)
    {
    }
    std::barrier<> sync;
    int32_t a[16][64]; // A[16 x K], K = 32 or 64
    int32_t b[64][8];  // B[K x 8]
    uint32_t rowAddr[32];
};

//! Race-check record of one shared-memory byte.
struct Shadow
{
    int32_t writer = -1, writeEpoch = -1; //!< last write (or cp.async issue/landing) and its barrier interval
    int32_t reader = -1, readEpoch = -1;  //!< last reader in readEpoch; multi: more than one thread
    bool multi = false;
    int32_t pending = 0; //!< cp.async copies in flight to this byte
};

//! One CTA: shared memory, its shadow, the CTA barrier.
struct CtaState
{
    CtaState(size_t bytes, int32_t threads)
        : mem(bytes, 0xA5)
        , shadow(bytes)
        , bar(threads)
    {
    }
    std::vector<uint8_t> mem;
    std::vector<Shadow> shadow;
    std::mutex mutex;
    std::barrier<> bar;
};

struct PendingCopy
{
    uint32_t dst;
    int32_t size;
    int32_t srcBytes;
    uint8_t data[16];
};

thread_local WarpState* tWarp = nullptr;
thread_local CtaState* tCta = nullptr;
thread_local int32_t tEpoch = 0; //!< barriers this thread has passed
thread_local std::vector<PendingCopy> tOpenGroup;
thread_local std::deque<std::vector<PendingCopy>> tGroups;

int32_t lane()
{
    return static_cast<int32_t>(tThreadIdx.x & 31);
}

int32_t tid()
{
    return static_cast<int32_t>(tThreadIdx.x);
}

std::string where(uint32_t addr)
{
    char buf[96];
    std::snprintf(buf, sizeof(buf), "shared[0x%x] (CTA %u,%u thread %d)", addr, tBlockIdx.x, tBlockIdx.y, tid());
    return buf;
}

bool sharedBounds(uint32_t addr, uint32_t n, uint32_t align, char const* op)
{
    if (tCta == nullptr)
    {
        fail(std::string(op) + ": shared memory used outside a CTA");
        return false;
    }
    if (static_cast<uint64_t>(addr) + n > tCta->mem.size())
    {
        fail(std::string(op) + ": " + where(addr) + " + " + std::to_string(n) + " is past the CTA's "
            + std::to_string(tCta->mem.size()) + " bytes of shared memory");
        return false;
    }
    if (addr % align != 0)
    {
        fail(std::string(op) + ": " + where(addr) + " is not " + std::to_string(align) + "-byte aligned");
        return false;
    }
    return true;
}

//! Race checks of a write (or a cp.async issue / landing) of byte i; caller holds the CTA mutex.
void noteWrite(uint32_t i, char const* op)
{
    Shadow& s = tCta->shadow[i];
    if (s.writeEpoch == tEpoch && s.writer != tid())
        fail(std::string("race: ") + op + " " + where(i) + " after thread " + std::to_string(s.writer)
            + " wrote it in the same barrier interval");
    else if (s.readEpoch == tEpoch && (s.reader != tid() || s.multi))
        fail(std::string("race: ") + op + " " + where(i) + " after thread " + std::to_string(s.reader)
            + " read it in the same barrier interval (missing __syncthreads)");
    s.writer = tid();
    s.writeEpoch = tEpoch;
}

void sharedRead(uint32_t addr, uint32_t n, uint32_t align, void* out, char const* op)
{
    std::memset(out, 0, n);
    if (!sharedBounds(addr, n, align, op))
        return;
    std::lock_guard<std::mutex> lock(tCta->mutex);
    for (uint32_t i = addr; i < addr + n; ++i)
    {
        Shadow& s = tCta->shadow[i];
        if (s.pending > 0)
            fail(std::string("race: ") + op + " reads " + where(i)
                + " while a cp.async to it is in flight (missing cp.async.wait_group)");
        else if (s.writeEpoch == tEpoch && s.writer != tid())
            fail(std::string("race: ") + op + " reads " + where(i) + " written by thread " + std::to_string(s.writer)
                + " in the same barrier interval (missing __syncthreads)");
        if (s.readEpoch == tEpoch && s.reader != tid())
            s.multi = true;
        else if (s.readEpoch != tEpoch)
        {
            s.reader = tid();
            s.readEpoch = tEpoch;
            s.multi = false;
        }
    }
    std::memcpy(out, tCta->mem.data() + addr, n);
}

void sharedWrite(uint32_t addr, uint32_t n, uint32_t align, void const* in, char const* op)
{
    if (!sharedBounds(addr, n, align, op))
        return;
    std::lock_guard<std::mutex> lock(tCta->mutex);
    for (uint32_t i = addr; i < addr + n; ++i)
        noteWrite(i, op);
    std::memcpy(tCta->mem.data() + addr, in, n);
}

void issueCopy(uint32_t dst, void const* src, int32_t size, int32_t srcBytes, char const* op)
{
    if (srcBytes != 0 && srcBytes != size)
    {
        fail(std::string(op) + ": src-size " + std::to_string(srcBytes) + " (the kernel uses 0 or the full size)");
        return;
    }
    if (!sharedBounds(dst, static_cast<uint32_t>(size), static_cast<uint32_t>(size), op))
        return;
    PendingCopy c{dst, size, srcBytes, {}};
    if (srcBytes > 0)
    {
        if (reinterpret_cast<uintptr_t>(src) % static_cast<uintptr_t>(size) != 0)
        {
            fail(std::string(op) + ": global source not " + std::to_string(size) + "-byte aligned");
            return;
        }
        if (!smem::checkGlobalOk(src, static_cast<uint64_t>(srcBytes)))
            return;
        std::memcpy(c.data, src, static_cast<size_t>(srcBytes)); // global memory is immutable during the kernel
    }
    std::lock_guard<std::mutex> lock(tCta->mutex);
    for (uint32_t i = dst; i < dst + static_cast<uint32_t>(size); ++i)
    {
        noteWrite(i, op);
        ++tCta->shadow[i].pending;
    }
    tOpenGroup.push_back(c);
}

//! ldmatrix .x{count}: lane l gives the row address of matrix l / 8; lane l receives, for each
//! matrix j, the 4 bytes at 4 * (l % 4) of row l / 4 (PTX ISA, ldmatrix fragment layout).
void ldmatrix(uint32_t* r, int32_t count, uint32_t addr)
{
    int32_t const l = lane();
    tWarp->rowAddr[l] = addr;
    tWarp->sync.arrive_and_wait();
    for (int32_t j = 0; j < count; ++j)
    {
        uint32_t const row = tWarp->rowAddr[8 * j + l / 4];
        if (row % 16 != 0)
            fail("ldmatrix: row address " + where(row) + " is not 16-byte aligned");
        sharedRead(row + 4 * (l % 4), 4, 4, &r[j], "ldmatrix");
    }
    tWarp->sync.arrive_and_wait();
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

// ---- the primitives the kernels call (flexiqSmemOps.cuh, flexiqTileConfig.cuh) ----------------------

namespace smem
{

bool checkGlobalOk(void const* p, uint64_t bytes)
{
    auto const lo = reinterpret_cast<uintptr_t>(p);
    for (Region const& r : gRegions)
        if (lo >= r.lo && lo + bytes <= r.hi)
            return true;
    char buf[160];
    std::snprintf(buf, sizeof(buf), "global access of %llu bytes at %p is outside every buffer (CTA %u,%u thread %d)",
        static_cast<unsigned long long>(bytes), p, tBlockIdx.x, tBlockIdx.y, tid());
    for (Region const& r : gRegions)
        if (lo >= r.lo && lo < r.hi + 4096)
        {
            std::snprintf(buf, sizeof(buf), "global access of %llu bytes at %s+%llu is past its %llu bytes (CTA %u,%u thread %d)",
                static_cast<unsigned long long>(bytes), r.name.c_str(), static_cast<unsigned long long>(lo - r.lo),
                static_cast<unsigned long long>(r.hi - r.lo), tBlockIdx.x, tBlockIdx.y, tid());
            break;
        }
    fail(buf);
    return false;
}

int32_t gPlantedFault = 0; //!< set by flexiqEmulateSetFault before a run

int32_t plantedFault()
{
    return gPlantedFault;
}

void checkGlobal(void const* p, uint64_t bytes)
{
    static_cast<void>(checkGlobalOk(p, bytes));
}

void cpAsync16(uint32_t dst, void const* src, int32_t srcBytes)
{
    issueCopy(dst, src, 16, srcBytes, "cp.async.cg 16");
}

void cpAsync4(uint32_t dst, void const* src, int32_t srcBytes)
{
    issueCopy(dst, src, 4, srcBytes, "cp.async.ca 4");
}

void cpAsyncCommit()
{
    tGroups.push_back(std::move(tOpenGroup));
    tOpenGroup.clear();
}

void cpAsyncWaitImpl(int32_t pending)
{
    while (static_cast<int32_t>(tGroups.size()) > pending)
    {
        std::vector<PendingCopy> const group = std::move(tGroups.front());
        tGroups.pop_front();
        std::lock_guard<std::mutex> lock(tCta->mutex);
        for (PendingCopy const& c : group)
            for (int32_t i = 0; i < c.size; ++i)
            {
                uint32_t const a = c.dst + static_cast<uint32_t>(i);
                --tCta->shadow[a].pending;
                noteWrite(a, "cp.async landing");
                tCta->mem[a] = i < c.srcBytes ? c.data[i] : 0;
            }
    }
}

void barrier()
{
    tCta->bar.arrive_and_wait();
    ++tEpoch;
}

void ldmatrixX4(uint32_t (&r)[4], uint32_t addr)
{
    ldmatrix(r, 4, addr);
}

void ldmatrixX2(uint32_t (&r)[2], uint32_t addr)
{
    ldmatrix(r, 2, addr);
}

uint32_t lds32(uint32_t addr)
{
    uint32_t v = 0;
    sharedRead(addr, 4, 4, &v, "ld.shared.u32");
    return v;
}

void lds64(uint32_t addr, uint32_t& x, uint32_t& y)
{
    uint32_t v[2] = {0, 0};
    sharedRead(addr, 8, 8, v, "ld.shared.v2.u32");
    x = v[0];
    y = v[1];
}

void lds128(uint32_t addr, int32_t (&v)[4])
{
    sharedRead(addr, 16, 16, v, "ld.shared.v4.s32");
}

void sts128(uint32_t addr, int32_t const (&v)[4])
{
    sharedWrite(addr, 16, 16, v, "st.shared.v4.s32");
}

void sts8(uint32_t addr, uint32_t v)
{
    uint8_t const b = static_cast<uint8_t>(v & 0xFFu);
    sharedWrite(addr, 1, 1, &b, "st.shared.u8");
}

} // namespace smem

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

//! Runs `body` for every CTA of a (gridX, gridY) grid: `threads` std::threads, `smemBytes` of shared memory.
template <typename Body>
void runGrid(uint32_t gridX, uint32_t gridY, int32_t threads, size_t smemBytes, Body const& body)
{
    for (uint32_t by = 0; by < gridY; ++by)
        for (uint32_t bx = 0; bx < gridX; ++bx)
        {
            CtaState cta(smemBytes, threads);
            std::vector<std::unique_ptr<WarpState>> warps;
            for (int32_t w = 0; w < threads / 32; ++w)
                warps.push_back(std::make_unique<WarpState>());
            std::vector<std::thread> pool;
            for (uint32_t t = 0; t < static_cast<uint32_t>(threads); ++t)
                pool.emplace_back([&, t] {
                    tThreadIdx = uint3{t, 0, 0};
                    tBlockIdx = uint3{bx, by, 0};
                    tWarp = warps[t / 32].get();
                    tCta = &cta;
                    tEpoch = 0;
                    tOpenGroup.clear();
                    tGroups.clear();
                    body();
                    if (!tOpenGroup.empty() || std::any_of(tGroups.begin(), tGroups.end(), [](auto const& g) { return !g.empty(); }))
                        fail("thread " + std::to_string(t) + " exited with cp.async copies never waited for");
                    tCta = nullptr;
                });
            for (auto& th : pool)
                th.join();
        }
}

template <bool kInt4, bool kSigned, typename OutT>
void runLegacyGemm(MixedGemmParams const& p)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    uint32_t const gridX = static_cast<uint32_t>((mOut + tile::kCtaM - 1) / tile::kCtaM);
    uint32_t const gridY = static_cast<uint32_t>((p.outChannels + tile::kCtaN - 1) / tile::kCtaN);
    runGrid(gridX, gridY, tile::kThreads, 0, [&] { mixedGemmTile<kInt4, kSigned, OutT>(p); });
}

//! The first-version kernels: output type a template argument, as in flexiqMixedGemm.cu.
template <typename OutT>
void runLegacyTyped(MixedGemmParams const& p, bool int4, bool isSigned)
{
    if (int4)
        isSigned ? runLegacyGemm<true, true, OutT>(p) : runLegacyGemm<true, false, OutT>(p);
    else
        isSigned ? runLegacyGemm<false, true, OutT>(p) : runLegacyGemm<false, false, OutT>(p);
}

template <class T, int32_t kG, bool kInt4, bool kSigned>
void runPipelinedGemm(MixedGemmParams const& p)
{
    int64_t const mOut = static_cast<int64_t>(p.batch) * p.outH * p.outW;
    uint32_t const gridX = static_cast<uint32_t>((mOut + T::kCtaM - 1) / T::kCtaM);
    uint32_t const gridY = static_cast<uint32_t>((p.outChannels + T::kCtaN - 1) / T::kCtaN);
    runGrid(gridX, gridY, T::kThreads, tile::PipeSmem<T, kG>::kTotal,
        [&] { pipe::pipelinedGemmTile<T, kG, kInt4, kSigned>(p); });
}

template <class T>
void runPipelinedTile(MixedGemmParams const& p, bool int4, bool isSigned)
{
    if (p.groupSize == 32)
    {
        if (int4)
            isSigned ? runPipelinedGemm<T, 32, true, true>(p) : runPipelinedGemm<T, 32, true, false>(p);
        else
            isSigned ? runPipelinedGemm<T, 32, false, true>(p) : runPipelinedGemm<T, 32, false, false>(p);
    }
    else
    {
        if (int4)
            isSigned ? runPipelinedGemm<T, 64, true, true>(p) : runPipelinedGemm<T, 64, true, false>(p);
        else
            isSigned ? runPipelinedGemm<T, 64, false, true>(p) : runPipelinedGemm<T, 64, false, false>(p);
    }
}

template <int32_t kG, bool kSigned, typename InT>
void runInputPass(InputPassParams const& p)
{
    for (int64_t row = 0; row < p.rows; ++row)
        for (int32_t g = 0; g < p.groups; ++g)
            inputPassThread<kG, kSigned, InT>(p, row, g);
    if (p.wStepWide != nullptr)
        for (int64_t i = 0; i < p.groups; ++i)
            widenWeightStepThread(p, i);
}

template <typename InT>
void runInputPassTyped(InputPassParams const& p, bool isSigned)
{
    if (p.groupSize == 32)
        isSigned ? runInputPass<32, true, InT>(p) : runInputPass<32, false, InT>(p);
    else
        isSigned ? runInputPass<64, true, InT>(p) : runInputPass<64, false, InT>(p);
}

int32_t report(char* why, size_t whyLen, int32_t status, std::string const& what)
{
    if (why != nullptr && whyLen > 0)
        std::snprintf(why, whyLen, "%s", what.c_str());
    return status;
}

} // namespace
} // namespace flexiq

//! Emulates flexiqRunnerEnqueue on the CPU. backend: 1 int4 / 2 int8 first-version kernels, 4 int4 /
//! 5 int8 pipelined kernels; tile: a FlexiqTileConfig (pipelined only; 0 128x128, 1 128x64,
//! 2 64x64). `args` holds host pointers; input and output are NCHW / [M, N] of `inputType` /
//! `outputType` (FlexiqDataType: fp32, fp16, or INT8 activation codes). `max4bit` has numLayers
//! entries. Writes the int32 accumulators and the output. Returns 0, 1 with a reason for invalid
//! arguments, or 2 with the first failed emulator check (bounds, race, cp.async).
extern "C" __attribute__((visibility("default"))) int32_t flexiqEmulateForwardEx(int32_t backend, int32_t tileConfig,
    int32_t inputType, int32_t outputType, FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width,
    void const* input, int32_t const* max4bit, int32_t numLayers, int32_t* acc, void* output, char* why, size_t whyLen)
{
    using namespace flexiq;
    FlexiqLayerArgs const& a = *args;
    FlexiqProblem const problem{batch, height, width, inputType, outputType, input, output, max4bit, acc};
    if (!checkLayerArgs(a, why, whyLen) || !checkProblem(a, problem, why, whyLen))
        return 1;
    bool const pipelined = backend == 4 || backend == 5;
    if (!(backend == 1 || backend == 2 || pipelined) || (pipelined && (tileConfig < 0 || tileConfig > 2)))
        return report(why, whyLen, 1, "unknown backend or tile");
    bool const int4 = backend == 1 || backend == 4;
    bool const isSigned = a.actSigned != 0;
    auto const elementBytes = [](int32_t type) -> uint64_t { return type == kFLEXIQ_FP16 ? 2 : (type == kFLEXIQ_FP32 ? 4 : 1); };
    int64_t const rows = static_cast<int64_t>(batch) * height * width;
    int32_t const groups = a.paddedChannels / a.groupSize;
    int64_t const n = a.outChannels;
    int64_t const k = reductionLength(a);
    int32_t outH = 0;
    int32_t outW = 0;
    outputSize(layerGeometry(a), height, width, &outH, &outW);
    int64_t const outCount = static_cast<int64_t>(batch) * n * outH * outW;
    int64_t const rowsOut = static_cast<int64_t>(batch) * outH * outW;
    bool const edgeIn = inputType == kFLEXIQ_INT8_WORKSPACE;
    bool const edgeOut = outputType == kFLEXIQ_INT8_WORKSPACE;
    if (edgeIn && backend == 4 && a.weightStepWide == nullptr)
        return report(why, whyLen, 1, "a workspace-edge input on the int4 pipelined backend needs weightStepWide");
    int32_t const readerCPad = edgeOut ? edgePaddedChannels(a.outChannels, a.readerGroupSize) : 0;
    // Exactly sized, 16-byte aligned buffers (as the device workspace parts are).
    auto buffer = [](int64_t bytes) { return std::vector<uint64_t>(static_cast<size_t>((bytes + 15) / 16 * 2)); };
    std::vector<uint64_t> codes8 = buffer(rows * a.paddedChannels);
    std::vector<uint64_t> codes4 = buffer(rows * a.paddedChannels / 2);
    std::vector<int8_t> shiftA(static_cast<size_t>(rows * groups));
    std::vector<int32_t> factorA(static_cast<size_t>(rows * groups));
    std::vector<int32_t> wStepWide(static_cast<size_t>(groups));
    std::vector<uint64_t> edgeCodes = buffer(edgeOut ? outCount : 0); // first-version kernels: INT8 codes first
    // The int8 pipelined kernel's effective weights: args.weightEffective when given (tests may corrupt it),
    // else made here as DeviceWeights makes them (makeEffectiveWeights). The launcher would fall back to the
    // first-version int8 kernel without them; the emulator runs the kernel it is asked for.
    bool const ownEffective = backend == 5 && a.weightEffective == nullptr;
    std::vector<uint64_t> effective = buffer(ownEffective ? n * k : 0);
    if (ownEffective)
        makeEffectiveWeights(a, reinterpret_cast<int8_t*>(effective.data()));

    gRegions.clear();
    gError.clear();
    addRegion(a.permutation, a.paddedChannels * 4, "permutation");
    addRegion(a.weightInt8, n * k, "weight_int8");
    addRegion(a.weightInt4, n * k / 2, "weight_int4");
    addRegion(a.weightStep, groups, "weight_step");
    addRegion(a.outScale, n * 4, "out_scale");
    addRegion(a.bias, (groups + 1) * n * 4, "bias"); // [G_count + 1, N]: one row per bias rung
    addRegion(a.actStaticShift, groups, "act_static_shift");
    addRegion(a.weightStepWide, groups * 4, "weight_step_wide");
    addRegion(a.weightEffective, n * k, "weight_effective");
    addRegion(effective.data(), ownEffective ? n * k : 0, "effective_weights");
    if (edgeOut)
        addRegion(a.readerStaticShift, readerCPad / a.readerGroupSize, "reader_act_static_shift");
    addRegion(input,
        edgeIn ? rows * edgeBytesPerRow(a.paddedChannels, a.groupSize)
               : static_cast<uint64_t>(batch) * a.inChannels * height * width * elementBytes(inputType),
        "input");
    addRegion(max4bit, static_cast<uint64_t>(numLayers) * 4, "max4bit");
    addRegion(acc, outCount * 4, "acc");
    addRegion(output, edgeOut ? rowsOut * edgeBytesPerRow(readerCPad, a.readerGroupSize) : outCount * elementBytes(outputType),
        "output");
    addRegion(codes8.data(), rows * a.paddedChannels, "codes8");
    addRegion(codes4.data(), rows * a.paddedChannels / 2, "codes4");
    addRegion(factorA.data(), factorA.size() * 4, "factorA");
    addRegion(wStepWide.data(), wStepWide.size() * 4, "wStepWide");
    addRegion(shiftA.data(), shiftA.size(), "shiftA");
    addRegion(edgeCodes.data(), edgeOut ? outCount : 0, "edge_codes");

    // The launcher's steps (flexiqLauncher.cpp: flexiqRunnerEnqueue), with the same parameter structs.
    InputPassParams in = makeInputPassParams(a, problem);
    in.writeEffective = int4 ? 0 : 1;
    if (edgeIn)
    {
        EdgeImageLayout const l = edgeImageLayout(rows, a.paddedChannels, a.groupSize);
        auto* image = static_cast<int8_t*>(const_cast<void*>(input));
        in.codes8 = image + l.codes8;
        in.codes4 = int4 ? image + l.codes4 : nullptr;
        in.shiftA = image + l.shiftA;
        in.factorA = backend == 4 ? reinterpret_cast<int32_t*>(image + l.factorA) : nullptr;
        in.wStepWide = nullptr;
    }
    else
    {
        in.codes8 = reinterpret_cast<int8_t*>(codes8.data());
        in.codes4 = int4 ? reinterpret_cast<int8_t*>(codes4.data()) : nullptr;
        in.shiftA = shiftA.data();
        in.factorA = backend == 4 ? factorA.data() : nullptr;
        in.wStepWide = backend == 4 && a.weightStepWide == nullptr ? wStepWide.data() : nullptr;
        if (inputType == kFLEXIQ_FP16)
            runInputPassTyped<__half>(in, isSigned);
        else if (inputType == kFLEXIQ_INT8)
            runInputPassTyped<int8_t>(in, isSigned);
        else
            runInputPassTyped<float>(in, isSigned);
    }

    MixedGemmParams g = makeMixedGemmParams(a, problem, in);
    if (backend == 4 && a.weightStepWide != nullptr)
        g.wStepWide = a.weightStepWide;
    if (ownEffective)
        g.wEff = reinterpret_cast<int8_t const*>(effective.data());
    if (edgeOut)
    {
        EdgeImageLayout const l = edgeImageLayout(rowsOut, readerCPad, a.readerGroupSize);
        auto* image = static_cast<int8_t*>(output);
        g.edge = CodeSink{image + l.codes8, int4 ? image + l.codes4 : nullptr, image + l.shiftA,
            reinterpret_cast<int32_t*>(image + l.factorA), a.readerShiftMode == 1 ? a.readerStaticShift : nullptr,
            readerCPad, readerCPad / a.readerGroupSize, int4 ? 0 : 1};
        g.edgeLayerIndex = a.readerLayerIndex;
        g.edgeGroupSize = a.readerGroupSize;
        if (!pipelined)
        {
            g.output = edgeCodes.data();
            g.outType = kFLEXIQ_INT8;
        }
    }
    if (pipelined)
    {
        switch (tileConfig)
        {
        case 0: runPipelinedTile<tile::PipeTile128x128>(g, int4, isSigned); break;
        case 1: runPipelinedTile<tile::PipeTile128x64>(g, int4, isSigned); break;
        default: runPipelinedTile<tile::PipeTile64x64>(g, int4, isSigned); break;
        }
    }
    else if (g.outType == kFLEXIQ_FP16)
        runLegacyTyped<__half>(g, int4, isSigned);
    else if (g.outType == kFLEXIQ_INT8)
        runLegacyTyped<int8_t>(g, int4, isSigned);
    else
        runLegacyTyped<float>(g, int4, isSigned);
    if (edgeOut && !pipelined)
        runInputPassTyped<int8_t>(edgeInputPass(a, g, rowsOut, outH * outW), a.outputSigned != 0);
    gRegions.clear();
    if (!gError.empty())
        return report(why, whyLen, 2, gError);
    return 0;
}

//! The original entry point: FP32 I/O, first-version kernels (backend 1 or 2), max4bit with
//! layerIndex + 1 entries.
extern "C" __attribute__((visibility("default"))) int32_t flexiqEmulateForward(int32_t backend,
    FlexiqLayerArgs const* args, int32_t batch, int32_t height, int32_t width, float const* input,
    int32_t const* max4bit, int32_t* acc, float* output, char* why, size_t whyLen)
{
    if (backend != 1 && backend != 2)
        return flexiq::report(why, whyLen, 1, "flexiqEmulateForward runs backends 1 and 2");
    return flexiqEmulateForwardEx(backend, -1, kFLEXIQ_FP32, kFLEXIQ_FP32, args, batch, height, width, input, max4bit,
        args->layerIndex + 1, acc, output, why, whyLen);
}

//! smem::swizzledChunk, for the bank-conflict test.
extern "C" __attribute__((visibility("default"))) uint32_t flexiqEmulateSwizzle(int32_t row, int32_t chunk, int32_t rowChunks)
{
    return flexiq::smem::swizzledChunk(row, chunk, rowChunks);
}

//! Fault build only (FLEXIQ_FAULT_INJECTION): the planted fault the pipelined kernel commits from now on.
extern "C" __attribute__((visibility("default"))) void flexiqEmulateSetFault(int32_t fault)
{
    flexiq::smem::gPlantedFault = fault;
}
