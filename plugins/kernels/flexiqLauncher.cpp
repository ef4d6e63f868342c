/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host side of the kernel boundary (flexiqKernels.h): argument checks, workspace layout, backend
 * selection and the two launches (input pass, mixed GEMM). No exceptions, no aborts.
 */
#include "flexiqKernels.h"

#include "flexiqKernelsInternal.h"
#include "flexiqParams.h"
#include "flexiqShape.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace
{

thread_local cudaError_t tLastCudaError = cudaSuccess;

constexpr size_t kAlign = 256;

size_t alignUp(size_t v)
{
    return (v + kAlign - 1) / kAlign * kAlign;
}

//! Workspace: codes8 [rows, C_pad] | codes4 [rows, C_pad/2] | shiftA [rows, C_pad/G], 256-byte aligned.
struct WorkspaceLayout
{
    size_t codes8, codes4, shiftA, total;
};

WorkspaceLayout workspaceLayout(FlexiqLayerArgs const& a, FlexiqProblem const& p)
{
    size_t const rows = static_cast<size_t>(p.batch) * p.height * p.width;
    size_t const cPad = static_cast<size_t>(a.paddedChannels);
    WorkspaceLayout w{};
    w.codes8 = 0;
    w.codes4 = alignUp(rows * cPad);
    w.shiftA = w.codes4 + alignUp(rows * cPad / 2);
    w.total = w.shiftA + alignUp(rows * (cPad / a.groupSize));
    return w;
}

bool aligned4(void const* p)
{
    return (reinterpret_cast<uintptr_t>(p) & 3u) == 0;
}

FlexiqStatus cudaFailure(cudaError_t e)
{
    tLastCudaError = e;
    return kFLEXIQ_ERROR_CUDA;
}

} // namespace

extern "C" {

FlexiqBackend flexiqSelectBackend(int smMajor, int smMinor)
{
    int const sm = smMajor * 10 + smMinor;
    if (sm < 80)
        return kFLEXIQ_BACKEND_AUTO; // unsupported: no int8/int4 m16n8k32 mma
    bool const nativeInt4 = sm == 80 || sm == 86 || sm == 87 || sm == 89;
    char const* force = std::getenv("FLEXIQ_FORCE_INT4");
    bool const forced = force != nullptr && std::strcmp(force, "1") == 0;
    return (nativeInt4 || forced) ? kFLEXIQ_BACKEND_INT4_MMA : kFLEXIQ_BACKEND_INT8_MMA;
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

FlexiqStatus flexiqEnqueue(FlexiqBackend backend, FlexiqLayerArgs const* args, FlexiqProblem const* problem,
    void* workspace, size_t workspaceSize, cudaStream_t stream)
{
    if (flexiqCanImplement(args, nullptr, 0) != kFLEXIQ_SUCCESS || problem == nullptr
        || !flexiq::checkProblem(*args, *problem, nullptr, 0))
        return kFLEXIQ_ERROR_INVALID_ARGS;
    FlexiqLayerArgs const& a = *args;
    FlexiqProblem const& pr = *problem;
    WorkspaceLayout const ws = workspaceLayout(a, pr);
    if (workspace == nullptr || workspaceSize < ws.total)
        return kFLEXIQ_ERROR_WORKSPACE;

    int device = 0;
    int major = 0;
    int minor = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    if (e != cudaSuccess)
        return cudaFailure(e);
    FlexiqBackend const chosen = flexiqSelectBackend(major, minor);
    if (chosen == kFLEXIQ_BACKEND_AUTO)
        return kFLEXIQ_ERROR_UNSUPPORTED_SM;
    if (backend == kFLEXIQ_BACKEND_AUTO)
        backend = chosen;
    if (backend != kFLEXIQ_BACKEND_INT4_MMA && backend != kFLEXIQ_BACKEND_INT8_MMA
        && backend != kFLEXIQ_BACKEND_REFERENCE)
        return kFLEXIQ_ERROR_BACKEND;

    auto* base = static_cast<int8_t*>(workspace);
    bool const isSigned = a.actSigned != 0;
    bool const fp16 = pr.dataType == kFLEXIQ_FP16;
    flexiq::InputPassParams in = flexiq::makeInputPassParams(a, pr);
    in.codes8 = base + ws.codes8;
    in.codes4 = backend == kFLEXIQ_BACKEND_INT4_MMA ? base + ws.codes4 : nullptr;
    in.shiftA = base + ws.shiftA;
    in.writeEffective = backend == kFLEXIQ_BACKEND_INT8_MMA ? 1 : 0;
    e = flexiq::launchInputPass(in, isSigned, fp16, stream);
    if (e != cudaSuccess)
        return cudaFailure(e);

    flexiq::MixedGemmParams const g = flexiq::makeMixedGemmParams(a, pr, in);
    switch (backend)
    {
    case kFLEXIQ_BACKEND_INT4_MMA: e = flexiq::launchInt4MmaGemm(g, isSigned, fp16, stream); break;
    case kFLEXIQ_BACKEND_INT8_MMA: e = flexiq::launchInt8MmaGemm(g, isSigned, fp16, stream); break;
    default: e = flexiq::launchReferenceGemm(g, isSigned, fp16, stream); break;
    }
    return e == cudaSuccess ? kFLEXIQ_SUCCESS : cudaFailure(e);
}

} // extern "C"
