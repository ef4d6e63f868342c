/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host tests of INT8 codes between FlexiQ layers (docs/design.md §2.3, "INT8 codes between layers") on
 * the C++ CPU reference (plugins/reference), with layers parsed by the plugin's own field parser:
 *   (a) an INT8 output is, element by element, the code of the FP32 output under the consumers'
 *       quantizer (s8 and u8, several activations), computed here by an independent rule;
 *   (b) an INT8 input holding the codes of a float input gives the float input's accumulators and
 *       outputs bit for bit;
 *   (c) a chain P -> C through an INT8 edge equals the same chain through FP32, bit for bit;
 *   (d) a foreign -128 code is read as -127 (signed), while 0x80 is the unsigned code 128.
 * Built into flexiq_host_tests, so it also runs under ASan + UBSan (build-asan).
 */
#include "flexiqContract.h"
#include "flexiqCpuReference.h"
#include "flexiqLayerConfig.h"
#include "flexiqShape.h"
#include "flexiqTestHarness.h"
#include "flexiqTestLayer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using flexiq::test::TestLayer;

namespace
{

//! A layer parsed from a TestLayer by the plugin's parser, with host-pointer kernel arguments.
struct RefLayer
{
    TestLayer fields;
    flexiq::LayerConfig cfg;
    std::vector<float> outScale;
    FlexiqLayerArgs args{};

