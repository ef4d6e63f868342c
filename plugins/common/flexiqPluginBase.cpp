/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Shared IPluginV3 implementation of the FlexiQ plugins (see flexiqPluginBase.h).
 */
#include "flexiqPluginBase.h"

#include "flexiqCheck.h"
#include "flexiqKernels.h"
#include "flexiqLogger.h"

namespace flexiq
{
namespace
{
using nvinfer1::DataType;
using nvinfer1::Dims;
using nvinfer1::TensorFormat;

bool isActivationType(DataType t)
{
    return t == DataType::kFLOAT || t == DataType::kHALF;
}

char const* dataTypeName(DataType t)
{
    switch (t)
    {
    case DataType::kFLOAT: return "FP32";
    case DataType::kHALF: return "FP16";
    case DataType::kINT32: return "INT32";
    case DataType::kINT8: return "INT8";
    case DataType::kINT64: return "INT64";
    case DataType::kBOOL: return "BOOL";
    default: return "another type";
    }
}

char const* statusName(FlexiqStatus s)
{
    switch (s)
    {
    case kFLEXIQ_SUCCESS: return "success";
    case kFLEXIQ_ERROR_INVALID_ARGS: return "invalid arguments";
    case kFLEXIQ_ERROR_UNSUPPORTED_SM: return "unsupported GPU (need sm_80 or newer)";
    case kFLEXIQ_ERROR_WORKSPACE: return "workspace missing or too small";
    case kFLEXIQ_ERROR_CUDA: return "CUDA error";
    case kFLEXIQ_ERROR_BACKEND: return "backend not compiled for this device";
    }
    return "unknown status";
}
} // namespace

std::shared_ptr<DeviceWeights const> DeviceWeightCache::get(LayerConfig const& cfg, int32_t device, FlexiqBackend backend)
{
    std::lock_guard<std::mutex> lock(mMutex);
    auto& slot = mByDevice[device];
    if (!slot)
    {
        slot = std::make_shared<DeviceWeights const>(cfg, backend);
        logVerbose(cfg.where() + ": weights uploaded to device " + std::to_string(device));
    }
    return slot;
}

FlexiqPluginBase::FlexiqPluginBase(std::shared_ptr<LayerConfig const> cfg)
    : mCfg(std::move(cfg))
    , mDeviceCache(std::make_shared<DeviceWeightCache>())
{
}

FlexiqPluginBase::FlexiqPluginBase(FlexiqPluginBase const& other)
    : IPluginV3(other)
    , IPluginV3OneCore(other)
    , IPluginV3OneBuild(other)
    , IPluginV3OneRuntime(other)
    , mCfg(other.mCfg)
    , mDeviceCache(other.mDeviceCache)
    , mSelection(other.mSelection)
    , mRunner(other.mRunner)
    , mWeights(other.mWeights)
{
}

nvinfer1::IPluginCapability* FlexiqPluginBase::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

nvinfer1::IPluginV3* FlexiqPluginBase::clone() noexcept
{
    FLEXIQ_TRY
    {
        return cloneDerived();
    }
    FLEXIQ_CATCH_RETURN("clone", nullptr)
}

char const* FlexiqPluginBase::getPluginName() const noexcept
{
    return mCfg->opName();
}

char const* FlexiqPluginBase::getPluginVersion() const noexcept
{
    return kFLEXIQ_PLUGIN_VERSION;
}

char const* FlexiqPluginBase::getPluginNamespace() const noexcept
{
    return kFLEXIQ_PLUGIN_NAMESPACE;
}

int32_t FlexiqPluginBase::getNbOutputs() const noexcept
{
    return kNB_OUTPUTS;
}

int32_t FlexiqPluginBase::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    FLEXIQ_TRY
    {
        FLEXIQ_VALIDATE(nbInputs == kNB_INPUTS && nbOutputs == kNB_OUTPUTS,
            mCfg->where() << ": expects 2 inputs (x, " << kFLEXIQ_RUNTIME_INPUT << ") and 1 output, got " << nbInputs
                          << " and " << nbOutputs);
        checkInputType(inputTypes[kINPUT_X]);
        FLEXIQ_VALIDATE(inputTypes[kINPUT_MAX4BIT] == DataType::kINT32,
            mCfg->where() << ": input " << kFLEXIQ_RUNTIME_INPUT << " is " << dataTypeName(inputTypes[kINPUT_MAX4BIT])
                          << ", expected INT32");
        outputTypes[0] = outputTypeFor(inputTypes[kINPUT_X]);
        return 0;
    }
    FLEXIQ_CATCH_RETURN("getOutputDataTypes", -1)
}

