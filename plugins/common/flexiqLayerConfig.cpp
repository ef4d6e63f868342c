/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Field parsing and validation of FlexiQ plugin nodes (see flexiqLayerConfig.h).
 *
 * TensorRT-RTX's ONNX parser does not type-check attributes (docs/design.md §6): int64/uint8/bool TENSOR
 * attributes arrive labelled kFLOAT16 with raw bytes, and INTS silently truncate int64 values. So
 * every PluginField's type and length is checked here before its data is read.
 */
#include "flexiqLayerConfig.h"

#include "flexiqCheck.h"
#include "flexiqEdgeImage.h"
#include "flexiqShape.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flexiq
{
namespace
{
using nvinfer1::PluginField;
using nvinfer1::PluginFieldCollection;
using nvinfer1::PluginFieldType;

constexpr int32_t kCOUNT = static_cast<int32_t>(FieldId::kCOUNT);

PluginFieldType expectedType(FieldKind kind)
{
    switch (kind)
    {
    case FieldKind::kFLOAT:
    case FieldKind::kTENSOR_FLOAT32: return PluginFieldType::kFLOAT32;
    case FieldKind::kTENSOR_INT8: return PluginFieldType::kINT8;
    case FieldKind::kINT:
    case FieldKind::kINTS:
    case FieldKind::kTENSOR_INT32: return PluginFieldType::kINT32;
    }
    return PluginFieldType::kUNKNOWN;
}

char const* typeName(PluginFieldType t)
{
    switch (t)
    {
    case PluginFieldType::kFLOAT16: return "kFLOAT16";
    case PluginFieldType::kFLOAT32: return "kFLOAT32";
    case PluginFieldType::kFLOAT64: return "kFLOAT64";
    case PluginFieldType::kINT8: return "kINT8";
    case PluginFieldType::kINT16: return "kINT16";
    case PluginFieldType::kINT32: return "kINT32";
    case PluginFieldType::kCHAR: return "kCHAR";
    case PluginFieldType::kDIMS: return "kDIMS";
    case PluginFieldType::kUNKNOWN: return "kUNKNOWN";
    case PluginFieldType::kBF16: return "kBF16";
    case PluginFieldType::kINT64: return "kINT64";
    case PluginFieldType::kFP8: return "kFP8";
    case PluginFieldType::kINT4: return "kINT4";
    case PluginFieldType::kFP4: return "kFP4";
    }
    return "invalid PluginFieldType";
}

char const* kindName(FieldKind kind)
{
    switch (kind)
    {
    case FieldKind::kINT: return "INT (int32 scalar)";
    case FieldKind::kFLOAT: return "FLOAT (float32 scalar)";
    case FieldKind::kINTS: return "INTS (int32 array)";
    case FieldKind::kTENSOR_INT8: return "TENSOR int8";
    case FieldKind::kTENSOR_INT32: return "TENSOR int32";
    case FieldKind::kTENSOR_FLOAT32: return "TENSOR float32";
    }
    return "?";
}

bool isScalar(FieldKind kind)
{
    return kind == FieldKind::kINT || kind == FieldKind::kFLOAT;
}

//! Finds every field of the collection by name and checks names, duplicates and types.
class RawFields
{
public:
    RawFields(LayerConfig const& cfg, PluginFieldCollection const* fc)
        : mCfg(cfg)
    {
        FLEXIQ_VALIDATE(fc != nullptr, cfg.where() << ": no plugin fields were given");
        FLEXIQ_VALIDATE(fc->nbFields >= 0 && (fc->nbFields == 0 || fc->fields != nullptr),
            cfg.where() << ": malformed PluginFieldCollection (nbFields " << fc->nbFields << ")");
        for (int32_t i = 0; i < fc->nbFields; ++i)
        {
            add(fc->fields[i], i);
        }
        for (int32_t id = 0; id < kCOUNT; ++id)
        {
            FLEXIQ_VALIDATE(mFound[id] != nullptr || !applies(kFIELDS[id]),
                cfg.where() << ": required plugin field '" << kFIELDS[id].name << "' is missing");
        }
    }

    PluginField const& get(FieldId id) const
    {
        return *mFound[static_cast<int32_t>(id)];
    }

private:
    bool applies(FieldDef const& def) const
    {
        return !def.convOnly || mCfg.isConv;
    }

    void add(PluginField const& f, int32_t position)
    {
        FLEXIQ_VALIDATE(f.name != nullptr, mCfg.where() << ": plugin field #" << position << " has no name");
        int32_t id = 0;
        while (id < kCOUNT && std::strcmp(kFIELDS[id].name, f.name) != 0)
        {
            ++id;
        }
        FLEXIQ_VALIDATE(id < kCOUNT && applies(kFIELDS[id]),
            mCfg.where() << ": unknown plugin field '" << f.name << "' (not a " << mCfg.opName() << " field)");
        FLEXIQ_VALIDATE(mFound[id] == nullptr, mCfg.where() << ": plugin field '" << f.name << "' is given twice");
        FieldDef const& def = kFIELDS[id];
        PluginFieldType const want = expectedType(def.kind);
        if (f.type != want)
        {
            bool const mislabelled = f.type == PluginFieldType::kFLOAT16 && !isScalar(def.kind);
            FLEXIQ_VALIDATE(false,
                mCfg.where() << ": plugin field '" << f.name << "' has type " << typeName(f.type) << ", expected "
                             << typeName(want) << " (ONNX " << kindName(def.kind) << ")"
                             << (mislabelled ? "; an ONNX int64/uint8/bool/float16 TENSOR attribute arrives as "
                                               "kFLOAT16: store it with the dtype plugin_spec.py names"
                                             : ""));
        }
        FLEXIQ_VALIDATE(f.length >= 0 && (f.length == 0 || f.data != nullptr),
            mCfg.where() << ": plugin field '" << f.name << "' has length " << f.length << " but no data");
        mFound[id] = &f;
    }

    LayerConfig const& mCfg;
    std::array<PluginField const*, kCOUNT> mFound{};
};

void checkLength(LayerConfig const& cfg, PluginField const& f, int64_t expected, char const* formula)
{
    FLEXIQ_VALIDATE(f.length == expected,
        cfg.where() << ": plugin field '" << f.name << "' has " << f.length << " elements, expected " << formula
                    << " = " << expected);
}

//! Inclusive integer bounds of a table row, checked for element `index` (-1 for a scalar).
void checkIntRange(LayerConfig const& cfg, FieldDef const& def, int64_t value, int64_t index)
{
    bool const ok = (!hasLimit(def.low) || value >= def.low) && (!hasLimit(def.high) || value <= def.high);
    if (!ok)
    {
        std::ostringstream range;
        range << "[" << (hasLimit(def.low) ? std::to_string(static_cast<int64_t>(def.low)) : "-inf") << ", "
              << (hasLimit(def.high) ? std::to_string(static_cast<int64_t>(def.high)) : "inf") << "]";
        FLEXIQ_VALIDATE(false,
            cfg.where() << ": plugin field '" << def.name << "'" << (index >= 0 ? "[" + std::to_string(index) + "]" : "")
                        << " = " << value << " is out of range " << range.str());
    }
}

//! Finite, and above an exclusive lower bound (scales must be > 0).
void checkFloat(LayerConfig const& cfg, FieldDef const& def, float value, int64_t index)
{
    bool const ok = std::isfinite(value) && (!hasLimit(def.low) || value > def.low)
        && (!hasLimit(def.high) || value <= def.high);
    if (!ok)
    {
        std::ostringstream need;
        need << "must be finite";
        if (hasLimit(def.low))
            need << " and > " << def.low;
        if (hasLimit(def.high))
            need << " and <= " << def.high;
        FLEXIQ_VALIDATE(false,
            cfg.where() << ": plugin field '" << def.name << "'"
                        << (index >= 0 ? "[" + std::to_string(index) + "]" : "") << " = " << value << " is invalid ("
                        << need.str() << ")");
    }
}

int32_t readInt(LayerConfig const& cfg, RawFields const& raw, FieldId id)
{
    PluginField const& f = raw.get(id);
    checkLength(cfg, f, 1, "1");
    int32_t v = 0;
    std::memcpy(&v, f.data, sizeof(v));
    checkIntRange(cfg, fieldDef(id), v, -1);
    return v;
}

float readFloat(LayerConfig const& cfg, RawFields const& raw, FieldId id)
{
    PluginField const& f = raw.get(id);
    checkLength(cfg, f, 1, "1");
    float v = 0.0F;
    std::memcpy(&v, f.data, sizeof(v));
    checkFloat(cfg, fieldDef(id), v, -1);
    return v;
}

template <size_t N>
std::array<int32_t, N> readInts(LayerConfig const& cfg, RawFields const& raw, FieldId id)
{
    PluginField const& f = raw.get(id);
    checkLength(cfg, f, static_cast<int64_t>(N), fieldDef(id).lengthFormula);
    std::array<int32_t, N> v{};
    std::memcpy(v.data(), f.data, sizeof(int32_t) * N);
    for (size_t i = 0; i < N; ++i)
    {
        checkIntRange(cfg, fieldDef(id), v[i], static_cast<int64_t>(i));
    }
    return v;
}

template <typename T>
std::vector<T> readArray(LayerConfig const& cfg, RawFields const& raw, FieldId id, int64_t expected)
{
    PluginField const& f = raw.get(id);
    checkLength(cfg, f, expected, fieldDef(id).lengthFormula);
    std::vector<T> v(static_cast<size_t>(expected));
    if (expected > 0)
    {
        std::memcpy(v.data(), f.data, sizeof(T) * v.size());
    }
    FieldDef const& def = fieldDef(id);
    for (size_t i = 0; i < v.size(); ++i)
    {
        if constexpr (std::is_floating_point_v<T>)
        {
            checkFloat(cfg, def, v[i], static_cast<int64_t>(i));
        }
        else
        {
            checkIntRange(cfg, def, v[i], static_cast<int64_t>(i));
        }
    }
    return v;
}

void readScalars(LayerConfig& cfg, RawFields const& raw)
{
    cfg.layerIndex = readInt(cfg, raw, FieldId::kLAYER_INDEX);
    cfg.groupSize = readInt(cfg, raw, FieldId::kGROUP_SIZE);
    FLEXIQ_VALIDATE(std::find(std::begin(kSUPPORTED_GROUP_SIZES), std::end(kSUPPORTED_GROUP_SIZES), cfg.groupSize)
            != std::end(kSUPPORTED_GROUP_SIZES),
        cfg.where() << ": plugin field 'group_size' = " << cfg.groupSize << " is not supported (32 or 64)");
    cfg.inChannels = readInt(cfg, raw, FieldId::kIN_CHANNELS);
    cfg.outChannels = readInt(cfg, raw, FieldId::kOUT_CHANNELS);
    cfg.actScale = readFloat(cfg, raw, FieldId::kACT_SCALE);
    cfg.actSigned = readInt(cfg, raw, FieldId::kACT_SIGNED);
    cfg.actShiftMode = readInt(cfg, raw, FieldId::kACT_SHIFT_MODE);
    cfg.activation = readInt(cfg, raw, FieldId::kACTIVATION);
    cfg.activationAlpha = readFloat(cfg, raw, FieldId::kACTIVATION_ALPHA);
    cfg.activationBeta = readFloat(cfg, raw, FieldId::kACTIVATION_BETA);
    cfg.inputInt8 = readInt(cfg, raw, FieldId::kINPUT_INT8);
    cfg.outputInt8 = readInt(cfg, raw, FieldId::kOUTPUT_INT8);
    cfg.outputScale = readFloat(cfg, raw, FieldId::kOUTPUT_SCALE); // finite and > 0 (table), even when unused
    cfg.outputSigned = readInt(cfg, raw, FieldId::kOUTPUT_SIGNED);
    cfg.readerLayerIndex = readInt(cfg, raw, FieldId::kREADER_LAYER_INDEX);
    cfg.readerGroupSize = readInt(cfg, raw, FieldId::kREADER_GROUP_SIZE);
    FLEXIQ_VALIDATE(cfg.readerGroupSize == 32 || cfg.readerGroupSize == 64,
        cfg.where() << ": plugin field 'reader_group_size' = " << cfg.readerGroupSize << " is not supported (32 or 64)");
    cfg.readerActShiftMode = readInt(cfg, raw, FieldId::kREADER_ACT_SHIFT_MODE);
    if (cfg.isConv)
    {
        cfg.kernelShape = readInts<2>(cfg, raw, FieldId::kKERNEL_SHAPE);
        cfg.strides = readInts<2>(cfg, raw, FieldId::kSTRIDES);
        cfg.pads = readInts<4>(cfg, raw, FieldId::kPADS);
        cfg.dilations = readInts<2>(cfg, raw, FieldId::kDILATIONS);
    }
}

//! K must keep the int32 accumulator exact (docs/design.md §2) and every array length must fit int32.
void checkReductionLength(LayerConfig const& cfg)
{
    int64_t const cPad = (static_cast<int64_t>(cfg.inChannels) + cfg.groupSize - 1) / cfg.groupSize * cfg.groupSize;
    int64_t const kMax = cfg.actSigned ? kMaxKSigned : kMaxKUnsigned;
    // R*S < 2^62 always fits; R*S*C_pad may not (found by tests/cpp/fuzz), so it is only formed when
    // R*S <= kMax (then it is < 2^49). A larger R*S already exceeds kMax since C_pad >= 1.
    int64_t const rs = static_cast<int64_t>(cfg.kernelShape[0]) * cfg.kernelShape[1];
    int64_t const k = rs <= kMax ? rs * cPad : rs;
    FLEXIQ_VALIDATE(k <= kMax,
        cfg.where() << ": K = R*S*C_pad = " << cfg.kernelShape[0] << "*" << cfg.kernelShape[1] << "*" << cPad
                    << (rs <= kMax ? " = " : " >= ") << k << " exceeds " << kMax << " (MAX_K_"
                    << (cfg.actSigned ? "SIGNED" : "UNSIGNED") << "): the int32 accumulator could overflow (fields 'in_channels', 'kernel_shape', 'act_signed')");
    FLEXIQ_VALIDATE(static_cast<int64_t>(cfg.outChannels) * k <= INT32_MAX,
        cfg.where() << ": plugin field 'out_channels' = " << cfg.outChannels << " with K = " << k
                    << " gives a weight tensor over 2^31 elements");
}

//! pi must be a permutation of 0..C_pad-1 with the zero-padding channels (>= in_channels) last.
void checkPermutation(LayerConfig const& cfg)
{
    int32_t const cPad = cfg.paddedChannels();
    std::vector<uint8_t> seen(static_cast<size_t>(cPad), 0);
    for (int32_t i = 0; i < cPad; ++i)
    {
        int32_t const v = cfg.permutation[i];
        FLEXIQ_VALIDATE(v < cPad,
            cfg.where() << ": plugin field 'permutation'[" << i << "] = " << v << " is out of range [0, C_pad = "
                        << cPad << ")");
        FLEXIQ_VALIDATE(!seen[v],
            cfg.where() << ": plugin field 'permutation' is not a permutation: value " << v << " repeats at index "
                        << i);
        seen[v] = 1;
        FLEXIQ_VALIDATE(i >= cfg.inChannels || v < cfg.inChannels,
            cfg.where() << ": plugin field 'permutation'[" << i << "] = " << v
                        << " is a zero-padding channel (>= in_channels = " << cfg.inChannels
                        << ") but padding must come last");
    }
}

void readArrays(LayerConfig& cfg, RawFields const& raw)
{
    int64_t const n = cfg.outChannels;
    int64_t const k = cfg.reductionLength();
    int64_t const g = cfg.groupCount();
    cfg.actStaticShift = readArray<int8_t>(cfg, raw, FieldId::kACT_STATIC_SHIFT, g);
    cfg.permutation = readArray<int32_t>(cfg, raw, FieldId::kPERMUTATION, cfg.paddedChannels());
    checkPermutation(cfg);
    cfg.weightInt8 = readArray<int8_t>(cfg, raw, FieldId::kWEIGHT_INT8, n * k);
    cfg.weightInt4 = readArray<int8_t>(cfg, raw, FieldId::kWEIGHT_INT4, n * k / 2);
    cfg.weightStep = readArray<int8_t>(cfg, raw, FieldId::kWEIGHT_STEP, g);
    cfg.weightScale = readArray<float>(cfg, raw, FieldId::kWEIGHT_SCALE, n);
    cfg.bias = readArray<float>(cfg, raw, FieldId::kBIAS, (g + 1) * n); // one row per bias rung
    cfg.readerActStaticShift = readArray<int8_t>(
        cfg, raw, FieldId::kREADER_ACT_STATIC_SHIFT, cfg.readerPaddedChannels() / cfg.readerGroupSize);
}

//! The kernels' own argument check must accept what the plugin accepted (no engine they would refuse).
void crossCheckWithKernels(LayerConfig const& cfg, std::vector<float> const& outScale)
{
    FlexiqLayerArgs const args = cfg.layerArgs(cfg.permutation.data(), cfg.weightInt8.data(), cfg.weightInt4.data(),
        cfg.weightStep.data(), outScale.data(), cfg.bias.data(), cfg.actStaticShift.data());
    char why[256] = {0};
    FLEXIQ_VALIDATE(checkLayerArgs(args, why, sizeof(why)), cfg.where() << ": rejected by the kernel check: " << why);
    for (float s : outScale)
    {
        FLEXIQ_VALIDATE(std::isfinite(s) && s > 0.0F,
            cfg.where() << ": act_scale * weight_scale[n] = " << s
                        << " is not a finite positive float32 (fields 'act_scale', 'weight_scale')");
    }
}

} // namespace

int32_t LayerConfig::readerPaddedChannels() const noexcept
{
    return edgePaddedChannels(outChannels, readerGroupSize);
}

int64_t LayerConfig::inputEdgeBytesPerRow() const noexcept
{
    return edgeBytesPerRow(paddedChannels(), groupSize);
}

int64_t LayerConfig::outputEdgeBytesPerRow() const noexcept
{
    return edgeBytesPerRow(readerPaddedChannels(), readerGroupSize);
}

char const* LayerConfig::opName() const noexcept
{
    return isConv ? kFLEXIQ_CONV_NAME : kFLEXIQ_GEMM_NAME;
}

std::string LayerConfig::where() const
{
    return std::string(opName()) + " node '" + nodeName + "'";
}

int32_t LayerConfig::paddedChannels() const noexcept
{
    return (inChannels + groupSize - 1) / groupSize * groupSize;
}

int32_t LayerConfig::groupCount() const noexcept
{
    return paddedChannels() / groupSize;
}

int64_t LayerConfig::reductionLength() const noexcept
{
    return static_cast<int64_t>(kernelShape[0]) * kernelShape[1] * paddedChannels();
}

std::vector<float> LayerConfig::outScale() const
{
    std::vector<float> s(weightScale.size());
    for (size_t i = 0; i < s.size(); ++i)
    {
        s[i] = actScale * weightScale[i]; // one float32 rounding; built with -ffp-contract=off
    }
    return s;
}

FlexiqLayerArgs LayerConfig::layerArgs(int32_t const* perm, int8_t const* w8, int8_t const* w4, int8_t const* wStep,
    float const* outScalePtr, float const* biasPtr, int8_t const* staticShift) const noexcept
{
    FlexiqLayerArgs a{};
    a.isConv = isConv ? 1 : 0;
    a.inChannels = inChannels;
    a.paddedChannels = paddedChannels();
    a.outChannels = outChannels;
    a.groupSize = groupSize;
    a.kernelR = kernelShape[0];
    a.kernelS = kernelShape[1];
    a.strideH = strides[0];
    a.strideW = strides[1];
    a.padTop = pads[0];
    a.padLeft = pads[1];
    a.padBottom = pads[2];
    a.padRight = pads[3];
    a.dilationH = dilations[0];
    a.dilationW = dilations[1];
    a.actScale = actScale;
    a.actSigned = actSigned;
    a.actShiftMode = actShiftMode;
    a.activation = activation;
    a.alpha = activationAlpha;
    a.beta = activationBeta;
    a.layerIndex = layerIndex;
    a.outputScale = outputScale;
    a.outputSigned = outputSigned;
    a.permutation = perm;
    a.weightInt8 = w8;
    a.weightInt4 = w4;
    a.weightStep = wStep;
    a.outScale = outScalePtr;
    a.bias = biasPtr;
    a.actStaticShift = staticShift;
    a.readerLayerIndex = readerLayerIndex;
    a.readerGroupSize = readerGroupSize;
    a.readerShiftMode = readerActShiftMode;
    a.readerStaticShift = nullptr; // device pointers: set by DeviceWeights
    a.weightStepWide = nullptr;
    a.weightEffective = nullptr; // set by DeviceWeights for the int8 backends
    return a;
}

LayerConfig parseLayerConfig(bool isConv, std::string const& nodeName, PluginFieldCollection const* fc)
{
    LayerConfig cfg;
    cfg.isConv = isConv;
    cfg.nodeName = nodeName;
    RawFields const raw(cfg, fc);
    readScalars(cfg, raw);
    checkReductionLength(cfg);
    readArrays(cfg, raw);
    crossCheckWithKernels(cfg, cfg.outScale());
    return cfg;
}

std::vector<PluginField> fieldNameList(bool isConv)
{
    std::vector<PluginField> names;
    for (FieldDef const& def : kFIELDS)
    {
        if (!def.convOnly || isConv)
        {
            names.emplace_back(def.name, nullptr, expectedType(def.kind), 0);
        }
    }
    return names;
}

PluginFieldCollection const* FieldSerializer::serialize(LayerConfig const& cfg)
{
    auto const len = [](auto const& v) { return static_cast<int32_t>(v.size()); };
    auto const i32 = PluginFieldType::kINT32;
    auto const f32 = PluginFieldType::kFLOAT32;
    auto const i8 = PluginFieldType::kINT8;
    mFields = {
        PluginField("layer_index", &cfg.layerIndex, i32, 1),
        PluginField("group_size", &cfg.groupSize, i32, 1),
        PluginField("in_channels", &cfg.inChannels, i32, 1),
        PluginField("out_channels", &cfg.outChannels, i32, 1),
        PluginField("act_scale", &cfg.actScale, f32, 1),
        PluginField("act_signed", &cfg.actSigned, i32, 1),
        PluginField("act_shift_mode", &cfg.actShiftMode, i32, 1),
        PluginField("act_static_shift", cfg.actStaticShift.data(), i8, len(cfg.actStaticShift)),
        PluginField("permutation", cfg.permutation.data(), i32, len(cfg.permutation)),
        PluginField("weight_int8", cfg.weightInt8.data(), i8, len(cfg.weightInt8)),
        PluginField("weight_int4", cfg.weightInt4.data(), i8, len(cfg.weightInt4)),
        PluginField("weight_step", cfg.weightStep.data(), i8, len(cfg.weightStep)),
        PluginField("weight_scale", cfg.weightScale.data(), f32, len(cfg.weightScale)),
        PluginField("bias", cfg.bias.data(), f32, len(cfg.bias)),
        PluginField("activation", &cfg.activation, i32, 1),
        PluginField("activation_alpha", &cfg.activationAlpha, f32, 1),
        PluginField("activation_beta", &cfg.activationBeta, f32, 1),
        PluginField("input_int8", &cfg.inputInt8, i32, 1),
        PluginField("output_int8", &cfg.outputInt8, i32, 1),
        PluginField("output_scale", &cfg.outputScale, f32, 1),
        PluginField("output_signed", &cfg.outputSigned, i32, 1),
        PluginField("reader_layer_index", &cfg.readerLayerIndex, i32, 1),
        PluginField("reader_group_size", &cfg.readerGroupSize, i32, 1),
        PluginField("reader_act_shift_mode", &cfg.readerActShiftMode, i32, 1),
        PluginField("reader_act_static_shift", cfg.readerActStaticShift.data(), i8, len(cfg.readerActStaticShift)),
    };
    if (cfg.isConv)
    {
        mFields.emplace_back("kernel_shape", cfg.kernelShape.data(), i32, 2);
        mFields.emplace_back("strides", cfg.strides.data(), i32, 2);
        mFields.emplace_back("pads", cfg.pads.data(), i32, 4);
        mFields.emplace_back("dilations", cfg.dilations.data(), i32, 2);
    }
    mCollection.nbFields = len(mFields);
    mCollection.fields = mFields.data();
    return &mCollection;
}

} // namespace flexiq
