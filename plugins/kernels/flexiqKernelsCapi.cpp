/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * C ABI for GPU tests and benchmarks (libflexiq_kernels_capi.so): needs only the CUDA runtime.
 * flexiqCapiRunLayer takes a layer described with HOST pointers, copies it to the device, runs
 * flexiqEnqueue with the requested backend (optionally timed over several iterations) and copies
 * the output and the raw int32 accumulators back, so Python needs no CUDA bindings.
 */
#include "flexiqEdgeImage.h"
#include "flexiqKernels.h"
#include "flexiqShape.h"

#include <cstdio>
#include <cstring>
#include <vector>

#define FLEXIQ_CAPI extern "C" __attribute__((visibility("default")))

namespace
{

//! Device allocations of one run, freed on every exit path.
class DeviceBuffers
{
public:
    ~DeviceBuffers()
    {
        for (void* p : mPtrs)
            cudaFree(p);
    }

    //! Device copy of `bytes` host bytes (or zeroed memory when `host` is null).
    template <typename T>
    T* upload(void const* host, size_t bytes, cudaError_t* err)
    {
        void* d = nullptr;
        size_t const n = bytes == 0 ? 4 : bytes;
        if (*err != cudaSuccess || (*err = cudaMalloc(&d, n)) != cudaSuccess)
            return nullptr;
        mPtrs.push_back(d);
        *err = host != nullptr ? cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice) : cudaMemset(d, 0, n);
        return static_cast<T*>(d);
    }

private:
    std::vector<void*> mPtrs;
};

int32_t report(char* why, size_t whyLen, int32_t status, char const* what)
{
    if (why != nullptr && whyLen > 0)
        std::snprintf(why, whyLen, "%s", what);
    return status;
}

//! flexiqEnqueue, or the current device's runner with a forced tile configuration (tile >= 0).
int32_t enqueueWithTile(int32_t backend, int32_t tile, FlexiqLayerArgs const* d, FlexiqProblem const* p, void* ws,
    size_t wsSize)
{
    if (tile < 0)
        return flexiqEnqueue(static_cast<FlexiqBackend>(backend), d, p, ws, wsSize, nullptr);
    int device = 0;
    cudaError_t const e = cudaGetDevice(&device);
    if (e != cudaSuccess)
        return kFLEXIQ_ERROR_CUDA;
    FlexiqRunner const* runner = nullptr;
    FlexiqStatus const s = flexiqRunnerForDevice(device, &runner);
    if (s != kFLEXIQ_SUCCESS)
        return s;
    return flexiqRunnerEnqueue(
        runner, static_cast<FlexiqBackend>(backend), static_cast<FlexiqTileConfig>(tile), d, p, ws, wsSize, nullptr);
}

} // namespace

//! Number of CUDA devices and the compute capability of device 0 (0 devices: returns the CUDA error).
FLEXIQ_CAPI int32_t flexiqCapiDeviceInfo(int32_t* count, int32_t* major, int32_t* minor)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    *count = e == cudaSuccess ? n : 0;
    if (e != cudaSuccess || n == 0)
        return static_cast<int32_t>(e);
    int ma = 0;
    int mi = 0;
    cudaDeviceGetAttribute(&ma, cudaDevAttrComputeCapabilityMajor, 0);
    cudaDeviceGetAttribute(&mi, cudaDevAttrComputeCapabilityMinor, 0);
    *major = ma;
    *minor = mi;
    return 0;
}

//! flexiqSelectBackend, exported for tests.
FLEXIQ_CAPI int32_t flexiqCapiSelectBackend(int32_t smMajor, int32_t smMinor)
{
    return flexiqSelectBackend(smMajor, smMinor);
}

//! flexiqSelectLayerBackend, exported for tests.
FLEXIQ_CAPI int32_t flexiqCapiSelectLayerBackend(int32_t smMajor, int32_t smMinor, int32_t groupSize)
{
    return flexiqSelectLayerBackend(smMajor, smMinor, groupSize);
}

//! Runner selection for a described device (no CUDA call): backend and tile config for a layer
//! shape, for CPU tests of the selection logic. `hostArgs` may hold null pointers (none is read: the
//! backend is flexiqRunnerLayerBackend's for its group size, the device's when null). Returns the
//! backend; writes the tile (may be null).
FLEXIQ_CAPI int32_t flexiqCapiRunnerSelect(int32_t smMajor, int32_t smMinor, int32_t smCount,
    FlexiqLayerArgs const* hostArgs, int32_t batch, int32_t height, int32_t width, int32_t* tile)
{
    FlexiqRunner* runner = flexiqRunnerCreate(smMajor, smMinor, smCount);
    if (runner == nullptr)
        return -1;
    FlexiqProblem const p{batch, height, width, kFLEXIQ_FP32, kFLEXIQ_FP32, nullptr, nullptr, nullptr, nullptr};
    FlexiqBackend const b = flexiqRunnerLayerBackend(runner, hostArgs);
    if (tile != nullptr)
        *tile = hostArgs != nullptr ? flexiqRunnerSelectTile(runner, hostArgs, &p) : kFLEXIQ_TILE_AUTO;
    flexiqRunnerDestroy(runner);
    return b;
}