int32_t FlexiqPluginBase::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
    nvinfer1::DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, nvinfer1::DimsExprs* outputs,
    int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    FLEXIQ_TRY
    {
        FLEXIQ_VALIDATE(nbInputs == kNB_INPUTS && nbOutputs == kNB_OUTPUTS,
            mCfg->where() << ": expects 2 inputs and 1 output, got " << nbInputs << " and " << nbOutputs);
        FLEXIQ_VALIDATE(inputs[kINPUT_MAX4BIT].nbDims == 1,
            mCfg->where() << ": input " << kFLEXIQ_RUNTIME_INPUT << " must have shape [L], got rank "
                          << inputs[kINPUT_MAX4BIT].nbDims);
        outputShape(inputs[kINPUT_X], outputs[0], exprBuilder);
        return 0;
    }
    FLEXIQ_CATCH_RETURN("getOutputShapes", -1)
}

bool FlexiqPluginBase::supportsFormatCombination(
    int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != kNB_INPUTS || nbOutputs != kNB_OUTPUTS || pos < 0
        || pos >= nbInputs + nbOutputs)
    {
        return false;
    }
    nvinfer1::PluginTensorDesc const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    switch (pos)
    {
    case kINPUT_X: return mCfg->inputInt8 ? d.type == DataType::kINT8 : isActivationType(d.type);
    case kINPUT_MAX4BIT: return d.type == DataType::kINT32;
    default: return d.type == outputTypeFor(inOut[kINPUT_X].desc.type);
    }
}

DataType FlexiqPluginBase::outputTypeFor(DataType inputType) const noexcept
{
    if (mCfg->outputInt8)
        return DataType::kINT8; // the consumers' codes (an INT8 edge, docs/design.md §2.3)
    return mCfg->inputInt8 ? DataType::kFLOAT : inputType;
}

void FlexiqPluginBase::checkInputType(DataType type) const
{
    if (mCfg->inputInt8)
    {
        FLEXIQ_VALIDATE(type == DataType::kINT8,
            mCfg->where() << ": input x is " << dataTypeName(type) << ", but plugin field 'input_int8' = "
                          << mCfg->inputInt8
                          << (mCfg->inputWorkspace() ? " expects an INT8 workspace edge (the image of this layer's input pass)"
                                                     : " expects an INT8 tensor of the layer's activation codes"));
    }
    else
    {
        FLEXIQ_VALIDATE(isActivationType(type),
            mCfg->where() << ": input x is " << dataTypeName(type) << ", expected FP32 or FP16"
                          << (type == DataType::kINT8 ? " (plugin field 'input_int8' = 0; INT8 codes need input_int8 = 1)"
                                                      : ""));
    }
}

void FlexiqPluginBase::checkOutputType(DataType inputType, DataType outputType) const
{
    DataType const want = outputTypeFor(inputType);
    FLEXIQ_VALIDATE(outputType == want,
        mCfg->where() << ": output is " << dataTypeName(outputType) << ", expected " << dataTypeName(want)
                      << " (plugin fields 'output_int8' = " << mCfg->outputInt8 << ", 'input_int8' = "
                      << mCfg->inputInt8 << ", input x " << dataTypeName(inputType) << ")");
}

