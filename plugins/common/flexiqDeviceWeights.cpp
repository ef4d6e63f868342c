/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqDeviceWeights.h"

#include "flexiqCheck.h"
#include "flexiqShape.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>

namespace flexiq
{
namespace
{
constexpr size_t kALIGN = 256;

size_t alignUp(size_t v)
{
    return (v + kALIGN - 1) / kALIGN * kALIGN;
}

void checkCuda(cudaError_t e, LayerConfig const& cfg, char const* what)
{
    FLEXIQ_VALIDATE(e == cudaSuccess, cfg.where() << ": " << what << " failed: " << cudaGetErrorString(e));
}

//! Packs host arrays into one host staging buffer with aligned offsets.
class Staging
{
public:
    template <typename T>
    size_t add(std::vector<T> const& v)
    {
        size_t const offset = mBytes.size();
        auto const* src = reinterpret_cast<uint8_t const*>(v.data());
        mBytes.insert(mBytes.end(), src, src + v.size() * sizeof(T));
        mBytes.resize(alignUp(mBytes.size()), 0);
        return offset;
    }

    std::vector<uint8_t> const& bytes() const
    {
        return mBytes;
    }

private:
    std::vector<uint8_t> mBytes;
};
} // namespace

DeviceSelection selectDeviceBackend(LayerConfig const& cfg)
{
    DeviceSelection sel;
    int device = 0;
    int major = 0;
    int minor = 0;
    checkCuda(cudaGetDevice(&device), cfg, "cudaGetDevice");
    checkCuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cfg, "cudaDeviceGetAttribute");
    checkCuda(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cfg, "cudaDeviceGetAttribute");
    sel.device = device;
    sel.smMajor = major;
    sel.smMinor = minor;
    sel.backend = flexiqSelectLayerBackend(major, minor, cfg.groupSize);
    FLEXIQ_VALIDATE(sel.backend != kFLEXIQ_BACKEND_AUTO,
        cfg.where() << ": GPU sm_" << major << minor
                    << " is not supported: FlexiQ kernels need sm_80 or newer (int8/int4 mma.sync m16n8k32)");
    logVerbose(cfg.where() + ": device " + std::to_string(device) + " sm_" + std::to_string(major)
        + std::to_string(minor) + ", G = " + std::to_string(cfg.groupSize) + " -> backend " + backendName(sel.backend));
    return sel;
}

char const* backendName(FlexiqBackend backend)
{
    switch (backend)
    {
    case kFLEXIQ_BACKEND_AUTO: return "AUTO";
    case kFLEXIQ_BACKEND_INT4_MMA: return "INT4_MMA";
    case kFLEXIQ_BACKEND_INT8_MMA: return "INT8_MMA (4-bit groups as effective int8 codes)";
    case kFLEXIQ_BACKEND_REFERENCE: return "REFERENCE";
    case kFLEXIQ_BACKEND_INT4_PIPELINED: return "INT4_PIPELINED";
    case kFLEXIQ_BACKEND_INT8_PIPELINED: return "INT8_PIPELINED (4-bit groups as effective int8 weights)";
    }
    return "unknown backend";
}

namespace
{
bool int8Backend(FlexiqBackend backend)
{
    return backend == kFLEXIQ_BACKEND_INT8_PIPELINED || backend == kFLEXIQ_BACKEND_INT8_MMA;
}

//! The int8 backends' effective weights w4 * step_w [N, K] (flexiq::makeEffectiveWeights, the contract's
//! effectiveWeight) from the layer's host arrays.
std::vector<int8_t> effectiveWeightsOf(LayerConfig const& cfg)
{
    FlexiqLayerArgs const host = cfg.layerArgs(cfg.permutation.data(), cfg.weightInt8.data(), cfg.weightInt4.data(),
        cfg.weightStep.data(), nullptr, nullptr, nullptr);
    std::vector<int8_t> eff(cfg.weightInt8.size());
    makeEffectiveWeights(host, eff.data());
    return eff;
}
} // namespace

DeviceWeights::DeviceWeights(LayerConfig const& cfg, FlexiqBackend backend)
{
    std::vector<float> const outScale = cfg.outScale();
    Staging st;
    size_t const oPerm = st.add(cfg.permutation);
    size_t const oW8 = st.add(cfg.weightInt8);
    size_t const oW4 = st.add(cfg.weightInt4);
    size_t const oStep = st.add(cfg.weightStep);
    size_t const oScale = st.add(outScale);
    size_t const oBias = st.add(cfg.bias);
    size_t const oStatic = st.add(cfg.actStaticShift);
    size_t const oReaderStatic = st.add(cfg.readerActStaticShift);
    // step_w widened to int32 [C_pad/G] (the pipelined kernels copy a K-tile's step with a 4-byte cp.async):
    // weight-only data, made once here instead of by every input pass, and the only source of it for a
    // workspace-edge reader.
    size_t const oStepWide = st.add(std::vector<int32_t>(cfg.weightStep.begin(), cfg.weightStep.end()));
    // The int8 backends' effective weights [N, K] (N * K bytes: as much again as weight_int8), only where the
    // layer's backend is an int8 one (sm_90+, and sm_80 at G = 32: flexiqRunnerLayerBackend): the
    // INT8_PIPELINED kernel's 4-bit K-tiles copy them like 8-bit ones.
    bool const withEffective = int8Backend(backend);
    size_t const oEffective = withEffective ? st.add(effectiveWeightsOf(cfg)) : 0;
    int device = 0;
    checkCuda(cudaGetDevice(&device), cfg, "cudaGetDevice");
    mDevice = device;
    checkCuda(cudaMalloc(&mBlock, st.bytes().size()), cfg, "cudaMalloc of the layer weights");
    cudaError_t const e = cudaMemcpy(mBlock, st.bytes().data(), st.bytes().size(), cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
    {
        cudaFree(mBlock);
        mBlock = nullptr;
        checkCuda(e, cfg, "cudaMemcpy of the layer weights");
    }
    auto* base = static_cast<uint8_t*>(mBlock);
    mArgs = cfg.layerArgs(reinterpret_cast<int32_t const*>(base + oPerm), reinterpret_cast<int8_t const*>(base + oW8),
        reinterpret_cast<int8_t const*>(base + oW4), reinterpret_cast<int8_t const*>(base + oStep),
        reinterpret_cast<float const*>(base + oScale), reinterpret_cast<float const*>(base + oBias),
        reinterpret_cast<int8_t const*>(base + oStatic));
    mArgs.readerStaticShift = reinterpret_cast<int8_t const*>(base + oReaderStatic);
    mArgs.weightStepWide = reinterpret_cast<int32_t const*>(base + oStepWide);
    mArgs.weightEffective = withEffective ? reinterpret_cast<int8_t const*>(base + oEffective) : nullptr;
}

DeviceWeights::~DeviceWeights()
{
    if (mBlock != nullptr)
    {
        // May run after the context is torn down at process exit: the error is irrelevant then.
        static_cast<void>(cudaFree(mBlock));
    }
}

} // namespace flexiq