//! flexiqRunnerResolveBackend for a described device (no CUDA call) and `hostArgs` (whose pointers are only
//! tested for null and alignment): the backend a requested one becomes, e.g. INT8_PIPELINED without
//! weightEffective -> INT8_MMA. For CPU tests of the fallbacks.
FLEXIQ_CAPI int32_t flexiqCapiResolveBackend(
    int32_t smMajor, int32_t smMinor, int32_t requested, FlexiqLayerArgs const* hostArgs)
{
    FlexiqRunner* runner = flexiqRunnerCreate(smMajor, smMinor, 1);
    if (runner == nullptr)
        return -1;
    FlexiqBackend const b = flexiqRunnerResolveBackend(runner, static_cast<FlexiqBackend>(requested), hostArgs);
    flexiqRunnerDestroy(runner);
    return b;
}

namespace
{
size_t elementBytes(int32_t type)
{
    return type == kFLEXIQ_FP16 ? 2 : (type == kFLEXIQ_INT8 || type == kFLEXIQ_INT8_WORKSPACE ? 1 : 4);
}
} // namespace

//! Runs one layer (tileConfig: a FlexiqTileConfig, -1 = the runner's choice). `hostArgs` holds HOST
//! pointers; input and output are NCHW (gemm [M, C]/[M, N]) of `inputType` / `outputType` (a
//! FlexiqDataType: FP32, FP16 or INT8 codes), or flat workspace-edge images (kFLEXIQ_INT8_WORKSPACE,
//! flexiqEdgeImage.h; an output image starts as the bytes `hostOutput` holds, so untouched bytes compare
//! too). hostArgs->readerStaticShift / weightStepWide / weightEffective are uploaded when set (without
//! weightEffective INT8_PIPELINED runs as INT8_MMA, flexiqRunnerResolveBackend). `hostAcc` (nullable) receives
//! the int32 accumulators.
//! With iterations > 1 the enqueue is repeated and the mean time per call (ms, CUDA events) goes to
//! `msPerCall`. Returns a FlexiqStatus (plus 100 + cudaError_t for allocation/copy failures) and a reason.
FLEXIQ_CAPI int32_t flexiqCapiRunLayerIo(int32_t backend, int32_t tileConfig, FlexiqLayerArgs const* hostArgs,
    int32_t batch, int32_t height, int32_t width, int32_t inputType, int32_t outputType, void const* hostInput,
    int32_t const* hostMax4bit, int32_t numLayers, void* hostOutput, int32_t* hostAcc, int32_t iterations,
    float* msPerCall, char* why, size_t whyLen)
{
    FlexiqLayerArgs const& h = *hostArgs;
    char reason[256] = {};
    if (!flexiq::checkLayerArgs(h, reason, sizeof(reason)))
        return report(why, whyLen, kFLEXIQ_ERROR_INVALID_ARGS, reason);
    size_t const n = static_cast<size_t>(h.outChannels);
    size_t const k = static_cast<size_t>(flexiq::reductionLength(h));
    size_t const groups = static_cast<size_t>(h.paddedChannels / h.groupSize);
    int32_t outH = 0;
    int32_t outW = 0;
    flexiq::outputSize(flexiq::layerGeometry(h), height, width, &outH, &outW);
    size_t const inElem = elementBytes(inputType);
    size_t const outElem = elementBytes(outputType);
    size_t const rowsIn = static_cast<size_t>(batch) * height * width;
    size_t const rowsOut = static_cast<size_t>(batch) * (outH > 0 ? outH : 0) * (outW > 0 ? outW : 0);
    size_t const outCount = rowsOut * n;
    bool const edgeOut = outputType == kFLEXIQ_INT8_WORKSPACE;
    if (edgeOut && h.readerGroupSize != 32 && h.readerGroupSize != 64)
        return report(why, whyLen, kFLEXIQ_ERROR_INVALID_ARGS, "a workspace-edge output needs readerGroupSize 32 or 64");
    size_t const inBytes = inputType == kFLEXIQ_INT8_WORKSPACE
        ? rowsIn * static_cast<size_t>(flexiq::edgeBytesPerRow(h.paddedChannels, h.groupSize))
        : rowsIn * h.inChannels * inElem;
    int32_t const readerCPad = edgeOut ? flexiq::edgePaddedChannels(h.outChannels, h.readerGroupSize) : 0;
    size_t const outBytes = edgeOut
        ? rowsOut * static_cast<size_t>(flexiq::edgeBytesPerRow(readerCPad, h.readerGroupSize))
        : outCount * outElem;

    DeviceBuffers dev;
    cudaError_t e = cudaSuccess;
    FlexiqLayerArgs d = h;
    d.permutation = dev.upload<int32_t const>(h.permutation, h.paddedChannels * sizeof(int32_t), &e);
    d.weightInt8 = dev.upload<int8_t const>(h.weightInt8, n * k, &e);
    d.weightInt4 = dev.upload<int8_t const>(h.weightInt4, n * k / 2, &e);
    d.weightStep = dev.upload<int8_t const>(h.weightStep, groups, &e);
    d.outScale = dev.upload<float const>(h.outScale, n * sizeof(float), &e);
    d.bias = dev.upload<float const>(h.bias, (groups + 1) * n * sizeof(float), &e); // [G_count + 1, N] rungs
    d.actStaticShift = dev.upload<int8_t const>(h.actStaticShift, groups, &e);
    if (h.readerStaticShift != nullptr && edgeOut)
        d.readerStaticShift = dev.upload<int8_t const>(h.readerStaticShift, readerCPad / h.readerGroupSize, &e);
    if (h.weightStepWide != nullptr)
        d.weightStepWide = dev.upload<int32_t const>(h.weightStepWide, groups * sizeof(int32_t), &e);
    if (h.weightEffective != nullptr)
        d.weightEffective = dev.upload<int8_t const>(h.weightEffective, n * k, &e);
    FlexiqProblem p{batch, height, width, inputType, outputType, nullptr, nullptr, nullptr, nullptr};
    p.input = dev.upload<void const>(hostInput, inBytes, &e);
    p.output = dev.upload<void>(edgeOut ? hostOutput : nullptr, outBytes, &e);
    p.max4bit = hostMax4bit != nullptr
        ? dev.upload<int32_t const>(hostMax4bit, static_cast<size_t>(numLayers) * sizeof(int32_t), &e) : nullptr;
    p.accOut = hostAcc != nullptr ? dev.upload<int32_t>(nullptr, outCount * sizeof(int32_t), &e) : nullptr;
    size_t const wsSize = flexiqGetWorkspaceSize(&d, &p);
    void* ws = dev.upload<void>(nullptr, wsSize, &e);
    if (e != cudaSuccess)
        return report(why, whyLen, 100 + static_cast<int32_t>(e), cudaGetErrorString(e));

    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    bool const timed = iterations > 1 && msPerCall != nullptr;
    if (timed)
    {
        cudaEventCreate(&start);
        cudaEventCreate(&stop);
        enqueueWithTile(backend, tileConfig, &d, &p, ws, wsSize); // warm-up
        cudaEventRecord(start, nullptr);
    }
    int32_t status = kFLEXIQ_SUCCESS;
    for (int32_t it = 0; it < (iterations > 1 ? iterations : 1) && status == kFLEXIQ_SUCCESS; ++it)
        status = enqueueWithTile(backend, tileConfig, &d, &p, ws, wsSize);
    if (timed)
    {
        cudaEventRecord(stop, nullptr);
        cudaEventSynchronize(stop);
        float ms = 0.0f;
        cudaEventElapsedTime(&ms, start, stop);
        *msPerCall = ms / static_cast<float>(iterations);
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    }
    if (status != kFLEXIQ_SUCCESS)
    {
        char const* what = status == kFLEXIQ_ERROR_CUDA ? cudaGetErrorString(flexiqLastCudaError())
                                                        : "flexiqEnqueue rejected the call";
        return report(why, whyLen, status, what);
    }
    e = cudaDeviceSynchronize();
    if (e == cudaSuccess)
        e = cudaMemcpy(hostOutput, p.output, outBytes, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess && hostAcc != nullptr)
        e = cudaMemcpy(hostAcc, p.accOut, outCount * sizeof(int32_t), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        return report(why, whyLen, 100 + static_cast<int32_t>(e), cudaGetErrorString(e));
    return kFLEXIQ_SUCCESS;
}

//! flexiqCapiRunLayerIo with the output of the input's type (FP32 or FP16).
FLEXIQ_CAPI int32_t flexiqCapiRunLayerTile(int32_t backend, int32_t tileConfig, FlexiqLayerArgs const* hostArgs,
    int32_t batch, int32_t height, int32_t width, int32_t dataType, void const* hostInput, int32_t const* hostMax4bit,
    int32_t numLayers, void* hostOutput, int32_t* hostAcc, int32_t iterations, float* msPerCall, char* why,
    size_t whyLen)
{
    return flexiqCapiRunLayerIo(backend, tileConfig, hostArgs, batch, height, width, dataType, dataType, hostInput,
        hostMax4bit, numLayers, hostOutput, hostAcc, iterations, msPerCall, why, whyLen);
}

//! flexiqCapiRunLayerTile with the tile chosen by the runner (the original entry point).
FLEXIQ_CAPI int32_t flexiqCapiRunLayer(int32_t backend, FlexiqLayerArgs const* hostArgs, int32_t batch,
    int32_t height, int32_t width, int32_t dataType, void const* hostInput, int32_t const* hostMax4bit,
    int32_t numLayers, void* hostOutput, int32_t* hostAcc, int32_t iterations, float* msPerCall, char* why,
    size_t whyLen)
{
    return flexiqCapiRunLayerTile(backend, kFLEXIQ_TILE_AUTO, hostArgs, batch, height, width, dataType, hostInput,
        hostMax4bit, numLayers, hostOutput, hostAcc, iterations, msPerCall, why, whyLen);
}
