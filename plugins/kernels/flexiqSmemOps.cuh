/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Shared-memory and asynchronous-copy primitives of the pipelined FlexiQ GEMM (sm_80+).
 *
 * Every shared-memory access of the pipelined kernel goes through these functions, with shared
 * addresses as byte offsets from the kernel's dynamic shared memory. On the device they are single
 * PTX instructions (PTX ISA: cp.async, cp.async.commit_group / wait_group, ldmatrix, ld/st.shared);
 * under FLEXIQ_WARP_EMULATION only declarations are compiled and the host CTA emulator
 * (tests/unit/kernels/emulation) defines them with the ISA semantics plus bounds and race checks:
 * a cp.async lands in shared memory only when a wait_group retires its group.
 */
#ifndef FLEXIQ_SMEM_OPS_CUH
#define FLEXIQ_SMEM_OPS_CUH

#include "flexiqContract.h" // FLEXIQ_HD

#include <cstdint>

namespace flexiq
{
namespace smem
{

#if defined(FLEXIQ_WARP_EMULATION)

//! 16-byte global -> shared copy, .cg (L2 only); bytes past `srcBytes` (0 or 16) are zero-filled.
void cpAsync16(uint32_t dst, void const* src, int32_t srcBytes);
//! 4-byte global -> shared copy, .ca; bytes past `srcBytes` (0 or 4) are zero-filled.
void cpAsync4(uint32_t dst, void const* src, int32_t srcBytes);
//! cpAsync16 / cpAsync4 that only a thread with `pred` performs (a predicated instruction on the device).
inline void cpAsync16If(bool pred, uint32_t dst, void const* src, int32_t srcBytes)
{
    if (pred)
        cpAsync16(dst, src, srcBytes);
}
inline void cpAsync4If(bool pred, uint32_t dst, void const* src, int32_t srcBytes)
{
    if (pred)
        cpAsync4(dst, src, srcBytes);
}
//! Closes this thread's current group of cp.async copies.
void cpAsyncCommit();
//! Waits until at most `pending` of this thread's committed groups are still in flight.
void cpAsyncWaitImpl(int32_t pending);
template <int32_t kPending>
inline void cpAsyncWait()
{
    cpAsyncWaitImpl(kPending);
}
//! __syncthreads(): barrier over the CTA's threads.
void barrier();
//! ldmatrix.sync.aligned.m8n8.x4.shared.b16: lane l gives the row address of matrix l / 8.
void ldmatrixX4(uint32_t (&r)[4], uint32_t addr);
//! ldmatrix ... .x2: lanes 0..15 give the row addresses.
void ldmatrixX2(uint32_t (&r)[2], uint32_t addr);
uint32_t lds32(uint32_t addr);
void lds64(uint32_t addr, uint32_t& x, uint32_t& y);
void lds128(uint32_t addr, int32_t (&v)[4]);
void sts128(uint32_t addr, int32_t const (&v)[4]);
//! st.shared.u8 of the low byte of v.
void sts8(uint32_t addr, uint32_t v);
//! Emulator fault build (FLEXIQ_FAULT_INJECTION): which planted fault the kernel commits (0 none).
int32_t plantedFault();
//! Emulation: throws unless [p, p + bytes) lies inside a registered global buffer.
void checkGlobal(void const* p, uint64_t bytes);

#else

__device__ __forceinline__ uint32_t base()
{
    extern __shared__ __align__(128) uint8_t flexiqDynamicSmem[];
    return static_cast<uint32_t>(__cvta_generic_to_shared(flexiqDynamicSmem));
}

__device__ __forceinline__ void cpAsync16(uint32_t dst, void const* src, int32_t srcBytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(base() + dst), "l"(src), "r"(srcBytes));
}

__device__ __forceinline__ void cpAsync4(uint32_t dst, void const* src, int32_t srcBytes)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(base() + dst), "l"(src), "r"(srcBytes));
}