    RefLayer(TestLayer t)
        : fields(std::move(t))
    {
        auto const f = fields.fields();
        nvinfer1::PluginFieldCollection fc{static_cast<int32_t>(f.size()), f.data()};
        cfg = flexiq::parseLayerConfig(fields.isConv, "ref_node", &fc);
        outScale = cfg.outScale();
        args = cfg.layerArgs(cfg.permutation.data(), cfg.weightInt8.data(), cfg.weightInt4.data(),
            cfg.weightStep.data(), outScale.data(), cfg.bias.data(), cfg.actStaticShift.data());
    }
};

struct Shape
{
    int32_t batch, height, width;
};

//! One forward of the CPU reference: accumulators and the output bytes (float or int8).
struct Result
{
    std::vector<int32_t> acc;
    std::vector<float> y;       //!< FP32 output
    std::vector<uint8_t> codes; //!< INT8 output
    bool ok{false};
};

int64_t outCount(FlexiqLayerArgs const& a, Shape s)
{
    int32_t outH = 0;
    int32_t outW = 0;
    flexiq::outputSize(flexiq::layerGeometry(a), s.height, s.width, &outH, &outW);
    return static_cast<int64_t>(s.batch) * a.outChannels * outH * outW;
}

//! Sizes a Result for `n` outputs: accumulators, and either `codeBytes` poison-filled bytes (an INT8 or
//! workspace-edge output) or n floats; returns the output pointer the problem writes to.
void* prepareResult(Result& r, int64_t n, bool bytesOut, int64_t codeBytes)
{
    r.acc.assign(static_cast<size_t>(n), 0);
    if (bytesOut)
    {
        r.codes.assign(static_cast<size_t>(codeBytes), 0xA5);
        return r.codes.data();
    }
    r.y.assign(static_cast<size_t>(n), -1.0F);
    return r.y.data();
}

Result forward(FlexiqLayerArgs const& a, Shape s, int32_t inputType, void const* input, int32_t n4, int32_t outputType)
{
    Result r;
    int64_t const n = outCount(a, s);
    void* out = prepareResult(r, n, outputType == kFLEXIQ_INT8, n);
    FlexiqProblem const pr{s.batch, s.height, s.width, inputType, outputType, input, out, nullptr, r.acc.data()};
    char why[256] = {0};
    r.ok = flexiq::cpuForward(a, pr, n4, why, sizeof(why));
    CHECK_CTX(r.ok, why);
    return r;
}

//! The contract's activation code (docs/design.md §2.3), written out here independently of
//! flexiqContract.h: clamp(round_half_even(x / s)) with an IEEE float32 division.
int32_t referenceCode(float x, float scale, bool isSigned)
{
    volatile float const q = x / scale; // one float32 division, nothing fused
    float const r = std::nearbyint(q);  // default rounding mode: half to even
    float const lo = isSigned ? -127.0F : 0.0F;
    float const hi = isSigned ? 127.0F : 255.0F;
    return static_cast<int32_t>(std::min(std::max(r, lo), hi));
}

//! Deterministic float input spanning small, saturating and exactly half-way codes (LCG, as TestLayer).
std::vector<float> makeInput(int64_t count, float actScale, bool isSigned, uint32_t seed)
{
    std::vector<float> x(static_cast<size_t>(count));
    uint32_t state = seed;
    auto next = [&] {
        state = state * 1664525U + 1013904223U;
        return state >> 8;
    };
    float const spans[] = {2.0F, 10.0F, 40.0F, 140.0F, 300.0F};
    for (auto& v : x)
    {
        float const span = spans[next() % 5];
        float code = (static_cast<float>(next() % 20001) / 10000.0F - 1.0F) * span;
        if (next() % 5 == 0)
            code = std::floor(code) + 0.5F; // exactly half-way between two codes
        v = code * actScale;
        if (!isSigned)
            v = std::fabs(v);
    }
    return x;
}

//! The INT8 edge tensor of float values: each element's code, unsigned codes as uint8 bit patterns.
std::vector<int8_t> codesOf(std::vector<float> const& x, float scale, bool isSigned)
{
    std::vector<int8_t> c(x.size());
    for (size_t i = 0; i < x.size(); ++i)
        c[i] = static_cast<int8_t>(static_cast<uint8_t>(referenceCode(x[i], scale, isSigned) & 0xFF));
    return c;
}

bool sameBits(std::vector<float> const& a, std::vector<float> const& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TestLayer makeTestLayer(bool isConv, int32_t inChannels, int32_t outChannels, bool isSigned, int32_t activation,
    int32_t shiftMode, uint32_t seed)
{
    TestLayer t = flexiq::test::makeLayer(isConv);
    t.inChannels = inChannels;
    t.outChannels = outChannels;
    t.actSigned = isSigned ? 1 : 0;
    t.activation = activation;
    t.actShiftMode = shiftMode;
    t.alpha = activation == 2 ? -0.5F : (activation == 6 ? 0.1F : (activation == 7 ? 0.2F : 0.0F));
    t.beta = activation == 2 ? 0.75F : (activation == 7 ? 0.5F : 0.0F);
    t.fill(seed);
    return t;
}

Shape shapeOf(bool isConv)
{
    return isConv ? Shape{2, 5, 6} : Shape{9, 1, 1};
}

int64_t inputCount(TestLayer const& t, Shape s)
{
    return static_cast<int64_t>(s.batch) * t.inChannels * s.height * s.width;
}

float maxAbs(std::vector<float> const& v)
{
    float m = 0.0F;
    for (float x : v)
        m = std::max(m, std::fabs(x));
    return m;
}

} // namespace

// (a) An INT8 output is the consumers' code of the FP32 output, every element.
TEST_CASE(int8OutputIsTheCodeOfTheFloatOutput)
{
    int32_t const activations[] = {0, 1, 2, 3, 5, 8, 9}; // NONE RELU CLIP HARD_SWISH SIGMOID GELU TANH
    uint32_t seed = 11;
    for (bool isConv : {false, true})
        for (int32_t act : activations)
            for (bool outSigned : {true, false})
            {
                TestLayer t = makeTestLayer(isConv, 40, 24, true, act, 0, ++seed);
                Shape const s = shapeOf(isConv);
                std::vector<float> const x = makeInput(inputCount(t, s), t.actScale, true, seed);
                RefLayer base(t);
                Result const f = forward(base.args, s, kFLEXIQ_FP32, x.data(), 32, kFLEXIQ_FP32);
                // A scale that saturates the largest values and, for u8, has codes above 127.
                float const top = outSigned ? maxAbs(f.y) : *std::max_element(f.y.begin(), f.y.end());
                float const scale = std::max(top, 1e-3F) / (outSigned ? 160.0F : 300.0F);
                t.outputInt8 = 1;
                t.outputScale = scale;
                t.outputSigned = outSigned ? 1 : 0;
                RefLayer layer(t);
                Result const q = forward(layer.args, s, kFLEXIQ_FP32, x.data(), 32, kFLEXIQ_INT8);
                std::string const ctx = std::string(isConv ? "conv" : "gemm") + " activation " + std::to_string(act)
                    + (outSigned ? " s8" : " u8");
                CHECK_CTX(f.ok && q.ok && q.acc == f.acc, ctx);
                int32_t mismatches = 0;
                int32_t saturated = 0;
                int32_t high = 0;
                for (size_t i = 0; i < f.y.size() && q.ok; ++i)
                {
                    int32_t const want = referenceCode(f.y[i], scale, outSigned);
                    int32_t const got = outSigned ? static_cast<int8_t>(q.codes[i]) : q.codes[i];
                    mismatches += got != want ? 1 : 0;
                    saturated += (want == 127 || want == -127 || (!outSigned && want == 255)) ? 1 : 0;
                    high += want > 127 ? 1 : 0;
                }
                CHECK_CTX(mismatches == 0, ctx + ": " + std::to_string(mismatches) + " codes differ");
                // Every case reaches the saturation bound (the largest |y|, u8: the largest y, maps to
                // code 160, u8: 300), and u8 cases store codes above 127 (as their low 8 bits).
                CHECK_CTX(saturated > 0, ctx);
                if (!outSigned)
                    CHECK_CTX(high > 0, ctx + ": no u8 code above 127");
            }
}

// (b) INT8 input holding the float path's codes: the same accumulators and outputs, bit for bit.
TEST_CASE(int8InputEqualsFloatInputBitForBit)
{
    uint32_t seed = 100;
    for (bool isConv : {false, true})
        for (bool isSigned : {true, false})
            for (int32_t shiftMode : {0, 1})
            {
                TestLayer t = makeTestLayer(isConv, 70, 16, isSigned, isSigned ? 3 : 1, shiftMode, ++seed);
                Shape const s = shapeOf(isConv);
                std::vector<float> const x = makeInput(inputCount(t, s), t.actScale, isSigned, seed);
                std::vector<int8_t> const codes = codesOf(x, t.actScale, isSigned);
                RefLayer floatLayer(t);
                t.inputInt8 = 1;
                RefLayer int8Layer(t);
                int32_t const cPad = t.paddedChannels();
                for (int32_t n4 : {0, 32, 63, cPad})
                {
                    Result const f = forward(floatLayer.args, s, kFLEXIQ_FP32, x.data(), n4, kFLEXIQ_FP32);
                    Result const q = forward(int8Layer.args, s, kFLEXIQ_INT8, codes.data(), n4, kFLEXIQ_FP32);
                    std::string const ctx = std::string(isConv ? "conv" : "gemm") + (isSigned ? " s8" : " u8")
                        + " shift mode " + std::to_string(shiftMode) + " n4 " + std::to_string(n4);
                    CHECK_CTX(f.ok && q.ok && f.acc == q.acc, ctx);
                    CHECK_CTX(sameBits(f.y, q.y), ctx);
                }
            }
}

// (c) P -> C through an INT8 edge equals P -> C through FP32, bit for bit (and P's codes are C's codes).
TEST_CASE(int8EdgeChainEqualsFloatChain)
{
    uint32_t seed = 200;
    for (bool isConv : {false, true})
        for (bool consumerSigned : {true, false})
        {
            Shape const s = shapeOf(isConv);
            TestLayer p = makeTestLayer(isConv, 40, 48, true, consumerSigned ? 0 : 1, 0, ++seed);
            TestLayer c = makeTestLayer(isConv, 48, 8, consumerSigned, 8, 0, ++seed);
            std::vector<float> const x = makeInput(inputCount(p, s), p.actScale, true, seed);
            RefLayer pFloat(p);
            Result const y = forward(pFloat.args, s, kFLEXIQ_FP32, x.data(), 32, kFLEXIQ_FP32);
            // The consumer's act_scale puts P's outputs across the whole code range.
            c.actScale = std::max(maxAbs(y.y), 1e-3F) / (consumerSigned ? 100.0F : 200.0F);
            RefLayer cFloat(c);
            p.outputInt8 = 1;
            p.outputScale = c.actScale;
            p.outputSigned = c.actSigned;
            RefLayer pInt8(p);
            c.inputInt8 = 1;
            RefLayer cInt8(c);
            Result const edge = forward(pInt8.args, s, kFLEXIQ_FP32, x.data(), 32, kFLEXIQ_INT8);
            std::string const ctx = std::string(isConv ? "conv" : "gemm") + (consumerSigned ? " s8" : " u8");
            CHECK_CTX(edge.ok && edge.acc == y.acc, ctx);
            // P's INT8 output is exactly the tensor C's float input pass would have quantized.
            std::vector<int8_t> const want = codesOf(y.y, c.actScale, consumerSigned);
            CHECK_CTX(edge.codes.size() == want.size()
                    && std::memcmp(edge.codes.data(), want.data(), want.size()) == 0,
                ctx);
            // C's spatial size is P's output size (P keeps H x W: 3x3, pad 1, stride 1).
            Shape const cs = s;
            for (int32_t n4 : {0, 32, 64})
            {
                Result const viaFloat = forward(cFloat.args, cs, kFLEXIQ_FP32, y.y.data(), n4, kFLEXIQ_FP32);
                Result const viaInt8 = forward(cInt8.args, cs, kFLEXIQ_INT8, edge.codes.data(), n4, kFLEXIQ_FP32);
                CHECK_CTX(viaFloat.ok && viaInt8.ok && viaFloat.acc == viaInt8.acc, ctx + " n4 " + std::to_string(n4));
                CHECK_CTX(sameBits(viaFloat.y, viaInt8.y), ctx + " n4 " + std::to_string(n4));
            }
        }
}

namespace
{

//! `t` with its output channels in the order `rows` (a workspace-edge producer, graph_passes/plugin_fields.py).
TestLayer permuteOutputs(TestLayer t, std::vector<int32_t> const& rows)
{
    int64_t const k = t.reductionLength();
    int32_t const groups = t.paddedChannels() / t.groupSize;
    TestLayer o = t;
    for (int32_t j = 0; j < t.outChannels; ++j)
    {
        int32_t const r = rows[j];
        std::copy_n(t.weightInt8.begin() + r * k, k, o.weightInt8.begin() + j * k);
        std::copy_n(t.weightInt4.begin() + r * k / 2, k / 2, o.weightInt4.begin() + j * k / 2);
        o.weightScale[j] = t.weightScale[r];
        for (int32_t g = 0; g <= groups; ++g)
            o.bias[g * t.outChannels + j] = t.bias[g * t.outChannels + r];
    }
    return o;
}

//! One forward through cpuForwardEdge; the output is the float y or the workspace-edge image (poison-filled).
Result forwardEdge(FlexiqLayerArgs const& a, Shape s, int32_t inputType, void const* input, int32_t n4,
    int32_t outputType, flexiq::CpuEdgeOptions edge, int64_t imageBytes)
{
    Result r;
    int64_t const n = outCount(a, s);
    void* out = prepareResult(r, n, outputType == kFLEXIQ_INT8_WORKSPACE, imageBytes);
    FlexiqProblem const pr{s.batch, s.height, s.width, inputType, outputType, input, out, nullptr, r.acc.data()};
    char why[256] = {0};
    r.ok = flexiq::cpuForwardEdge(a, pr, n4, edge, why, sizeof(why));
    CHECK_CTX(r.ok, why);
    return r;
}

} // namespace

// (e) Workspace edges (docs/design.md §2.8): P writes C's input-pass image (P's outputs stored in C's pi
// order, C's G, shift mode and n4), C reads it without an input pass: the same accumulators and outputs as
// the chain through FP32, bit for bit; P's own accumulators are its original ones in C's channel order.
TEST_CASE(workspaceEdgeChainEqualsFloatChain)
{
    uint32_t seed = 400;
    for (bool isConv : {false, true})
        for (int32_t readerG : {32, 64})
            for (bool readerSigned : {true, false})
                for (int32_t readerMode : {0, 1})
                {
                    Shape const s = shapeOf(isConv);
                    TestLayer p = makeTestLayer(isConv, 40, 72, true, 3, 0, ++seed); // N = 72: not a multiple of G
                    TestLayer c = makeTestLayer(isConv, 72, 8, readerSigned, 1, readerMode, ++seed);
                    c.groupSize = readerG;
                    c.fill(seed);
                    std::vector<float> const x = makeInput(inputCount(p, s), p.actScale, true, seed);
                    RefLayer pFloat(p);
                    Result const y = forward(pFloat.args, s, kFLEXIQ_FP32, x.data(), 32, kFLEXIQ_FP32);
                    c.actScale = std::max(maxAbs(y.y), 1e-3F) / (readerSigned ? 100.0F : 200.0F);
                    RefLayer cFloat(c);
                    TestLayer pw = permuteOutputs(p, c.permutation);
                    pw.outputInt8 = 2;
                    pw.outputScale = c.actScale;
                    pw.outputSigned = c.actSigned;
                    pw.readerLayerIndex = 5;
                    pw.readerGroupSize = readerG;
                    pw.readerActShiftMode = readerMode;
                    pw.readerActStaticShift = c.actStaticShift;
                    RefLayer pWs(pw);
                    CHECK(pWs.cfg.outputWorkspace() && pWs.cfg.readerPaddedChannels() == c.paddedChannels());
                    pWs.args.readerStaticShift = pWs.cfg.readerActStaticShift.data();
                    c.inputInt8 = 2;
                    RefLayer cWs(c);
                    CHECK(cWs.cfg.inputWorkspace()
                        && cWs.cfg.inputEdgeBytesPerRow() == pWs.cfg.outputEdgeBytesPerRow());
                    int64_t const rows = outCount(pFloat.args, s) / p.outChannels;
                    int64_t const bytes = rows * pWs.cfg.outputEdgeBytesPerRow();
                    std::string const ctx = std::string(isConv ? "conv" : "gemm") + " G" + std::to_string(readerG)
                        + (readerSigned ? " s8" : " u8") + (readerMode ? " static" : " dynamic");
                    for (int32_t format : {1, 0})
                        for (int32_t n4 : {0, readerG, 64 + 5, 1000})
                        {
                            std::string const at = ctx + " format " + std::to_string(format) + " n4 " + std::to_string(n4);
                            Result const image = forwardEdge(pWs.args, s, kFLEXIQ_FP32, x.data(), 32,
                                kFLEXIQ_INT8_WORKSPACE, flexiq::CpuEdgeOptions{n4, format}, bytes);
                            bool permutedAcc = image.ok;
                            for (int64_t i = 0; permutedAcc && i < static_cast<int64_t>(y.acc.size()); ++i)
                            {
                                int64_t const pix = isConv ? s.height * s.width : 1;
                                int64_t const b = i / (p.outChannels * pix);
                                int64_t const j = (i / pix) % p.outChannels;
                                int64_t const src = (b * p.outChannels + c.permutation[j]) * pix + i % pix;
                                permutedAcc = image.acc[i] == y.acc[src];
                            }
                            CHECK_CTX(permutedAcc, at);
                            Result const viaFloat = forward(cFloat.args, s, kFLEXIQ_FP32, y.y.data(), n4, kFLEXIQ_FP32);
                            Result const viaWs = forwardEdge(cWs.args, s, kFLEXIQ_INT8_WORKSPACE, image.codes.data(), n4,
                                kFLEXIQ_FP32, flexiq::CpuEdgeOptions{0, format}, 0);
                            CHECK_CTX(viaFloat.ok && viaWs.ok && viaFloat.acc == viaWs.acc, at);
                            CHECK_CTX(sameBits(viaFloat.y, viaWs.y), at);
                        }
                }
}

// A workspace-edge producer's fields are checked with the field named.
TEST_CASE(workspaceEdgeFieldsAreValidated)
{
    TestLayer t = flexiq::test::makeLayer(false);
    t.outputInt8 = 2;
    t.readerActStaticShift.assign(3, 0); // N = 8, reader G 32: one group
    auto f = t.fields();
    nvinfer1::PluginFieldCollection fc{static_cast<int32_t>(f.size()), f.data()};
    std::string msg;
    try
    {
        static_cast<void>(flexiq::parseLayerConfig(false, "ws_node", &fc));
    }
    catch (std::exception const& e)
    {
        msg = e.what();
    }
    CHECK_CTX(msg.find("reader_act_static_shift") != std::string::npos, msg);
    t.readerActStaticShift.assign(1, 0);
    t.readerGroupSize = 48;
    f = t.fields();
    fc = nvinfer1::PluginFieldCollection{static_cast<int32_t>(f.size()), f.data()};
    msg.clear();
    try
    {
        static_cast<void>(flexiq::parseLayerConfig(false, "ws_node", &fc));
    }
    catch (std::exception const& e)
    {
        msg = e.what();
    }
    CHECK_CTX(msg.find("reader_group_size") != std::string::npos, msg);
}

// (d) A -128 input code is clamped to -127 (signed); 0x80 is the unsigned code 128.
TEST_CASE(int8InputMinus128IsClamped)
{
    CHECK(flexiq::activationCodeFromInt8(-128, true) == -127);
    CHECK(flexiq::activationCodeFromInt8(-127, true) == -127);
    CHECK(flexiq::activationCodeFromInt8(127, true) == 127);
    CHECK(flexiq::activationCodeFromInt8(static_cast<int8_t>(-128), false) == 128);
    CHECK(flexiq::activationCodeFromInt8(static_cast<int8_t>(-1), false) == 255);
    for (int32_t v = -128; v <= 127; ++v)
        CHECK(flexiq::activationCodeFromInt8(static_cast<int8_t>(v), true) == std::max(v, -127));
    for (int32_t u = 0; u <= 255; ++u)
        CHECK(flexiq::activationCodeFromInt8(static_cast<int8_t>(static_cast<uint8_t>(u)), false) == u);

    for (bool isSigned : {true, false})
    {
        TestLayer t = makeTestLayer(true, 40, 8, isSigned, 0, 0, 301);
        t.inputInt8 = 1;
        RefLayer layer(t);
        Shape const s = shapeOf(true);
        std::vector<float> const x = makeInput(inputCount(t, s), t.actScale, isSigned, 302);
        std::vector<int8_t> codes = codesOf(x, t.actScale, isSigned);
        std::vector<int8_t> clamped = codes;
        std::vector<float> floats = x;
        for (size_t i = 0; i < codes.size(); i += 3)
        {
            codes[i] = -128; // 0x80
            clamped[i] = isSigned ? -127 : -128;
            floats[i] = (isSigned ? -127.0F : 128.0F) * t.actScale; // exactly that code on the float path
        }
        t.inputInt8 = 0;
        RefLayer floatLayer(t);
        for (int32_t n4 : {0, 64})
        {
            Result const a = forward(layer.args, s, kFLEXIQ_INT8, codes.data(), n4, kFLEXIQ_FP32);
            Result const b = forward(layer.args, s, kFLEXIQ_INT8, clamped.data(), n4, kFLEXIQ_FP32);
            Result const f = forward(floatLayer.args, s, kFLEXIQ_FP32, floats.data(), n4, kFLEXIQ_FP32);
            std::string const ctx = std::string(isSigned ? "s8" : "u8") + " n4 " + std::to_string(n4);
            CHECK_CTX(a.ok && b.ok && f.ok && a.acc == b.acc && a.acc == f.acc, ctx);
            CHECK_CTX(sameBits(a.y, b.y) && sameBits(a.y, f.y), ctx);
        }
    }
}

// The CPU reference refuses what it does not model: FP16 I/O, a missing accumulator, INT8 output without a scale.
TEST_CASE(cpuReferenceRejectsUnsupportedIo)
{
    TestLayer t = makeTestLayer(false, 40, 8, true, 0, 0, 401);
    RefLayer layer(t);
    std::vector<float> x(40, 0.0F);
    std::vector<float> y(8);
    std::vector<int32_t> acc(8);
    char why[256] = {0};
    FlexiqProblem half{1, 1, 1, kFLEXIQ_FP16, kFLEXIQ_FP32, x.data(), y.data(), nullptr, acc.data()};
    CHECK(!flexiq::cpuForward(layer.args, half, 0, why, sizeof(why)) && std::string(why).find("FP32 or INT8") != std::string::npos);
    FlexiqProblem noAcc{1, 1, 1, kFLEXIQ_FP32, kFLEXIQ_FP32, x.data(), y.data(), nullptr, nullptr};
    CHECK(!flexiq::cpuForward(layer.args, noAcc, 0, why, sizeof(why)));
    FlexiqLayerArgs noScale = layer.args;
    noScale.outputScale = 0.0F;
    FlexiqProblem int8Out{1, 1, 1, kFLEXIQ_FP32, kFLEXIQ_INT8, x.data(), y.data(), nullptr, acc.data()};
    CHECK(!flexiq::cpuForward(noScale, int8Out, 0, why, sizeof(why))
        && std::string(why).find("output_scale > 0") != std::string::npos);
}
