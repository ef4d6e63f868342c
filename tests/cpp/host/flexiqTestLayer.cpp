/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqTestLayer.h"

#include <algorithm>
#include <stdexcept>

namespace flexiq
{
namespace test
{
namespace
{
using nvinfer1::PluginField;
using nvinfer1::PluginFieldType;

//! Small LCG: reproducible values without <random>'s distribution differences between libraries.
struct Lcg
{
    uint32_t state;
    uint32_t next()
    {
        state = state * 1664525U + 1013904223U;
        return state >> 8;
    }
    int32_t range(int32_t lo, int32_t hi) // inclusive
    {
        return lo + static_cast<int32_t>(next() % static_cast<uint32_t>(hi - lo + 1));
    }
};
} // namespace

int32_t TestLayer::paddedChannels() const
{
    return (inChannels + groupSize - 1) / groupSize * groupSize;
}

int64_t TestLayer::reductionLength() const
{
    return isConv ? static_cast<int64_t>(kernelShape[0]) * kernelShape[1] * paddedChannels() : paddedChannels();
}

void TestLayer::fill(uint32_t seed)
{
    Lcg rng{seed};
    int32_t const cPad = paddedChannels();
    int32_t const groups = cPad / groupSize;
    int64_t const k = reductionLength();
    permutation.resize(cPad);
    for (int32_t i = 0; i < cPad; ++i)
    {
        permutation[i] = i;
    }
    // Shuffle the real channels only: the zero-padding channels stay last.
    for (int32_t i = inChannels - 1; i > 0; --i)
    {
        std::swap(permutation[i], permutation[rng.range(0, i)]);
    }
    actStaticShift.assign(groups, 0);
    for (auto& v : actStaticShift)
        v = static_cast<int8_t>(rng.range(0, 4));
    weightInt8.assign(static_cast<size_t>(outChannels * k), 0);
    for (auto& v : weightInt8)
        v = static_cast<int8_t>(rng.range(-127, 127));
    weightInt4.assign(static_cast<size_t>(outChannels * k / 2), 0);
    for (auto& v : weightInt4)
        v = static_cast<int8_t>(rng.range(-128, 127));
    weightStep.assign(groups, 0); // step_w in 1..16, mostly not a power of two
    for (auto& v : weightStep)
        v = static_cast<int8_t>(rng.range(1, 16));
    weightScale.assign(outChannels, 0.0F);
    bias.assign(static_cast<size_t>((groups + 1) * outChannels), 0.0F); // [G_count + 1, N], one row per rung
    for (int32_t n = 0; n < outChannels; ++n)
    {
        weightScale[n] = 0.001F * static_cast<float>(rng.range(1, 1000)) / 7.0F;
    }
    for (auto& v : bias)
        v = 0.01F * static_cast<float>(rng.range(-100, 100));
    readerActStaticShift.assign(static_cast<size_t>((outChannels + readerGroupSize - 1) / readerGroupSize), 0);
    for (auto& v : readerActStaticShift)
        v = static_cast<int8_t>(rng.range(0, 4));
}

std::vector<PluginField> TestLayer::fields() const
{
    auto const len = [](auto const& v) { return static_cast<int32_t>(v.size()); };
    std::vector<PluginField> f = {
        PluginField("layer_index", &layerIndex, PluginFieldType::kINT32, 1),
        PluginField("group_size", &groupSize, PluginFieldType::kINT32, 1),
        PluginField("in_channels", &inChannels, PluginFieldType::kINT32, 1),
        PluginField("out_channels", &outChannels, PluginFieldType::kINT32, 1),
        PluginField("act_scale", &actScale, PluginFieldType::kFLOAT32, 1),
        PluginField("act_signed", &actSigned, PluginFieldType::kINT32, 1),
        PluginField("act_shift_mode", &actShiftMode, PluginFieldType::kINT32, 1),
        PluginField("act_static_shift", actStaticShift.data(), PluginFieldType::kINT8, len(actStaticShift)),
        PluginField("permutation", permutation.data(), PluginFieldType::kINT32, len(permutation)),
        PluginField("weight_int8", weightInt8.data(), PluginFieldType::kINT8, len(weightInt8)),
        PluginField("weight_int4", weightInt4.data(), PluginFieldType::kINT8, len(weightInt4)),
        PluginField("weight_step", weightStep.data(), PluginFieldType::kINT8, len(weightStep)),
        PluginField("weight_scale", weightScale.data(), PluginFieldType::kFLOAT32, len(weightScale)),
        PluginField("bias", bias.data(), PluginFieldType::kFLOAT32, len(bias)),
        PluginField("activation", &activation, PluginFieldType::kINT32, 1),
        PluginField("activation_alpha", &alpha, PluginFieldType::kFLOAT32, 1),
        PluginField("activation_beta", &beta, PluginFieldType::kFLOAT32, 1),
        PluginField("input_int8", &inputInt8, PluginFieldType::kINT32, 1),
        PluginField("output_int8", &outputInt8, PluginFieldType::kINT32, 1),
        PluginField("output_scale", &outputScale, PluginFieldType::kFLOAT32, 1),
        PluginField("output_signed", &outputSigned, PluginFieldType::kINT32, 1),
        PluginField("reader_layer_index", &readerLayerIndex, PluginFieldType::kINT32, 1),
        PluginField("reader_group_size", &readerGroupSize, PluginFieldType::kINT32, 1),
        PluginField("reader_act_shift_mode", &readerActShiftMode, PluginFieldType::kINT32, 1),
        PluginField("reader_act_static_shift", readerActStaticShift.data(), PluginFieldType::kINT8,
            len(readerActStaticShift)),
    };
    if (isConv)
    {
        f.emplace_back("kernel_shape", kernelShape.data(), PluginFieldType::kINT32, 2);
        f.emplace_back("strides", strides.data(), PluginFieldType::kINT32, 2);
        f.emplace_back("pads", pads.data(), PluginFieldType::kINT32, 4);
        f.emplace_back("dilations", dilations.data(), PluginFieldType::kINT32, 2);
    }
    return f;
}

TestLayer makeLayer(bool isConv)
{
    TestLayer t;
    t.isConv = isConv;
    if (!isConv)
    {
        t.kernelShape = {1, 1};
        t.pads = {0, 0, 0, 0};
    }
    t.fill();
    return t;
}

PluginField& fieldByName(std::vector<PluginField>& fields, std::string const& name)
{
    for (auto& f : fields)
    {
        if (name == f.name)
            return f;
    }
    throw std::out_of_range("no field " + name);
}

std::vector<PluginField> withoutField(std::vector<PluginField> fields, std::string const& name)
{
    fields.erase(std::remove_if(fields.begin(), fields.end(), [&](PluginField const& f) { return name == f.name; }),
        fields.end());
    return fields;
}

} // namespace test
} // namespace flexiq