void FlexiqPluginBase::checkMax4bitDims(Dims const& d) const
{
    FLEXIQ_VALIDATE(d.nbDims == 1,
        mCfg->where() << ": input " << kFLEXIQ_RUNTIME_INPUT << " must have shape [L], got rank " << d.nbDims);
    FLEXIQ_VALIDATE(d.d[0] < 0 || mCfg->layerIndex < d.d[0],
        mCfg->where() << ": plugin field 'layer_index' = " << mCfg->layerIndex << " is outside "
                      << kFLEXIQ_RUNTIME_INPUT << " of length " << d.d[0]);
}

int32_t FlexiqPluginBase::configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    FLEXIQ_TRY
    {
        FLEXIQ_VALIDATE(nbInputs == kNB_INPUTS && nbOutputs == kNB_OUTPUTS,
            mCfg->where() << ": expects 2 inputs and 1 output, got " << nbInputs << " and " << nbOutputs);
        checkInputType(in[kINPUT_X].desc.type);
        checkOutputType(in[kINPUT_X].desc.type, out[0].desc.type);
        checkInputDims(in[kINPUT_X].desc.dims);
        checkInputDims(in[kINPUT_X].max);
        checkMax4bitDims(in[kINPUT_MAX4BIT].desc.dims);
        checkMax4bitDims(in[kINPUT_MAX4BIT].min);
        return 0;
    }
    FLEXIQ_CATCH_RETURN("configurePlugin", -1)
}

FlexiqProblem FlexiqPluginBase::problemFor(Dims const& x, DataType type) const
{
    checkInputDims(x);
    checkInputType(type);
    auto const kernelType = [](DataType t, bool workspace) {
        if (t == DataType::kINT8)
            return workspace ? kFLEXIQ_INT8_WORKSPACE : kFLEXIQ_INT8; // an image of an input pass, or codes
        return t == DataType::kHALF ? kFLEXIQ_FP16 : kFLEXIQ_FP32;
    };
    FlexiqProblem p{};
    problemDims(x, p);
    p.dataType = kernelType(type, mCfg->inputWorkspace());
    p.outputType = kernelType(outputTypeFor(type), mCfg->outputWorkspace());
    return p;
}

size_t FlexiqPluginBase::getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    nvinfer1::DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    FLEXIQ_TRY
    {
        FLEXIQ_VALIDATE(nbInputs == kNB_INPUTS, mCfg->where() << ": expects 2 inputs, got " << nbInputs);
        // Sized for the profile's largest shape; independent of n4 and of the backend.
        FlexiqProblem const p = problemFor(inputs[kINPUT_X].max, inputs[kINPUT_X].desc.type);
        FlexiqLayerArgs const args = mCfg->layerArgs(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
        return flexiqGetWorkspaceSize(&args, &p);
    }
    FLEXIQ_CATCH_RETURN("getWorkspaceSize", 0)
}

int32_t FlexiqPluginBase::onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
    nvinfer1::PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept
{
    FLEXIQ_TRY
    {
        FLEXIQ_VALIDATE(nbInputs == kNB_INPUTS && nbOutputs == kNB_OUTPUTS,
            mCfg->where() << ": expects 2 inputs and 1 output, got " << nbInputs << " and " << nbOutputs);
        static_cast<void>(problemFor(in[kINPUT_X].dims, in[kINPUT_X].type));
        checkMax4bitDims(in[kINPUT_MAX4BIT].dims);
        return 0;
    }
    FLEXIQ_CATCH_RETURN("onShapeChange", -1)
}

