/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * flexiq_infer: serve a FlexiQ TensorRT engine from C++ and switch the 4-bit ratio between runs.
 *
 *   flexiq_infer --engine model.engine --table model.flexiq.json --plugin build/plugins/libflexiq_plugins.so
 *
 * 1. The ratio table and the command line are checked first (host only, examples/cpp/flexiqRatioTable.h).
 * 2. The TensorRT runtime library is dlopen'ed: CI machines have the TensorRT headers but no TensorRT
 *    runtime, so the binary links only the CUDA runtime and finds `getPluginRegistry` and
 *    `createInferRuntime_INTERNAL` at run time (docs/cpp.md explains why not TensorRT-RTX's library).
 * 3. The plugin library is loaded through that runtime's registry (IPluginRegistry::loadLibrary, which
 *    calls the library's getCreators), then the engine is deserialized.
 * 4. Every input gets a device buffer; `flexiq_max_4bit_ch` gets a device int32 [L] buffer whose
 *    length must equal the table's L. One enqueueV3 warms up (the plugin uploads its weights), the
 *    next one is captured into a CUDA graph, and each ratio is one 4*L-byte host-to-device copy
 *    followed by graph replays; the graph itself never changes (docs/design.md §4).
 */
#include "flexiqInferErrors.h"
#include "flexiqInferOptions.h"
#include "flexiqRatioTable.h"

#include "NvInferRuntime.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace flexiq
{
namespace app
{
namespace
{
using nvinfer1::DataType;
using nvinfer1::Dims64;

//! Throws InputError with the failed CUDA call and its error string.
void cudaCheck(cudaError_t status, char const* call)
{
    if (status != cudaSuccess)
    {
        throw InputError(std::string("CUDA call failed: ") + call + ": " + cudaGetErrorName(status) + " ("
            + cudaGetErrorString(status) + ")");
    }
}
#define FLEXIQ_CUDA(call) cudaCheck((call), #call)

//! TensorRT's messages (warnings and errors; FLEXIQ_INFER_VERBOSE=1 for all) on stderr.
class StderrLogger : public nvinfer1::ILogger
{
public:
    void log(Severity severity, nvinfer1::AsciiChar const* msg) noexcept override
    {
        static bool const verbose = std::getenv("FLEXIQ_INFER_VERBOSE") != nullptr;
        if (severity <= Severity::kWARNING || verbose)
        {
            char const* tag = severity <= Severity::kERROR ? "error" : severity == Severity::kWARNING ? "warning" : "info";
            std::fprintf(stderr, "[TensorRT %s] %s\n", tag, msg);
        }
    }
};

//! The TensorRT runtime library, opened at run time (no link-time dependency on TensorRT).
class TrtLibrary
{
public:
    explicit TrtLibrary(std::string const& name)
    {
        mHandle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
        if (mHandle == nullptr)
        {
            char const* why = ::dlerror();
            throw InputError("cannot load the TensorRT runtime library '" + name + "' (" + (why ? why : "?")
                + "); install TensorRT " + std::to_string(NV_TENSORRT_MAJOR) + " or pass --trt-lib / FLEXIQ_TRT_LIB");
        }
        mGetRegistry = reinterpret_cast<GetRegistryFn>(symbol(name, "getPluginRegistry"));
        mCreateRuntime = reinterpret_cast<CreateRuntimeFn>(symbol(name, "createInferRuntime_INTERNAL"));
    }
    ~TrtLibrary()
    {
        // Kept loaded: TensorRT objects may still run static destructors that live in it.
    }
    TrtLibrary(TrtLibrary const&) = delete;
    TrtLibrary& operator=(TrtLibrary const&) = delete;

    nvinfer1::IPluginRegistry& registry() const
    {
        nvinfer1::IPluginRegistry* r = mGetRegistry();
        if (r == nullptr)
            throw InputError("getPluginRegistry() of the TensorRT runtime returned null");
        return *r;
    }

    std::unique_ptr<nvinfer1::IRuntime> createRuntime(nvinfer1::ILogger& logger) const
    {
        auto* rt = static_cast<nvinfer1::IRuntime*>(mCreateRuntime(&logger, NV_TENSORRT_VERSION));
        if (rt == nullptr)
        {
            throw InputError("createInferRuntime failed (the runtime library is not TensorRT "
                + std::to_string(NV_TENSORRT_MAJOR) + ".x, the version these headers describe?)");
        }
        return std::unique_ptr<nvinfer1::IRuntime>(rt);
    }

private:
    using GetRegistryFn = nvinfer1::IPluginRegistry* (*) ();
    using CreateRuntimeFn = void* (*) (void*, int32_t);

    void* symbol(std::string const& lib, char const* name) const
    {
        void* s = ::dlsym(mHandle, name);
        if (s == nullptr)
            throw InputError("'" + lib + "' has no symbol " + name + ": not a TensorRT runtime library");
        return s;
    }

    void* mHandle{nullptr};
    GetRegistryFn mGetRegistry{nullptr};
    CreateRuntimeFn mCreateRuntime{nullptr};
};

//! cudaMalloc'ed bytes, freed on scope exit.
struct DeviceBuffer
{
    void* ptr{nullptr};
    size_t bytes{0};
    explicit DeviceBuffer(size_t n)
        : bytes(n)
    {
        FLEXIQ_CUDA(cudaMalloc(&ptr, std::max<size_t>(n, 1)));
    }
    ~DeviceBuffer()
    {
        cudaFree(ptr);
    }
    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;
};

size_t elementSize(DataType t, std::string const& tensor)
{
    switch (t)
    {
    case DataType::kFLOAT:
    case DataType::kINT32: return 4;
    case DataType::kHALF:
    case DataType::kBF16: return 2;
    case DataType::kINT8:
    case DataType::kUINT8:
    case DataType::kBOOL:
    case DataType::kFP8: return 1;
    case DataType::kINT64: return 8;
    default: break;
    }
    throw InputError("tensor '" + tensor + "' has a data type this example does not allocate (sub-byte)");
}

std::string dimsText(Dims64 const& d)
{
    std::string s = "[";
    for (int32_t i = 0; i < d.nbDims; ++i)
        s += (i ? ", " : "") + std::to_string(d.d[i]);
    return s + "]";
}

int64_t volume(Dims64 const& d)
{
    int64_t v = 1;
    for (int32_t i = 0; i < d.nbDims; ++i)
        v *= d.d[i];
    return v;
}

//! Deterministic input bytes: floats in [0, 1), halves/bf16 in [1/32, 2), small integers.
std::vector<uint8_t> inputBytes(DataType t, int64_t count, uint32_t seed)
{
    size_t const es = elementSize(t, "input");
    std::vector<uint8_t> bytes(static_cast<size_t>(count) * es);
    uint32_t s = seed;
    auto next = [&s]() { s = s * 1664525U + 1013904223U; return s >> 8; };
    for (int64_t i = 0; i < count; ++i)
    {
        uint8_t* p = bytes.data() + i * es;
        if (t == DataType::kFLOAT)
        {
            float const f = static_cast<float>(next() % 65536) / 65536.0F;
            std::memcpy(p, &f, 4);
        }
        else if (t == DataType::kHALF)
        {
            uint16_t const h = static_cast<uint16_t>(((10U + next() % 5U) << 10) | (next() & 0x3FFU));
            std::memcpy(p, &h, 2);
        }
        else if (t == DataType::kBF16)
        {
            uint16_t const h = static_cast<uint16_t>(((122U + next() % 5U) << 7) | (next() & 0x7FU));
            std::memcpy(p, &h, 2);
        }
        else if (t == DataType::kINT8)
        {
            p[0] = static_cast<uint8_t>(static_cast<int8_t>(static_cast<int32_t>(next() % 17U) - 8));
        }
    }
    return bytes;
}

struct LatencyStats
{
    double meanMs{0.0}, p50Ms{0.0}, p99Ms{0.0}, throughputPerS{0.0};
};

//! Runs inference at every ratio and prints one row per ratio.
class InferenceSession
{
public:
    InferenceSession(Options const& options, RatioTable const& table)
        : mOptions(options)
        , mTable(table)
        , mLibrary(options.trtLibrary)
    {
        nvinfer1::IPluginRegistry& registry = mLibrary.registry();
        if (registry.loadLibrary(options.pluginPath.c_str()) == nullptr)
        {
            throw InputError(options.pluginPath + ": TensorRT could not load the plugin library (see the TensorRT "
                "log above; pass --plugin or FLEXIQ_PLUGIN_LIB)");
        }
        mRuntime = mLibrary.createRuntime(mLogger);
        std::vector<char> const blob = readEngineFile(options.enginePath);
        mEngine.reset(mRuntime->deserializeCudaEngine(blob.data(), blob.size()));
        if (!mEngine)
        {
            throw InputError(options.enginePath + ": TensorRT could not deserialize the engine (see the TensorRT log "
                "above: built by another TensorRT version or for another GPU?)");
        }
        mContext.reset(mEngine->createExecutionContext());
        if (!mContext)
            throw InputError(options.enginePath + ": createExecutionContext failed");
        FLEXIQ_CUDA(cudaStreamCreateWithFlags(&mStream, cudaStreamNonBlocking));
        bindTensors();
    }

    ~InferenceSession()
    {
        if (mGraphExec != nullptr)
            cudaGraphExecDestroy(mGraphExec);
        if (mGraph != nullptr)
            cudaGraphDestroy(mGraph);
        if (mPinnedN4 != nullptr)
            cudaFreeHost(mPinnedN4);
        if (mStream != nullptr)
            cudaStreamDestroy(mStream);
    }
    InferenceSession(InferenceSession const&) = delete;
    InferenceSession& operator=(InferenceSession const&) = delete;

    void run(std::vector<double> const& ratios)
    {
        int32_t const layers = mTable.numLayers();
        // Every ratio's vector sits in its own slice of pinned memory: a later ratio never overwrites
        // the source of a copy that may still be in flight.
        FLEXIQ_CUDA(cudaMallocHost(reinterpret_cast<void**>(&mPinnedN4),
            sizeof(int32_t) * static_cast<size_t>(layers) * std::max<size_t>(ratios.size(), 1)));
        for (size_t r = 0; r < ratios.size(); ++r)
        {
            std::vector<int32_t> const v = mTable.vector(ratios[r]);
            std::copy(v.begin(), v.end(), mPinnedN4 + r * static_cast<size_t>(layers));
        }
        switchTo(0);
        enqueue("warm-up enqueueV3"); // the plugin uploads its weights on its first enqueue
        FLEXIQ_CUDA(cudaStreamSynchronize(mStream));
        if (mOptions.useGraph)
            capture();

        std::printf("engine %s, table %s: L = %d, batch %" PRId64 ", %s, %d timed launches per ratio\n",
            mOptions.enginePath.c_str(), mTable.source().c_str(), layers, mBatch,
            mOptions.useGraph ? "CUDA graph replay" : "enqueueV3", mOptions.iterations);
        std::printf("%8s %9s %8s %10s %10s %10s %12s %10s %18s\n", "ratio", "achieved", "4bit_ch", "mean_ms", "p50_ms",
            "p99_ms", "samples/s", "switch_us", "output0_fnv1a");
        for (size_t r = 0; r < ratios.size(); ++r)
        {
            float const switchUs = switchTo(r);
            LatencyStats const s = measure();
            std::vector<int32_t> const v(mPinnedN4 + r * layers, mPinnedN4 + (r + 1) * layers);
            int64_t channels = 0;
            for (int32_t n : v)
                channels += n;
            std::printf("%8.4f %9.4f %8" PRId64 " %10.4f %10.4f %10.4f %12.1f %10.2f %18s\n", ratios[r],
                mTable.achievedRatio(v), channels, s.meanMs, s.p50Ms, s.p99Ms, s.throughputPerS, switchUs,
                outputDigest().c_str());
        }
    }

private:
    void bindTensors()
    {
        int32_t const n = mEngine->getNbIOTensors();
        bool haveN4 = false;
        for (int32_t i = 0; i < n; ++i)
        {
            char const* name = mEngine->getIOTensorName(i);
            if (mEngine->getTensorIOMode(name) != nvinfer1::TensorIOMode::kINPUT)
                continue;
            Dims64 shape = mEngine->getTensorShape(name);
            DataType const type = mEngine->getTensorDataType(name);
            if (std::strcmp(name, "flexiq_max_4bit_ch") == 0)
            {
                if (type != DataType::kINT32 || shape.nbDims != 1 || shape.d[0] != mTable.numLayers())
                {
                    throw InputError(mOptions.enginePath + ": input 'flexiq_max_4bit_ch' is " + dimsText(shape)
                        + (type == DataType::kINT32 ? " int32" : " (not int32)") + " but the ratio table "
                        + mTable.source() + " has L = " + std::to_string(mTable.numLayers())
                        + " layers (L mismatch: engine and table come from different conversions?)");
                }
                mN4 = std::make_unique<DeviceBuffer>(sizeof(int32_t) * static_cast<size_t>(mTable.numLayers()));
                check(mContext->setTensorAddress(name, mN4->ptr), "setTensorAddress(flexiq_max_4bit_ch)");
                haveN4 = true;
                continue;
            }
            bool dynamic = false;
            for (int32_t d = 0; d < shape.nbDims; ++d)
                dynamic = dynamic || shape.d[d] < 0;
            if (dynamic)
            {
                Dims64 const opt = mEngine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kOPT);
                Dims64 const lo = mEngine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN);
                Dims64 const hi = mEngine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX);
                Dims64 const declared = shape;
                shape = opt;
                if (mOptions.batch > 0 && declared.nbDims > 0 && declared.d[0] < 0)
                {
                    if (mOptions.batch < lo.d[0] || mOptions.batch > hi.d[0])
                    {
                        throw UsageError("--batch " + std::to_string(mOptions.batch) + " is outside the engine's profile ["
                            + std::to_string(lo.d[0]) + ", " + std::to_string(hi.d[0]) + "] for input '" + name + "'");
                    }
                    shape.d[0] = mOptions.batch;
                }
                check(mContext->setInputShape(name, shape), std::string("setInputShape(") + name + ")");
            }
            mBatch = shape.nbDims > 0 ? shape.d[0] : 1;
            int64_t const count = volume(shape);
            mBuffers.push_back(std::make_unique<DeviceBuffer>(static_cast<size_t>(count) * elementSize(type, name)));
            std::vector<uint8_t> const bytes = inputBytes(type, count, 12345U + static_cast<uint32_t>(i));
            FLEXIQ_CUDA(cudaMemcpy(mBuffers.back()->ptr, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
            check(mContext->setTensorAddress(name, mBuffers.back()->ptr), std::string("setTensorAddress(") + name + ")");
        }
        if (!haveN4)
        {
            throw InputError(mOptions.enginePath + ": the engine has no input 'flexiq_max_4bit_ch' (not built from a "
                "<stem>.flexiq.onnx?)");
        }
        for (int32_t i = 0; i < n; ++i)
        {
            char const* name = mEngine->getIOTensorName(i);
            if (mEngine->getTensorIOMode(name) != nvinfer1::TensorIOMode::kOUTPUT)
                continue;
            Dims64 const shape = mContext->getTensorShape(name);
            if (volume(shape) < 0)
                throw InputError(mOptions.enginePath + ": output '" + name + "' has unresolved shape " + dimsText(shape));
            mBuffers.push_back(std::make_unique<DeviceBuffer>(
                static_cast<size_t>(volume(shape)) * elementSize(mEngine->getTensorDataType(name), name)));
            check(mContext->setTensorAddress(name, mBuffers.back()->ptr), std::string("setTensorAddress(") + name + ")");
            if (mFirstOutput == nullptr)
                mFirstOutput = mBuffers.back().get();
        }
        if (!mContext->allInputDimensionsSpecified())
            throw InputError(mOptions.enginePath + ": some input shapes are still unspecified");
    }

    void check(bool ok, std::string const& what) const
    {
        if (!ok)
            throw InputError(mOptions.enginePath + ": " + what + " failed (see the TensorRT log above)");
    }

    void enqueue(char const* what)
    {
        check(mContext->enqueueV3(mStream), what);
    }

    void capture()
    {
        FLEXIQ_CUDA(cudaStreamBeginCapture(mStream, cudaStreamCaptureModeThreadLocal));
        bool const ok = mContext->enqueueV3(mStream);
        cudaError_t const end = cudaStreamEndCapture(mStream, &mGraph);
        check(ok, "enqueueV3 under CUDA-graph capture");
        cudaCheck(end, "cudaStreamEndCapture");
        FLEXIQ_CUDA(cudaGraphInstantiate(&mGraphExec, mGraph, 0));
    }

    void launch()
    {
        if (mGraphExec != nullptr)
            FLEXIQ_CUDA(cudaGraphLaunch(mGraphExec, mStream));
        else
            enqueue("enqueueV3");
    }

    //! The ratio switch: one 4*L-byte host-to-device copy; returns its time in microseconds.
    float switchTo(size_t r)
    {
        size_t const bytes = sizeof(int32_t) * static_cast<size_t>(mTable.numLayers());
        cudaEvent_t a{}, b{};
        FLEXIQ_CUDA(cudaEventCreate(&a));
        FLEXIQ_CUDA(cudaEventCreate(&b));
        FLEXIQ_CUDA(cudaEventRecord(a, mStream));
        FLEXIQ_CUDA(cudaMemcpyAsync(mN4->ptr, mPinnedN4 + r * static_cast<size_t>(mTable.numLayers()), bytes,
            cudaMemcpyHostToDevice, mStream));
        FLEXIQ_CUDA(cudaEventRecord(b, mStream));
        FLEXIQ_CUDA(cudaEventSynchronize(b));
        float ms = 0.0F;
        FLEXIQ_CUDA(cudaEventElapsedTime(&ms, a, b));
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        return ms * 1000.0F;
    }

    LatencyStats measure()
    {
        for (int32_t i = 0; i < mOptions.warmup; ++i)
            launch();
        FLEXIQ_CUDA(cudaStreamSynchronize(mStream));
        cudaEvent_t a{}, b{};
        FLEXIQ_CUDA(cudaEventCreate(&a));
        FLEXIQ_CUDA(cudaEventCreate(&b));
        std::vector<float> ms(static_cast<size_t>(mOptions.iterations));
        for (auto& t : ms) // latency: one launch at a time
        {
            FLEXIQ_CUDA(cudaEventRecord(a, mStream));
            launch();
            FLEXIQ_CUDA(cudaEventRecord(b, mStream));
            FLEXIQ_CUDA(cudaEventSynchronize(b));
            FLEXIQ_CUDA(cudaEventElapsedTime(&t, a, b));
        }
        FLEXIQ_CUDA(cudaEventRecord(a, mStream)); // throughput: back-to-back launches
        for (int32_t i = 0; i < mOptions.iterations; ++i)
            launch();
        FLEXIQ_CUDA(cudaEventRecord(b, mStream));
        FLEXIQ_CUDA(cudaEventSynchronize(b));
        float total = 0.0F;
        FLEXIQ_CUDA(cudaEventElapsedTime(&total, a, b));
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        LatencyStats s;
        double sum = 0.0;
        for (float t : ms)
            sum += t;
        s.meanMs = sum / static_cast<double>(ms.size());
        std::sort(ms.begin(), ms.end());
        s.p50Ms = ms[ms.size() / 2];
        s.p99Ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
        s.throughputPerS = total > 0.0F ? 1000.0 * static_cast<double>(mOptions.iterations * mBatch) / total : 0.0;
        return s;
    }

    //! FNV-1a of the first output's bytes: shows that the ratio changes the result.
    std::string outputDigest()
    {
        if (mFirstOutput == nullptr)
            return "-";
        std::vector<uint8_t> host(mFirstOutput->bytes);
        FLEXIQ_CUDA(cudaMemcpyAsync(host.data(), mFirstOutput->ptr, host.size(), cudaMemcpyDeviceToHost, mStream));
        FLEXIQ_CUDA(cudaStreamSynchronize(mStream));
        uint64_t h = 1469598103934665603ULL;
        for (uint8_t c : host)
            h = (h ^ c) * 1099511628211ULL;
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%016" PRIx64, h);
        return buf;
    }

    Options const& mOptions;
    RatioTable const& mTable;
    StderrLogger mLogger;
    TrtLibrary mLibrary;
    std::unique_ptr<nvinfer1::IRuntime> mRuntime;
    std::unique_ptr<nvinfer1::ICudaEngine> mEngine;
    std::unique_ptr<nvinfer1::IExecutionContext> mContext;
    std::vector<std::unique_ptr<DeviceBuffer>> mBuffers;
    std::unique_ptr<DeviceBuffer> mN4;
    DeviceBuffer const* mFirstOutput{nullptr};
    int32_t* mPinnedN4{nullptr};
    cudaStream_t mStream{nullptr};
    cudaGraph_t mGraph{nullptr};
    cudaGraphExec_t mGraphExec{nullptr};
    int64_t mBatch{1};
};

void printVectors(RatioTable const& table, std::vector<double> const& ratios)
{
    for (double r : ratios)
    {
        std::vector<int32_t> const v = table.vector(r);
        std::printf("%.17g", r);
        for (int32_t n : v)
            std::printf(" %d", n);
        std::printf("\n");
    }
}

int run(int argc, char** argv)
{
    std::vector<std::string> const args(argv + 1, argv + argc);
    Options const options = parseArgs(args, std::getenv("FLEXIQ_PLUGIN_LIB"), std::getenv("FLEXIQ_TRT_LIB"));
    if (options.help)
    {
        std::fputs(usage(argv[0]).c_str(), stdout);
        return kEXIT_OK;
    }
    RatioTable const table = RatioTable::fromFile(options.tablePath);
    std::vector<double> const ratios = options.ratios.empty() ? table.ladder() : options.ratios;
    if (ratios.empty())
        throw InputError(options.tablePath + ": field 'ladder' is empty and no --ratios were given");
    if (options.printVectors)
    {
        printVectors(table, ratios);
        return kEXIT_OK;
    }
    checkEngineFile(options.enginePath); // a missing engine is reported before TensorRT is looked for
    InferenceSession session(options, table);
    session.run(ratios);
    return kEXIT_OK;
}

} // namespace
} // namespace app
} // namespace flexiq

int main(int argc, char** argv)
{
    using namespace flexiq::app;
    try
    {
        return run(argc, argv);
    }
    catch (UsageError const& e)
    {
        std::fprintf(stderr, "flexiq_infer: error: %s\n(run %s --help for the options)\n", e.what(), argv[0]);
        return kEXIT_USAGE;
    }
    catch (std::exception const& e)
    {
        std::fprintf(stderr, "flexiq_infer: error: %s\n", e.what());
        return kEXIT_FAILURE;
    }
}
