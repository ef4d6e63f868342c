/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host side of the kernel boundary (flexiqKernels.h): argument checks, workspace layout, the
 * per-device runner (made once per device; backend per device and layer group size, tile per layer
 * shape) and the two launches (input pass, mixed GEMM). No exceptions, no aborts.
 */
#include "flexiqKernels.h"

#include "flexiqEdgeImage.h"
#include "flexiqKernelsInternal.h"
#include "flexiqParams.h"
#include "flexiqShape.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace
{

thread_local cudaError_t tLastCudaError = cudaSuccess;

constexpr size_t kAlign = 256;

size_t alignUp(size_t v)
{
    return (v + kAlign - 1) / kAlign * kAlign;
}

//! Workspace: codes8 [rows, C_pad] | codes4 [rows, C_pad/2] | shiftA [rows, C_pad/G] (activation steps) |
//! factorA int32 [rows, C_pad/G] (the steps again) | wStepWide int32 [C_pad/G] | edge codes [B, N, P, Q], each 256-byte
//! aligned. The same for every backend, so getWorkspaceSize need not know the device (no code planes for a
//! workspace-edge input). `edge codes` only
//! for a workspace-edge output: the first-version and reference kernels store INT8 codes there and a
//! second launch (the input pass with the reader's parameters) writes the edge tensor from them.
struct WorkspaceLayout
{
    size_t codes8, codes4, shiftA, factorA, wStepWide, edgeCodes, total;
};

WorkspaceLayout workspaceLayout(FlexiqLayerArgs const& a, FlexiqProblem const& p)
{
    // A workspace-edge input needs no code planes: its producer wrote them into the edge tensor.
    size_t const rows
        = p.dataType == kFLEXIQ_INT8_WORKSPACE ? 0 : static_cast<size_t>(p.batch) * p.height * p.width;
    size_t const cPad = static_cast<size_t>(a.paddedChannels);
    size_t const groups = cPad / a.groupSize;
    WorkspaceLayout w{};
    w.codes8 = 0;
    w.codes4 = alignUp(rows * cPad);
    w.shiftA = w.codes4 + alignUp(rows * cPad / 2);
    w.factorA = w.shiftA + alignUp(rows * groups);
    w.wStepWide = w.factorA + alignUp(rows * groups * sizeof(int32_t));
    w.edgeCodes = w.wStepWide + alignUp(groups * sizeof(int32_t));
    size_t edgeBytes = 0;
    if (p.outputType == kFLEXIQ_INT8_WORKSPACE)
    {
        int32_t outH = 0;
        int32_t outW = 0;
        flexiq::outputSize(flexiq::layerGeometry(a), p.height, p.width, &outH, &outW);
        edgeBytes = static_cast<size_t>(p.batch) * (outH > 0 ? outH : 0) * (outW > 0 ? outW : 0) * a.outChannels;
    }
    w.total = w.edgeCodes + alignUp(edgeBytes);
    return w;
}

bool aligned(void const* p, uintptr_t bytes)
{
    return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

bool aligned4(void const* p)
{
    return aligned(p, 4);
}

bool pipelined(FlexiqBackend b)
{
    return b == kFLEXIQ_BACKEND_INT4_PIPELINED || b == kFLEXIQ_BACKEND_INT8_PIPELINED;
}

constexpr int32_t kMaxDevices = 64;
std::array<std::atomic<FlexiqRunner*>, kMaxDevices> gRunners{};
std::mutex gRunnersMutex;

FlexiqStatus cudaFailure(cudaError_t e)
{
    tLastCudaError = e;
    return kFLEXIQ_ERROR_CUDA;
}

} // namespace

//! What a runner knows about its device (flexiqKernels.h). Immutable after creation.
struct FlexiqRunner
{
    int32_t smMajor;
    int32_t smMinor;
    int32_t smCount;
    FlexiqBackend backend; //!< the device's backend (backendRule with no group size); AUTO when unsupported
    bool forceInt4;        //!< FLEXIQ_FORCE_INT4=1 when the runner was made
};

namespace
{
bool forceInt4FromEnvironment()
{
    char const* force = std::getenv("FLEXIQ_FORCE_INT4");
    return force != nullptr && std::strcmp(force, "1") == 0;
}

//! Group size meaning "a layer whose G does not change the device's backend" (flexiqSelectBackend).
constexpr int kAnyGroupSize = 0;

//! THE backend rule: every selection (flexiqSelectBackend, flexiqSelectLayerBackend, the runner's AUTO) calls
//! it. benchmarks/perfmodel/kernels.py mirrors it (INT8_BACKEND_LAYERS) so the model prices what runs.
FlexiqBackend backendRule(int sm, int groupSize, bool forceInt4)
{
    if (sm < 80)
        return kFLEXIQ_BACKEND_AUTO; // unsupported: no int8/int4 m16n8k32 mma
    if (forceInt4)
        return kFLEXIQ_BACKEND_INT4_PIPELINED; // tests: int4 everywhere on sm_80+ (emulated on sm_90+)
    bool const nativeInt4 = sm == 80 || sm == 86 || sm == 87 || sm == 89;
    if (!nativeInt4)
        return kFLEXIQ_BACKEND_INT8_PIPELINED;
    // GA100 (sm_80 exactly: A100, A30) at G = 32: PREDICTED int4 path 0.84x the int8 path there at 100% 4-bit
    // (docs/performance.md, "Int8 backend on A100 at G = 32"): one IMAD per accumulator per 8-cycle k32 int4
    // IMMA exceeds the tensor time at GA100's tensor rate (twice GA10x's per SM), while the int8 backend runs a
    // 4-bit K-tile at its 8-bit cost (effective weights): 1.0x at every ratio (int4 is predicted 0.8-3.5% ahead
    // at 25-75%). G = 64 on sm_80 (1.40x) and G = 32 on sm_86/87/89 (1.38-1.46x) keep int4. A prediction
    // from the static model, not a measurement: re-check it with scripts/gpu_check.sh on an A100.
    if (sm == 80 && groupSize == 32)
        return kFLEXIQ_BACKEND_INT8_PIPELINED;
    return kFLEXIQ_BACKEND_INT4_PIPELINED;
}

bool hasEffectiveWeights(FlexiqLayerArgs const* args)
{
    return args->weightEffective != nullptr && aligned(args->weightEffective, 16);
}
} // namespace

extern "C" {

FlexiqBackend flexiqSelectBackend(int smMajor, int smMinor)
{
    return backendRule(smMajor * 10 + smMinor, kAnyGroupSize, forceInt4FromEnvironment());
}

FlexiqBackend flexiqSelectLayerBackend(int smMajor, int smMinor, int groupSize)
{
    return backendRule(smMajor * 10 + smMinor, groupSize, forceInt4FromEnvironment());
}

FlexiqRunner* flexiqRunnerCreate(int smMajor, int smMinor, int smCount)
{
    bool const forceInt4 = forceInt4FromEnvironment();
    return new (std::nothrow) FlexiqRunner{smMajor, smMinor, smCount > 0 ? smCount : 1,
        backendRule(smMajor * 10 + smMinor, kAnyGroupSize, forceInt4), forceInt4};
}

void flexiqRunnerDestroy(FlexiqRunner* runner)
{
    delete runner;
}

FlexiqStatus flexiqRunnerForDevice(int device, FlexiqRunner const** runner)
{
    if (runner == nullptr || device < 0 || device >= kMaxDevices)
        return kFLEXIQ_ERROR_INVALID_ARGS;
    FlexiqRunner* r = gRunners[device].load(std::memory_order_acquire);
    if (r != nullptr)
    {
        *runner = r;
        return kFLEXIQ_SUCCESS;
    }
    std::lock_guard<std::mutex> lock(gRunnersMutex);
    r = gRunners[device].load(std::memory_order_relaxed);
    if (r == nullptr)
    {
        int major = 0;
        int minor = 0;
        int sms = 0;
        int current = -1;
        cudaError_t e = cudaGetDevice(&current);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
        if (e == cudaSuccess && major * 10 + minor >= 80)
        {
            // Kernel attributes apply to the current device: set them with `device` current.
            if (current != device)
                e = cudaSetDevice(device);
            if (e == cudaSuccess)
                e = flexiq::preparePipelinedKernels();
            if (current != device)
            {
                cudaError_t const back = cudaSetDevice(current);
                e = e == cudaSuccess ? back : e;
            }
        }
        if (e != cudaSuccess)
            return cudaFailure(e);
        r = flexiqRunnerCreate(major, minor, sms);
        if (r == nullptr)
            return kFLEXIQ_ERROR_INVALID_ARGS;
        gRunners[device].store(r, std::memory_order_release); // lives until process exit
    }
    *runner = r;
    return kFLEXIQ_SUCCESS;
}

FlexiqBackend flexiqRunnerBackend(FlexiqRunner const* runner)
{
    return runner != nullptr ? runner->backend : kFLEXIQ_BACKEND_AUTO;
}

FlexiqBackend flexiqRunnerLayerBackend(FlexiqRunner const* runner, FlexiqLayerArgs const* args)
{
    if (runner == nullptr || args == nullptr || runner->backend == kFLEXIQ_BACKEND_AUTO)
        return flexiqRunnerBackend(runner);
    return backendRule(runner->smMajor * 10 + runner->smMinor, args->groupSize, runner->forceInt4);
}

FlexiqBackend flexiqRunnerResolveBackend(FlexiqRunner const* runner, FlexiqBackend requested, FlexiqLayerArgs const* args)
{
    FlexiqBackend b = requested;
    if (requested == kFLEXIQ_BACKEND_AUTO)
    {
        b = flexiqRunnerLayerBackend(runner, args);
        // A layer the rule moves off the device's backend (sm_80, G = 32 -> INT8_PIPELINED) only gains with the
        // effective weights; without them the device's own pipelined backend, not the first-version INT8_MMA.
        if (b != flexiqRunnerBackend(runner) && args != nullptr && !hasEffectiveWeights(args))
            b = flexiqRunnerBackend(runner);
    }
    if (pipelined(b) && args != nullptr && !(aligned(args->weightInt8, 16) && aligned(args->weightInt4, 16)))
        b = b == kFLEXIQ_BACKEND_INT4_PIPELINED ? kFLEXIQ_BACKEND_INT4_MMA : kFLEXIQ_BACKEND_INT8_MMA;
    // The int8 pipelined kernel copies its 4-bit K-tiles' B from the effective weights (made with the device
    // weights): without them (or misaligned) the first-version int8 kernel, which expands w4 itself, runs.
    if (b == kFLEXIQ_BACKEND_INT8_PIPELINED && args != nullptr && !hasEffectiveWeights(args))
        b = kFLEXIQ_BACKEND_INT8_MMA;
    return b;
}

FlexiqTileConfig flexiqRunnerSelectTile(FlexiqRunner const* runner, FlexiqLayerArgs const* args, FlexiqProblem const* problem)
{
    int32_t outH = 0;
    int32_t outW = 0;
    flexiq::outputSize(flexiq::layerGeometry(*args), problem->height, problem->width, &outH, &outW);
    int64_t const m = static_cast<int64_t>(problem->batch) * (outH > 0 ? outH : 0) * (outW > 0 ? outW : 0);
    int64_t const n = args->outChannels;
    int64_t const sms = runner != nullptr ? runner->smCount : 1;
    auto ctas = [&](int64_t cm, int64_t cn) { return ((m + cm - 1) / cm) * ((n + cn - 1) / cn); };
    if (n > 64 && ctas(128, 128) >= sms)
        return kFLEXIQ_TILE_128x128;
    if (ctas(128, 64) >= sms)
        return kFLEXIQ_TILE_128x64;
    return kFLEXIQ_TILE_64x64;
}

FlexiqStatus flexiqCanImplementProblem(
    FlexiqLayerArgs const* args, FlexiqProblem const* problem, char* why, size_t whyLen)
{
    FlexiqStatus const s = flexiqCanImplement(args, why, whyLen);
    if (s != kFLEXIQ_SUCCESS)
        return s;
    if (problem == nullptr)
    {
        if (why != nullptr && whyLen > 0)
            std::snprintf(why, whyLen, "no problem given");
        return kFLEXIQ_ERROR_INVALID_ARGS;
    }
    return flexiq::checkProblem(*args, *problem, why, whyLen) ? kFLEXIQ_SUCCESS : kFLEXIQ_ERROR_INVALID_ARGS;
}

FlexiqStatus flexiqCanImplement(FlexiqLayerArgs const* args, char* why, size_t whyLen)
{
    if (args == nullptr || !flexiq::checkLayerArgs(*args, why, whyLen))
        return kFLEXIQ_ERROR_INVALID_ARGS;
    if (!aligned4(args->weightInt8) || !aligned4(args->weightInt4))
    {
        if (why != nullptr && whyLen > 0)
            std::snprintf(why, whyLen, "weight_int8/weight_int4 device pointers must be 4-byte aligned");
        return kFLEXIQ_ERROR_INVALID_ARGS;
    }
    return kFLEXIQ_SUCCESS;
}

void flexiqOutputHW(FlexiqLayerArgs const* args, int32_t height, int32_t width, int32_t* outH, int32_t* outW)
{
    flexiq::outputSize(flexiq::layerGeometry(*args), height, width, outH, outW);
}

size_t flexiqGetWorkspaceSize(FlexiqLayerArgs const* args, FlexiqProblem const* problem)
{
    return workspaceLayout(*args, *problem).total;
}

cudaError_t flexiqLastCudaError()
{
    return tLastCudaError;
}

FlexiqStatus flexiqRunnerEnqueue(FlexiqRunner const* runner, FlexiqBackend backend, FlexiqTileConfig tile,
    FlexiqLayerArgs const* args, FlexiqProblem const* problem, void* workspace, size_t workspaceSize,
    cudaStream_t stream)
{
    if (flexiqCanImplementProblem(args, problem, nullptr, 0) != kFLEXIQ_SUCCESS)
        return kFLEXIQ_ERROR_INVALID_ARGS;
    FlexiqLayerArgs const& a = *args;
    FlexiqProblem const& pr = *problem;
    WorkspaceLayout const ws = workspaceLayout(a, pr);
    if (workspace == nullptr || workspaceSize < ws.total)
        return kFLEXIQ_ERROR_WORKSPACE;
    if (flexiqRunnerBackend(runner) == kFLEXIQ_BACKEND_AUTO)
        return kFLEXIQ_ERROR_UNSUPPORTED_SM;
    backend = flexiqRunnerResolveBackend(runner, backend, args);
    if (backend != kFLEXIQ_BACKEND_INT4_MMA && backend != kFLEXIQ_BACKEND_INT8_MMA
        && backend != kFLEXIQ_BACKEND_REFERENCE && !pipelined(backend))
        return kFLEXIQ_ERROR_BACKEND;
    if (tile == kFLEXIQ_TILE_AUTO)
        tile = flexiqRunnerSelectTile(runner, args, problem);
    if (tile != kFLEXIQ_TILE_128x128 && tile != kFLEXIQ_TILE_128x64 && tile != kFLEXIQ_TILE_64x64)
        return kFLEXIQ_ERROR_INVALID_ARGS;

    bool const int4Codes = backend == kFLEXIQ_BACKEND_INT4_MMA || backend == kFLEXIQ_BACKEND_INT4_PIPELINED;
    auto* base = static_cast<int8_t*>(workspace);
    bool const isSigned = a.actSigned != 0;
    int64_t const rowsIn = static_cast<int64_t>(pr.batch) * pr.height * pr.width;
    flexiq::InputPassParams in = flexiq::makeInputPassParams(a, pr);
    in.writeEffective = int4Codes ? 0 : 1;
    cudaError_t e = cudaSuccess;
    if (pr.dataType == kFLEXIQ_INT8_WORKSPACE)
    {
        // A workspace edge (docs/design.md §2.8): the producer wrote this layer's input-pass image; no input pass.
        if (backend == kFLEXIQ_BACKEND_INT4_PIPELINED && a.weightStepWide == nullptr)
            return kFLEXIQ_ERROR_INVALID_ARGS;
        flexiq::EdgeImageLayout const l = flexiq::edgeImageLayout(rowsIn, a.paddedChannels, a.groupSize);
        auto* image = static_cast<int8_t*>(const_cast<void*>(pr.input));
        in.codes8 = image + l.codes8;
        in.codes4 = int4Codes ? image + l.codes4 : nullptr;
        in.shiftA = image + l.shiftA;
        in.factorA = backend == kFLEXIQ_BACKEND_INT4_PIPELINED ? reinterpret_cast<int32_t*>(image + l.factorA) : nullptr;
        in.wStepWide = nullptr;
    }
    else
    {
        in.codes8 = base + ws.codes8;
        in.codes4 = int4Codes ? base + ws.codes4 : nullptr;
        in.shiftA = base + ws.shiftA;
        in.factorA = backend == kFLEXIQ_BACKEND_INT4_PIPELINED ? reinterpret_cast<int32_t*>(base + ws.factorA) : nullptr;
        // step_w widened to int32 (int4 pipelined kernel only): computed once with the device weights when given,
        // else by the input pass.
        in.wStepWide = backend == kFLEXIQ_BACKEND_INT4_PIPELINED && a.weightStepWide == nullptr
            ? reinterpret_cast<int32_t*>(base + ws.wStepWide)
            : nullptr;
        e = flexiq::launchInputPass(in, isSigned, stream);
        if (e != cudaSuccess)
            return cudaFailure(e);
    }

    flexiq::MixedGemmParams g = flexiq::makeMixedGemmParams(a, pr, in);
    if (backend == kFLEXIQ_BACKEND_INT4_PIPELINED && a.weightStepWide != nullptr)
        g.wStepWide = a.weightStepWide;
    bool const toEdge = pr.outputType == kFLEXIQ_INT8_WORKSPACE;
    // The edge tensor: the reader's input-pass image, in this backend's format.
    int32_t outH = 0;
    int32_t outW = 0;
    flexiq::outputSize(flexiq::layerGeometry(a), pr.height, pr.width, &outH, &outW);
    int64_t const rowsOut = static_cast<int64_t>(pr.batch) * outH * outW;
    int32_t const readerCPad = toEdge ? flexiq::edgePaddedChannels(a.outChannels, a.readerGroupSize) : 0;
    if (toEdge)
    {
        flexiq::EdgeImageLayout const l = flexiq::edgeImageLayout(rowsOut, readerCPad, a.readerGroupSize);
        auto* image = static_cast<int8_t*>(pr.output);
        g.edge = flexiq::CodeSink{image + l.codes8, int4Codes ? image + l.codes4 : nullptr, image + l.shiftA,
            reinterpret_cast<int32_t*>(image + l.factorA), a.readerShiftMode == 1 ? a.readerStaticShift : nullptr,
            readerCPad, readerCPad / a.readerGroupSize, int4Codes ? 0 : 1};
        g.edgeLayerIndex = a.readerLayerIndex;
        g.edgeGroupSize = a.readerGroupSize;
        if (!pipelined(backend))
        {
            // First-version and reference kernels: INT8 codes into the workspace, then a second launch.
            g.output = base + ws.edgeCodes;
            g.outType = kFLEXIQ_INT8;
        }
    }
    switch (backend)
    {
    case kFLEXIQ_BACKEND_INT4_MMA: e = flexiq::launchInt4MmaGemm(g, isSigned, stream); break;
    case kFLEXIQ_BACKEND_INT8_MMA: e = flexiq::launchInt8MmaGemm(g, isSigned, stream); break;
    case kFLEXIQ_BACKEND_INT4_PIPELINED:
    case kFLEXIQ_BACKEND_INT8_PIPELINED:
        e = flexiq::launchPipelinedGemm(g, static_cast<flexiq::PipeTileId>(tile),
            backend == kFLEXIQ_BACKEND_INT4_PIPELINED, isSigned, stream);
        break;
    default: e = flexiq::launchReferenceGemm(g, isSigned, stream); break;
    }
    if (e == cudaSuccess && toEdge && !pipelined(backend))
        e = flexiq::launchInputPass(flexiq::edgeInputPass(a, g, rowsOut, outH * outW), a.outputSigned != 0, stream);
    return e == cudaSuccess ? kFLEXIQ_SUCCESS : cudaFailure(e);
}

FlexiqStatus flexiqEnqueue(FlexiqBackend backend, FlexiqLayerArgs const* args, FlexiqProblem const* problem,
    void* workspace, size_t workspaceSize, cudaStream_t stream)
{
    int device = 0;
    cudaError_t const e = cudaGetDevice(&device);
    if (e != cudaSuccess)
        return cudaFailure(e);
    FlexiqRunner const* runner = nullptr;
    FlexiqStatus const s = flexiqRunnerForDevice(device, &runner);
    if (s != kFLEXIQ_SUCCESS)
        return s;
    return flexiqRunnerEnqueue(runner, backend, kFLEXIQ_TILE_AUTO, args, problem, workspace, workspaceSize, stream);
}

} // extern "C"