//! cp.async under a guard predicate: every thread issues the instruction, only those with `pred` copy
//! (no branch, so a copy job with fewer copies than threads keeps the loop body one path).
__device__ __forceinline__ void cpAsync16If(bool pred, uint32_t dst, void const* src, int32_t srcBytes)
{
    asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %0, 0;\n @p cp.async.cg.shared.global [%1], [%2], 16, %3;\n}\n" ::"r"(
                     static_cast<int32_t>(pred)),
        "r"(base() + dst), "l"(src), "r"(srcBytes));
}

__device__ __forceinline__ void cpAsync4If(bool pred, uint32_t dst, void const* src, int32_t srcBytes)
{
    asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %0, 0;\n @p cp.async.ca.shared.global [%1], [%2], 4, %3;\n}\n" ::"r"(
                     static_cast<int32_t>(pred)),
        "r"(base() + dst), "l"(src), "r"(srcBytes));
}

__device__ __forceinline__ void cpAsyncCommit()
{
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int32_t kPending>
__device__ __forceinline__ void cpAsyncWait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

__device__ __forceinline__ void barrier()
{
    __syncthreads();
}

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(base() + addr));
}

__device__ __forceinline__ void ldmatrixX2(uint32_t (&r)[2], uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(base() + addr));
}

__device__ __forceinline__ uint32_t lds32(uint32_t addr)
{
    uint32_t v;
    asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(base() + addr));
    return v;
}

__device__ __forceinline__ void lds64(uint32_t addr, uint32_t& x, uint32_t& y)
{
    asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];\n" : "=r"(x), "=r"(y) : "r"(base() + addr));
}

__device__ __forceinline__ void lds128(uint32_t addr, int32_t (&v)[4])
{
    asm volatile("ld.shared.v4.s32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                 : "r"(base() + addr));
}

__device__ __forceinline__ void sts128(uint32_t addr, int32_t const (&v)[4])
{
    asm volatile("st.shared.v4.s32 [%0], {%1,%2,%3,%4};\n" ::"r"(base() + addr), "r"(v[0]), "r"(v[1]), "r"(v[2]),
                 "r"(v[3]));
}

__device__ __forceinline__ void sts8(uint32_t addr, uint32_t v)
{
    asm volatile("st.shared.u8 [%0], %1;\n" ::"r"(base() + addr), "r"(v));
}

//! Device: no check (the emulator checks every global access of the same code).
__device__ __forceinline__ void checkGlobal(void const* /*p*/, uint64_t /*bytes*/) {}

#endif // FLEXIQ_WARP_EMULATION

//! `base` advanced by a * b bytes with one 32 x 32 -> 64-bit multiply-add (IMAD.WIDE on the device; nvcc does
//! not always find it when `a` is a select). The copy addresses of the pipelined GEMM are formed this way.
template <class P>
FLEXIQ_HD P const* advanceBytes(P const* base, int32_t a, int32_t b)
{
#if defined(__CUDA_ARCH__)
    uint64_t r;
    asm("mad.wide.s32 %0, %1, %2, %3;\n" : "=l"(r) : "r"(a), "r"(b), "l"(reinterpret_cast<uint64_t>(base)));
    return reinterpret_cast<P const*>(r);
#else
    return reinterpret_cast<P const*>(reinterpret_cast<char const*>(base) + static_cast<int64_t>(a) * b);
#endif
}

//! XOR-swizzled 16-byte chunk of a tile stored as rows of `rowChunks` chunks (1, 2 or 4):
//! chunks are numbered row-major, every 8 consecutive chunks form one 128-byte line, and chunk j
//! of line L sits at position j ^ (L mod 8). The 8 row addresses of one ldmatrix matrix (8 rows,
//! same logical chunk) then hit 8 different 16-byte bank quads: conflict-free for 1, 2 and 4
//! chunks per row (tests/unit/kernels/test_pipelined_emulator.py checks this exhaustively).
FLEXIQ_HD uint32_t swizzledChunk(int32_t row, int32_t chunk, int32_t rowChunks)
{
    uint32_t const linear = static_cast<uint32_t>(row * rowChunks + chunk);
    uint32_t const line = linear >> 3;
    return (line << 3) | ((linear & 7u) ^ (line & 7u));
}

} // namespace smem
} // namespace flexiq

#endif // FLEXIQ_SMEM_OPS_CUH
