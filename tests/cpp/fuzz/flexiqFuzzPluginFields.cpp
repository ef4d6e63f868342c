/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target of the plugin-field parser (plugins/common/flexiqLayerConfig.cpp), the code that both
 * createPlugin phases run on fields TensorRT passes in: build (from the ONNX node) and runtime
 * (engine deserialization, from getFieldsToSerialize). Built with libFuzzer under ASan + UBSan when
 * the compiler is Clang, else with the bounded mutation driver flexiqFuzzDriver.cpp (docs/cpp.md).
 *
 * Oracles: no sanitizer report; a rejection is a FlexiqPluginError (any other exception means a
 * value slipped past validation); an accepted config has consistent array sizes, passes the kernels'
 * own argument check, and survives serialize -> parse with identical values (what deserialization
 * relies on).
 */
#include "flexiqFuzzInput.h"

#include "flexiqCheck.h"
#include "flexiqLayerConfig.h"
#include "flexiqShape.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace flexiq
{
namespace fuzz
{

size_t elementSize(nvinfer1::PluginFieldType type)
{
    using T = nvinfer1::PluginFieldType;
    switch (type)
    {
    case T::kFLOAT16:
    case T::kINT16:
    case T::kBF16: return 2;
    case T::kFLOAT32:
    case T::kINT32: return 4;
    case T::kFLOAT64:
    case T::kINT64: return 8;
    case T::kDIMS: return sizeof(nvinfer1::Dims);
    case T::kINT8:
    case T::kCHAR:
    case T::kUNKNOWN:
    case T::kFP8:
    case T::kINT4:
    case T::kFP4: return 1;
    }
    return 1;
}

void decode(uint8_t const* data, size_t size, DecodedFields& out)
{
    static char const kUnknownName[] = "ratio";
    size_t pos = 0;
    auto byte = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };
    out.isConv = (byte() & 1) != 0;
    out.fields.clear();
    out.blocks.clear();
    while (pos < size && out.fields.size() < kMAX_FIELDS)
    {
        int32_t const nameSel = byte() % (kFIELD_COUNT + 2);
        char const* name = nameSel < kFIELD_COUNT ? kFIELDS[nameSel].name : nameSel == kFIELD_COUNT ? kUnknownName : nullptr;
        auto const type = static_cast<nvinfer1::PluginFieldType>(byte());
        uint32_t len = 0;
        for (int i = 0; i < 4; ++i)
            len |= static_cast<uint32_t>(byte()) << (8 * i);
        int32_t length = 0;
        std::memcpy(&length, &len, sizeof(length));
        bool const hasData = byte() != 0;
        void const* ptr = nullptr;
        if (hasData && length > 0)
        {
            int64_t const bytes = static_cast<int64_t>(length) * static_cast<int64_t>(elementSize(type));
            if (bytes <= kMAX_FIELD_BYTES)
            {
                auto block = std::make_unique<uint8_t[]>(static_cast<size_t>(bytes)); // zero-filled
                size_t const take = std::min(static_cast<size_t>(bytes), size - pos);
                std::memcpy(block.get(), data + pos, take);
                pos += take;
                ptr = block.get();
                out.blocks.push_back(std::move(block));
            }
        }
        else if (hasData)
        {
            static uint8_t const kNonNull = 0; // length <= 0 with a non-null pointer
            ptr = &kNonNull;
        }
        out.fields.emplace_back(name, ptr, type, length);
    }
    out.collection.nbFields = static_cast<int32_t>(out.fields.size());
    out.collection.fields = out.fields.data();
}

namespace
{

[[noreturn]] void bug(char const* what, std::string const& detail)
{
    std::fprintf(stderr, "flexiq fuzz: %s: %s\n", what, detail.c_str());
    std::abort();
}

void checkAccepted(LayerConfig const& cfg)
{
    auto const n = static_cast<size_t>(cfg.outChannels);
    auto const k = static_cast<size_t>(cfg.reductionLength());
    auto const g = static_cast<size_t>(cfg.groupCount());
    if (cfg.permutation.size() != static_cast<size_t>(cfg.paddedChannels()) || cfg.weightInt8.size() != n * k
        || cfg.weightInt4.size() != n * k / 2 || cfg.weightStep.size() != g || cfg.weightScale.size() != n
        || cfg.bias.size() != (g + 1) * n || cfg.actStaticShift.size() != g
        || cfg.readerActStaticShift.size() != static_cast<size_t>(cfg.readerPaddedChannels() / cfg.readerGroupSize))
    {
        bug("accepted config with inconsistent array sizes", cfg.where());
    }
    std::vector<float> const outScale = cfg.outScale();
    FlexiqLayerArgs const args = cfg.layerArgs(cfg.permutation.data(), cfg.weightInt8.data(), cfg.weightInt4.data(),
        cfg.weightStep.data(), outScale.data(), cfg.bias.data(), cfg.actStaticShift.data());
    char why[256] = {0};
    if (!checkLayerArgs(args, why, sizeof(why)))
        bug("accepted config refused by the kernel check", why);
}

bool sameConfig(LayerConfig const& a, LayerConfig const& b)
{
    auto const bits = [](float f) {
        uint32_t u = 0;
        std::memcpy(&u, &f, sizeof(u));
        return u;
    };
    auto const sameFloats = [&](std::vector<float> const& x, std::vector<float> const& y) {
        if (x.size() != y.size())
            return false;
        for (size_t i = 0; i < x.size(); ++i)
            if (bits(x[i]) != bits(y[i]))
                return false;
        return true;
    };
    return a.isConv == b.isConv && a.layerIndex == b.layerIndex && a.groupSize == b.groupSize
        && a.inChannels == b.inChannels && a.outChannels == b.outChannels && bits(a.actScale) == bits(b.actScale)
        && a.actSigned == b.actSigned && a.actShiftMode == b.actShiftMode && a.activation == b.activation
        && bits(a.activationAlpha) == bits(b.activationAlpha) && bits(a.activationBeta) == bits(b.activationBeta)
        && a.kernelShape == b.kernelShape && a.strides == b.strides && a.pads == b.pads && a.dilations == b.dilations
        && a.actStaticShift == b.actStaticShift && a.permutation == b.permutation && a.weightInt8 == b.weightInt8
        && a.weightInt4 == b.weightInt4 && a.weightStep == b.weightStep && sameFloats(a.weightScale, b.weightScale)
        && sameFloats(a.bias, b.bias) && a.inputInt8 == b.inputInt8 && a.outputInt8 == b.outputInt8
        && bits(a.outputScale) == bits(b.outputScale) && a.outputSigned == b.outputSigned
        && a.readerLayerIndex == b.readerLayerIndex && a.readerGroupSize == b.readerGroupSize
        && a.readerActShiftMode == b.readerActShiftMode && a.readerActStaticShift == b.readerActStaticShift;
}

} // namespace

//! One fuzz input; returns whether the parser accepted it (aborts on a bug).
bool runOne(uint8_t const* data, size_t size)
{
    DecodedFields in;
    decode(data, size, in);
    LayerConfig cfg;
    try
    {
        cfg = parseLayerConfig(in.isConv, "fuzz_node", &in.collection);
    }
    catch (FlexiqPluginError const&)
    {
        return false; // a clean rejection, as createPlugin logs it
    }
    catch (std::exception const& e)
    {
        bug("parser threw something other than FlexiqPluginError", e.what());
    }
    checkAccepted(cfg);
    // Runtime phase: deserialization re-parses exactly what getFieldsToSerialize returns.
    FieldSerializer serializer;
    nvinfer1::PluginFieldCollection const* fc = serializer.serialize(cfg);
    try
    {
        LayerConfig const again = parseLayerConfig(in.isConv, "fuzz_node", fc);
        if (!sameConfig(cfg, again))
            bug("serialize -> parse changed a value", cfg.where());
    }
    catch (std::exception const& e)
    {
        bug("a serialized accepted config was rejected", e.what());
    }
    return true;
}

} // namespace fuzz
} // namespace flexiq

namespace
{
//! FLEXIQ_FUZZ_STATS=1: print how many inputs the parser accepted (the tests check that every seed is).
struct Stats
{
    long long inputs{0};
    long long accepted{0};
    bool enabled{std::getenv("FLEXIQ_FUZZ_STATS") != nullptr};
    ~Stats()
    {
        if (enabled)
            std::fprintf(stderr, "flexiq fuzz stats: %lld inputs, %lld accepted\n", inputs, accepted);
    }
};
Stats gStats;
} // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size)
{
    bool const accepted = flexiq::fuzz::runOne(data, size);
    ++gStats.inputs;
    gStats.accepted += accepted ? 1 : 0;
    return 0;
}
