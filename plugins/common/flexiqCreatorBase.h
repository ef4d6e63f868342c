/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * FlexiqCreatorBase: the IPluginCreatorV3One shared by both FlexiQ creators. createPlugin parses and
 * validates the fields (LayerConfig) in every phase and never touches CUDA, so ahead-of-time builds
 * on GPU-less machines work; the backend is chosen later, on the device (docs/design.md §4).
 */
#ifndef FLEXIQ_CREATOR_BASE_H
#define FLEXIQ_CREATOR_BASE_H

#include "flexiqLayerConfig.h"
#include "flexiqPluginBase.h"

#include "NvInferRuntime.h"

#include <memory>
#include <vector>

namespace flexiq
{

class FlexiqCreatorBase : public nvinfer1::IPluginCreatorV3One
{
public:
    explicit FlexiqCreatorBase(bool isConv);
    ~FlexiqCreatorBase() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

protected:
    //! The concrete plugin for a validated config.
    virtual FlexiqPluginBase* makePlugin(std::shared_ptr<LayerConfig const> cfg) const = 0;

private:
    bool mIsConv;
    std::vector<nvinfer1::PluginField> mFieldNames;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

} // namespace flexiq

#endif // FLEXIQ_CREATOR_BASE_H
