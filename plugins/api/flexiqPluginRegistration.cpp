/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The library's only exported entry points (exports/flexiq_plugins.map): getCreators, which
 * IPluginRegistry::loadLibrary calls, and setLoggerFinder. The library never calls IPluginRegistry
 * itself (no static self-registration): its vtable differs between TensorRT and TensorRT-RTX
 * (docs/design.md §6), so registration is left to the registry that loads us.
 */
#include "flexiqConvPlugin.h"
#include "flexiqGemmPlugin.h"
#include "flexiqLogger.h"

#include "NvInferRuntime.h"

#define FLEXIQ_EXPORT __attribute__((visibility("default")))

namespace
{
//! Creators live for the whole process (TensorRT keeps the raw pointers).
nvinfer1::IPluginCreatorInterface* const* creatorList(int32_t& count) noexcept
{
    static flexiq::FlexiqConvCreator sConvCreator;
    static flexiq::FlexiqGemmCreator sGemmCreator;
    static nvinfer1::IPluginCreatorInterface* const sCreators[] = {&sConvCreator, &sGemmCreator};
    count = static_cast<int32_t>(sizeof(sCreators) / sizeof(sCreators[0]));
    return sCreators;
}
} // namespace

extern "C" {

FLEXIQ_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    flexiq::setPluginLoggerFinder(finder);
}

FLEXIQ_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    return creatorList(nbCreators);
}

} // extern "C"
