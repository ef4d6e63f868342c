/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * FlexiqPluginBase: the IPluginV3 machinery shared by FlexiQConv and FlexiQGemm (fields,
 * serialization, type/format negotiation, workspace, device selection, enqueue). The two plugins
 * differ only in how the input tensor maps to the kernel problem and in the output shape, which
 * they provide through four small hooks.
 *
 * Inputs: 0 = x (FP32/FP16, or INT8 activation codes when the field input_int8 = 1; linear),
 * 1 = flexiq_max_4bit_ch (int32 [L], device). Output 0: INT8 codes of the consumers' quantizer when
 * output_int8 = 1, else FP32 after an INT8 input, else the dtype of x (docs/design.md §2.3). Every method is noexcept and converts exceptions into failure codes (docs/conventions.md, "Errors").
 */
#ifndef FLEXIQ_PLUGIN_BASE_H
#define FLEXIQ_PLUGIN_BASE_H

#include "flexiqDeviceWeights.h"
#include "flexiqLayerConfig.h"

#include "NvInferRuntime.h"

#include <map>
#include <memory>
#include <mutex>

namespace flexiq
{

//! Device weight copies per device id, shared by every clone of one plugin (all execution contexts).
class DeviceWeightCache
{
public:
    //! The weights on the current device, uploading them on first use; throws FlexiqPluginError. `backend` is
    //! the layer's on that device (flexiqRunnerLayerBackend, fixed per device and layer for the process): an
    //! int8 one adds the effective weights.
    std::shared_ptr<DeviceWeights const> get(LayerConfig const& cfg, int32_t device, FlexiqBackend backend);

private:
    std::mutex mMutex;
    std::map<int32_t, std::shared_ptr<DeviceWeights const>> mByDevice;
};

class FlexiqPluginBase : public nvinfer1::IPluginV3,
                         public nvinfer1::IPluginV3OneCore,
                         public nvinfer1::IPluginV3OneBuild,
                         public nvinfer1::IPluginV3OneRuntime
{
public:
    static constexpr int32_t kINPUT_X = 0;
    static constexpr int32_t kINPUT_MAX4BIT = 1;
    static constexpr int32_t kNB_INPUTS = 2;
    static constexpr int32_t kNB_OUTPUTS = 1;

    explicit FlexiqPluginBase(std::shared_ptr<LayerConfig const> cfg);
    ~FlexiqPluginBase() override = default;

    LayerConfig const& config() const noexcept
    {
        return *mCfg;
    }

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    //! The kernel problem (batch/height/width, input and output types) of an input shape and type;
    //! throws on a bad shape or an input type the fields do not allow.
    FlexiqProblem problemFor(nvinfer1::Dims const& x, nvinfer1::DataType type) const;
    //! The output type for an input type: kINT8 when output_int8, else kFLOAT after an INT8 input, else the input's.
    nvinfer1::DataType outputTypeFor(nvinfer1::DataType inputType) const noexcept;

protected:
    FlexiqPluginBase(FlexiqPluginBase const& other);

    //! Throws unless `x` has the rank and channel size this op expects (-1 dims are accepted).
    virtual void checkInputDims(nvinfer1::Dims const& x) const = 0;
    //! Output shape expressions for input `x`.
    virtual void outputShape(
        nvinfer1::DimsExprs const& x, nvinfer1::DimsExprs& out, nvinfer1::IExprBuilder& builder) const
        = 0;
    //! batch / height / width of the kernel problem for a concrete input shape.
    virtual void problemDims(nvinfer1::Dims const& x, FlexiqProblem& problem) const = 0;
    //! A copy of the derived plugin (shares the config and the device weight cache).
    virtual FlexiqPluginBase* cloneDerived() const = 0;

private:
    //! Selects the backend and makes sure the weights are on the current device (runtime only).
    void prepareDevice();
    void checkMax4bitDims(nvinfer1::Dims const& d) const;
    //! Throws unless x's type fits input_int8 (kINT8 when 1, FP32/FP16 when 0), naming the field.
    void checkInputType(nvinfer1::DataType type) const;
    //! Throws unless the output type is outputTypeFor(inputType), naming the fields.
    void checkOutputType(nvinfer1::DataType inputType, nvinfer1::DataType outputType) const;

    // Attributes (immutable, shared by clones).
    std::shared_ptr<LayerConfig const> mCfg;
    // Device state (runtime only; shared cache, per-instance selection).
    std::shared_ptr<DeviceWeightCache> mDeviceCache;
    DeviceSelection mSelection{};
    FlexiqRunner const* mRunner{nullptr}; //!< the kernels' runner of mSelection.device (library-owned)
    std::shared_ptr<DeviceWeights const> mWeights;
    // Serialization scratch.
    FieldSerializer mSerializer;
};

} // namespace flexiq

#endif // FLEXIQ_PLUGIN_BASE_H