void FlexiqPluginBase::prepareDevice()
{
    int device = -1;
    cudaError_t const e = cudaGetDevice(&device);
    FLEXIQ_VALIDATE(e == cudaSuccess, mCfg->where() << ": cudaGetDevice failed: " << cudaGetErrorString(e));
    if (mWeights && mRunner != nullptr && mSelection.device == device)
    {
        return;
    }
    // The kernels' per-device runner (made once per device for the process, flexiqKernels.h): it
    // holds the compute capability, SM count and backend, so enqueue queries nothing.
    FlexiqRunner const* runner = nullptr;
    FlexiqStatus const s = flexiqRunnerForDevice(device, &runner);
    FLEXIQ_VALIDATE(s == kFLEXIQ_SUCCESS,
        mCfg->where() << ": preparing the FlexiQ kernels on CUDA device " << device << " failed: " << statusName(s)
                      << (s == kFLEXIQ_ERROR_CUDA ? std::string(" (") + cudaGetErrorString(flexiqLastCudaError()) + ")"
                                                  : std::string()));
    // The backend of this layer on this device (its group size matters: sm_80 G = 32 runs INT8_PIPELINED),
    // read from host fields only; it decides which device data DeviceWeights makes (weightEffective).
    FlexiqLayerArgs const hostArgs = mCfg->layerArgs(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    FlexiqBackend const backend = flexiqRunnerLayerBackend(runner, &hostArgs);
    FLEXIQ_VALIDATE(backend != kFLEXIQ_BACKEND_AUTO,
        mCfg->where() << ": CUDA device " << device
                      << " is not supported: FlexiQ kernels need sm_80 or newer (int8/int4 mma.sync m16n8k32)");
    mSelection.device = device;
    mSelection.backend = backend;
    mRunner = runner;
    logVerbose(mCfg->where() + ": device " + std::to_string(device) + ", G = " + std::to_string(hostArgs.groupSize)
        + " -> backend " + backendName(backend));
    mWeights = mDeviceCache->get(*mCfg, mSelection.device, mSelection.backend);
}

int32_t FlexiqPluginBase::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
    nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs, void* const* outputs, void* workspace,
    cudaStream_t stream) noexcept
{
    FLEXIQ_TRY
    {
        // Normally done by attachToContext; doing it here too covers runtimes that skip it
        // (the upload is synchronous, so it must not be the first call inside a CUDA-graph capture).
        prepareDevice();
        FlexiqProblem problem = problemFor(inputDesc[kINPUT_X].dims, inputDesc[kINPUT_X].type);
        checkOutputType(inputDesc[kINPUT_X].type, outputDesc[0].type);
        checkMax4bitDims(inputDesc[kINPUT_MAX4BIT].dims);
        problem.input = inputs[kINPUT_X];
        problem.max4bit = static_cast<int32_t const*>(inputs[kINPUT_MAX4BIT]);
        problem.output = outputs[0];
        problem.accOut = nullptr;
        FlexiqLayerArgs const& args = mWeights->args();
        size_t const wsSize = flexiqGetWorkspaceSize(&args, &problem);
        FlexiqStatus const s
            = flexiqRunnerEnqueue(mRunner, mSelection.backend, kFLEXIQ_TILE_AUTO, &args, &problem, workspace, wsSize, stream);
        if (s != kFLEXIQ_SUCCESS)
        {
            char why[256] = {0};
            if (s == kFLEXIQ_ERROR_INVALID_ARGS)
            {
                static_cast<void>(flexiqCanImplementProblem(&args, &problem, why, sizeof(why)));
            }
            std::string msg = mCfg->where() + ": enqueue failed: " + statusName(s);
            if (s == kFLEXIQ_ERROR_CUDA)
            {
                msg += std::string(" (") + cudaGetErrorString(flexiqLastCudaError()) + ")";
            }
            if (why[0] != '\0')
            {
                msg += std::string(": ") + why;
            }
            logError(msg);
            return -1;
        }
        return 0;
    }
    FLEXIQ_CATCH_RETURN("enqueue", -1)
}

nvinfer1::IPluginV3* FlexiqPluginBase::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    FLEXIQ_TRY
    {
        std::unique_ptr<FlexiqPluginBase> copy(cloneDerived());
        copy->prepareDevice();
        return copy.release();
    }
    FLEXIQ_CATCH_RETURN("attachToContext", nullptr)
}

nvinfer1::PluginFieldCollection const* FlexiqPluginBase::getFieldsToSerialize() noexcept
{
    FLEXIQ_TRY
    {
        return mSerializer.serialize(*mCfg);
    }
    FLEXIQ_CATCH_RETURN("getFieldsToSerialize", nullptr)
}

} // namespace flexiq
