/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqCreatorBase.h"

#include "flexiqCheck.h"

namespace flexiq
{

FlexiqCreatorBase::FlexiqCreatorBase(bool isConv)
    : mIsConv(isConv)
    , mFieldNames(fieldNameList(isConv))
{
    mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
    mFieldCollection.fields = mFieldNames.data();
}

char const* FlexiqCreatorBase::getPluginName() const noexcept
{
    return mIsConv ? kFLEXIQ_CONV_NAME : kFLEXIQ_GEMM_NAME;
}

char const* FlexiqCreatorBase::getPluginVersion() const noexcept
{
    return kFLEXIQ_PLUGIN_VERSION;
}

char const* FlexiqCreatorBase::getPluginNamespace() const noexcept
{
    return kFLEXIQ_PLUGIN_NAMESPACE;
}

nvinfer1::PluginFieldCollection const* FlexiqCreatorBase::getFieldNames() noexcept
{
    return &mFieldCollection;
}

nvinfer1::IPluginV3* FlexiqCreatorBase::createPlugin(
    char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    FLEXIQ_TRY
    {
        // Both phases carry the same fields: the build phase from the ONNX node, the runtime phase
        // from getFieldsToSerialize (same names and types), so one parser serves both.
        auto cfg = std::make_shared<LayerConfig const>(parseLayerConfig(mIsConv, name != nullptr ? name : "", fc));
        return makePlugin(std::move(cfg));
    }
    FLEXIQ_CATCH_RETURN("createPlugin", nullptr)
}

} // namespace flexiq
