/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The FlexiQ plugin-node field table: the C++ mirror of python/flexiq_trt/plugin_spec.py.
 *
 * tests/unit/plugin/test_plugin_spec_parity.py parses the rows between FLEXIQ_FIELD_TABLE_BEGIN and
 * FLEXIQ_FIELD_TABLE_END (one FLEXIQ_FIELD(...) per line) and the constants below and compares them
 * with plugin_spec.FIELDS (name, kind, length formula, bounds, conv_only) and plugin_spec's
 * names/version. A change to any row bumps kFLEXIQ_PLUGIN_VERSION (and PLUGIN_VERSION in Python).
 */
#ifndef FLEXIQ_FIELDS_H
#define FLEXIQ_FIELDS_H

#include <cstddef>
#include <cstdint>
#include <limits>

namespace flexiq
{

//! plugin_spec.PLUGIN_NAMESPACE / PLUGIN_VERSION / CONV_OP / GEMM_OP / RUNTIME_INPUT.
constexpr char const* kFLEXIQ_PLUGIN_NAMESPACE = "flexiq";
// 2: `bias` per-rung table; 3: INT8 codes between layers; 4: workspace edges; 5: integer activation steps;
// 6: one integer weight step per channel group (weight_step)
constexpr char const* kFLEXIQ_PLUGIN_VERSION = "6";
constexpr char const* kFLEXIQ_CONV_NAME = "FlexiQConv";
constexpr char const* kFLEXIQ_GEMM_NAME = "FlexiQGemm";
constexpr char const* kFLEXIQ_RUNTIME_INPUT = "flexiq_max_4bit_ch";

//! plugin_spec.FieldKind: how a field is stored in ONNX and which PluginFieldType TensorRT passes.
enum class FieldKind : int32_t
{
    kINT,            //!< ONNX INT            -> kINT32 scalar
    kFLOAT,          //!< ONNX FLOAT          -> kFLOAT32 scalar
    kINTS,           //!< ONNX INTS           -> kINT32 array
    kTENSOR_INT8,    //!< ONNX TENSOR int8    -> kINT8 array (flattened)
    kTENSOR_INT32,   //!< ONNX TENSOR int32   -> kINT32 array (flattened)
    kTENSOR_FLOAT32, //!< ONNX TENSOR float32 -> kFLOAT32 array (flattened)
};

//! plugin_spec.FieldSpec.length, as an enum (the formula text is kept beside it for the parity test).
enum class LengthRule : int32_t
{
    kONE,        //!< "1"
    kTWO,        //!< "2"
    kFOUR,       //!< "4"
    kN,          //!< "N"
    kC_PAD,      //!< "C_pad"
    kG_COUNT,    //!< "G_count" = C_pad / G
    kN_K,        //!< "N*K", K = R*S*C_pad (gemm: C_pad)
    kN_K_HALF,   //!< "N*K/2"
    kRUNGS_N,    //!< "(G_count+1)*N": one row per bias rung k = n4 / G in 0..G_count
    kR_G_COUNT,  //!< "R_G_count" = ceil(N / reader_group_size): the reader's groups of a workspace edge
};

//! plugin_spec.EdgeKind: the values of input_int8 / output_int8.
enum class EdgeKind : int32_t
{
    kFLOAT = 0,     //!< float32 / float16 values
    kCODES = 1,     //!< INT8 activation codes in the float tensor's layout (an INT8 edge)
    kWORKSPACE = 2, //!< the one reader's input-pass image (plugins/kernels/flexiqEdgeImage.h)
};

//! No bound on this side (plugin_spec's None).
constexpr double kNO_LIMIT = std::numeric_limits<double>::quiet_NaN();

//! One row of the field table. Float lower bounds are exclusive (scales must be > 0), integer
//! bounds inclusive; `index` is the position in kFIELDS and in FieldId.
struct FieldDef
{
    char const* name;
    FieldKind kind;
    char const* lengthFormula;
    LengthRule length;
    double low;
    double high;
    bool convOnly;
};

//! Field ids in table order (so kFIELDS[id] is the row of that field).
enum class FieldId : int32_t
{
    kLAYER_INDEX, kGROUP_SIZE, kIN_CHANNELS, kOUT_CHANNELS, kACT_SCALE, kACT_SIGNED, kACT_SHIFT_MODE,
    kACT_STATIC_SHIFT, kPERMUTATION, kWEIGHT_INT8, kWEIGHT_INT4, kWEIGHT_STEP, kWEIGHT_SCALE, kBIAS,
    kACTIVATION, kACTIVATION_ALPHA, kACTIVATION_BETA, kINPUT_INT8, kOUTPUT_INT8, kOUTPUT_SCALE, kOUTPUT_SIGNED,
    kREADER_LAYER_INDEX, kREADER_GROUP_SIZE, kREADER_ACT_SHIFT_MODE, kREADER_ACT_STATIC_SHIFT, kKERNEL_SHAPE, kSTRIDES, kPADS, kDILATIONS, kCOUNT
};

#define FLEXIQ_FIELD(name, kind, formula, rule, low, high, convOnly)                                                   \
    FieldDef{name, FieldKind::kind, formula, LengthRule::rule, low, high, convOnly}

// clang-format off
// FLEXIQ_FIELD_TABLE_BEGIN
constexpr FieldDef kFIELDS[] = {
    FLEXIQ_FIELD("layer_index", kINT, "1", kONE, 0, kNO_LIMIT, false),
    FLEXIQ_FIELD("group_size", kINT, "1", kONE, 32, 64, false),
    FLEXIQ_FIELD("in_channels", kINT, "1", kONE, 1, kNO_LIMIT, false),
    FLEXIQ_FIELD("out_channels", kINT, "1", kONE, 1, kNO_LIMIT, false),
    FLEXIQ_FIELD("act_scale", kFLOAT, "1", kONE, 0.0, kNO_LIMIT, false),
    FLEXIQ_FIELD("act_signed", kINT, "1", kONE, 0, 1, false),
    FLEXIQ_FIELD("act_shift_mode", kINT, "1", kONE, 0, 1, false),
    FLEXIQ_FIELD("act_static_shift", kTENSOR_INT8, "G_count", kG_COUNT, 0, 4, false),
    FLEXIQ_FIELD("permutation", kTENSOR_INT32, "C_pad", kC_PAD, 0, kNO_LIMIT, false),
    FLEXIQ_FIELD("weight_int8", kTENSOR_INT8, "N*K", kN_K, -127, 127, false),
    FLEXIQ_FIELD("weight_int4", kTENSOR_INT8, "N*K/2", kN_K_HALF, kNO_LIMIT, kNO_LIMIT, false),
    FLEXIQ_FIELD("weight_step", kTENSOR_INT8, "G_count", kG_COUNT, 1, 16, false),
    FLEXIQ_FIELD("weight_scale", kTENSOR_FLOAT32, "N", kN, 0.0, kNO_LIMIT, false),
    FLEXIQ_FIELD("bias", kTENSOR_FLOAT32, "(G_count+1)*N", kRUNGS_N, kNO_LIMIT, kNO_LIMIT, false),
    FLEXIQ_FIELD("activation", kINT, "1", kONE, 0, 9, false),
    FLEXIQ_FIELD("activation_alpha", kFLOAT, "1", kONE, kNO_LIMIT, kNO_LIMIT, false),
    FLEXIQ_FIELD("activation_beta", kFLOAT, "1", kONE, kNO_LIMIT, kNO_LIMIT, false),
    FLEXIQ_FIELD("input_int8", kINT, "1", kONE, 0, 2, false),
    FLEXIQ_FIELD("output_int8", kINT, "1", kONE, 0, 2, false),
    FLEXIQ_FIELD("output_scale", kFLOAT, "1", kONE, 0.0, kNO_LIMIT, false),
    FLEXIQ_FIELD("output_signed", kINT, "1", kONE, 0, 1, false),
    FLEXIQ_FIELD("reader_layer_index", kINT, "1", kONE, 0, kNO_LIMIT, false),
    FLEXIQ_FIELD("reader_group_size", kINT, "1", kONE, 32, 64, false),
    FLEXIQ_FIELD("reader_act_shift_mode", kINT, "1", kONE, 0, 1, false),
    FLEXIQ_FIELD("reader_act_static_shift", kTENSOR_INT8, "R_G_count", kR_G_COUNT, 0, 4, false),
    FLEXIQ_FIELD("kernel_shape", kINTS, "2", kTWO, 1, kNO_LIMIT, true),
    FLEXIQ_FIELD("strides", kINTS, "2", kTWO, 1, kNO_LIMIT, true),
    FLEXIQ_FIELD("pads", kINTS, "4", kFOUR, 0, kNO_LIMIT, true),
    FLEXIQ_FIELD("dilations", kINTS, "2", kTWO, 1, kNO_LIMIT, true),
};
// FLEXIQ_FIELD_TABLE_END
// clang-format on

#undef FLEXIQ_FIELD

constexpr int32_t kFIELD_COUNT = static_cast<int32_t>(sizeof(kFIELDS) / sizeof(kFIELDS[0]));
static_assert(kFIELD_COUNT == static_cast<int32_t>(FieldId::kCOUNT), "FieldId and kFIELDS disagree");

//! The row of a field.
constexpr FieldDef const& fieldDef(FieldId id)
{
    return kFIELDS[static_cast<int32_t>(id)];
}

//! Whether a bound is present (kNO_LIMIT is NaN).
constexpr bool hasLimit(double bound)
{
    return bound == bound;
}

//! Supported channel group sizes (plugin_spec.SUPPORTED_GROUP_SIZES).
constexpr int32_t kSUPPORTED_GROUP_SIZES[] = {32, 64};

} // namespace flexiq

#endif // FLEXIQ_FIELDS_H
