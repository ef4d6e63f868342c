/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host tests of the FlexiQ plugin creators and the build-time plugin methods, without a TensorRT
 * runtime or a GPU: create -> getFieldsToSerialize -> create round trips, type/format/workspace
 * callbacks, and every rejected field (wrong type, wrong length, missing, out of range, K too large).
 * Error messages are captured through the plugin's ILoggerFinder hook and must name the field.
 *
 * Usage: flexiq_host_tests [-v] [name-substring]   exit status 0 = all passed.
 */
#include "flexiqCheck.h"
#include "flexiqConvPlugin.h"
#include "flexiqGemmPlugin.h"
#include "flexiqKernels.h"
#include "flexiqLogger.h"
#include "flexiqTestHarness.h"
#include "flexiqTestLayer.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace nvinfer1;
using flexiq::test::TestLayer;
using flexiq::test::fieldByName;
using flexiq::test::makeLayer;

using flexiq::testing::gVerbose;

namespace
{
// ---- log capture through the plugin's ILoggerFinder hook -----------------------------------------------
class CaptureLogger : public ILogger
{
public:
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (severity <= Severity::kWARNING)
            messages.emplace_back(msg);
    }
    std::vector<std::string> messages;
};

class CaptureFinder : public ILoggerFinder
{
public:
    ILogger* findLogger() override
    {
        return &logger;
    }
    CaptureLogger logger;
};

CaptureFinder gFinder;

std::string lastMessage()
{
    return gFinder.logger.messages.empty() ? std::string() : gFinder.logger.messages.back();
}

bool contains(std::string const& s, std::string const& part)
{
    return s.find(part) != std::string::npos;
}

// ---- helpers ------------------------------------------------------------------------------------------
flexiq::FlexiqCreatorBase& creatorFor(bool isConv)
{
    static flexiq::FlexiqConvCreator conv;
    static flexiq::FlexiqGemmCreator gemm;
    return isConv ? static_cast<flexiq::FlexiqCreatorBase&>(conv) : gemm;
}

std::unique_ptr<flexiq::FlexiqPluginBase> create(
    bool isConv, std::vector<PluginField> const& fields, TensorRTPhase phase = TensorRTPhase::kBUILD)
{
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    IPluginV3* p = creatorFor(isConv).createPlugin("node_7", &fc, phase);
    return std::unique_ptr<flexiq::FlexiqPluginBase>(static_cast<flexiq::FlexiqPluginBase*>(p));
}

//! createPlugin must fail, log one message naming the node, and contain every `parts` string.
void expectRejected(bool isConv, std::vector<PluginField> const& fields, std::vector<std::string> const& parts,
    std::string const& ctx)
{
    size_t const before = gFinder.logger.messages.size();
    auto p = create(isConv, fields);
    CHECK_CTX(p == nullptr, ctx);
    CHECK_CTX(gFinder.logger.messages.size() == before + 1, ctx);
    std::string const msg = lastMessage();
    CHECK_CTX(contains(msg, "node 'node_7'"), ctx + " -> " + msg);
    for (auto const& part : parts)
        CHECK_CTX(contains(msg, part), ctx + ": expected '" + part + "' in: " + msg);
    if (gVerbose)
        std::printf("    %s -> %s\n", ctx.c_str(), msg.c_str());
}

//! Bytes of every serialized field, keyed by position, for exact comparisons.
std::vector<std::string> serializedBytes(flexiq::FlexiqPluginBase& p)
{
    PluginFieldCollection const* fc = p.getFieldsToSerialize();
    std::vector<std::string> out;
    if (fc == nullptr)
        return out;
    for (int32_t i = 0; i < fc->nbFields; ++i)
    {
        PluginField const& f = fc->fields[i];
        size_t elem = f.type == PluginFieldType::kINT8 ? 1 : 4;
        out.push_back(std::string(f.name) + ":" + std::to_string(static_cast<int>(f.type)) + ":"
            + std::string(static_cast<char const*>(f.data), elem * static_cast<size_t>(f.length)));
    }
    return out;
}

DynamicPluginTensorDesc tensorDesc(std::vector<int64_t> const& dims, DataType type, std::vector<int64_t> const& maxDims)
{
    DynamicPluginTensorDesc d{};
    d.desc.dims.nbDims = static_cast<int32_t>(dims.size());
    d.min.nbDims = d.max.nbDims = d.opt.nbDims = d.desc.dims.nbDims;
    for (size_t i = 0; i < dims.size(); ++i)
    {
        d.desc.dims.d[i] = dims[i];
        d.min.d[i] = dims[i] < 0 ? 1 : dims[i];
        d.opt.d[i] = d.max.d[i] = maxDims[i];
    }
    d.desc.type = type;
    d.desc.format = TensorFormat::kLINEAR;
    return d;
}

// ---- creators and round trips ------------------------------------------------------------------------
TEST_CASE(creatorIdentity)
{
    for (bool isConv : {true, false})
    {
        auto& c = creatorFor(isConv);
        CHECK(std::strcmp(c.getPluginName(), isConv ? "FlexiQConv" : "FlexiQGemm") == 0);
        CHECK(std::strcmp(c.getPluginVersion(), "6") == 0); // 5: integer activation steps; 6: one weight step per group
        CHECK(std::strcmp(c.getPluginNamespace(), "flexiq") == 0);
        PluginFieldCollection const* names = c.getFieldNames();
        CHECK(names != nullptr && names->nbFields == (isConv ? 29 : 25));
        for (int32_t i = 0; names != nullptr && i < names->nbFields; ++i)
            CHECK(std::strcmp(names->fields[i].name, flexiq::kFIELDS[i].name) == 0);
    }
}

void checkRoundTrip(bool isConv)
{
    TestLayer layer = makeLayer(isConv);
    // An INT8 edge on both sides, with an unsigned consumer (non-default values survive the trip).
    layer.inputInt8 = 1;
    layer.outputInt8 = 1;
    layer.outputScale = 0.0375F;
    layer.outputSigned = 0;
    auto built = create(isConv, layer.fields(), TensorRTPhase::kBUILD);
    CHECK(built != nullptr);
    if (!built)
        return;
    auto* core = static_cast<IPluginV3OneCore*>(built->getCapabilityInterface(PluginCapabilityType::kCORE));
    CHECK(core != nullptr && std::strcmp(core->getPluginName(), isConv ? "FlexiQConv" : "FlexiQGemm") == 0);
    CHECK(built->getCapabilityInterface(PluginCapabilityType::kBUILD) != nullptr);
    CHECK(built->getCapabilityInterface(PluginCapabilityType::kRUNTIME) != nullptr);
    std::vector<std::string> const first = serializedBytes(*built);
    CHECK(first.size() == (isConv ? 29u : 25u));
    // Runtime phase: re-create from exactly what getFieldsToSerialize returned.
    PluginFieldCollection const* fc = built->getFieldsToSerialize();
    std::vector<PluginField> const copy(fc->fields, fc->fields + fc->nbFields);
    auto runtime = create(isConv, copy, TensorRTPhase::kRUNTIME);
    CHECK(runtime != nullptr);
    if (!runtime)
        return;
    CHECK(serializedBytes(*runtime) == first);
    // The original node's values survive byte for byte.
    flexiq::LayerConfig const& cfg = runtime->config();
    CHECK(cfg.weightInt8 == layer.weightInt8 && cfg.weightInt4 == layer.weightInt4);
    CHECK(cfg.permutation == layer.permutation && cfg.weightStep == layer.weightStep);
    CHECK(cfg.weightScale == layer.weightScale && cfg.bias == layer.bias);
    CHECK(cfg.actStaticShift == layer.actStaticShift && cfg.layerIndex == layer.layerIndex);
    CHECK(cfg.kernelShape == layer.kernelShape && cfg.pads == layer.pads);
    CHECK(cfg.inputInt8 == 1 && cfg.outputInt8 == 1 && cfg.outputScale == 0.0375F && cfg.outputSigned == 0);
    FlexiqLayerArgs const args = cfg.layerArgs(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    CHECK(args.outputScale == 0.0375F && args.outputSigned == 0);
    // clone() shares the config and serializes identically.
    std::unique_ptr<IPluginV3> cloned(runtime->clone());
    CHECK(cloned != nullptr);
    if (cloned)
        CHECK(serializedBytes(*static_cast<flexiq::FlexiqPluginBase*>(cloned.get())) == first);
}

TEST_CASE(gemmRoundTrip)
{
    checkRoundTrip(false);
}

TEST_CASE(convRoundTrip)
{
    checkRoundTrip(true);
}

TEST_CASE(outScaleIsOneFloat32Product)
{
    TestLayer layer = makeLayer(false);
    auto p = create(false, layer.fields());
    CHECK(p != nullptr);
    if (!p)
        return;
    std::vector<float> const s = p->config().outScale();
    CHECK(s.size() == layer.weightScale.size());
    for (size_t n = 0; n < s.size(); ++n)
    {
        volatile float a = layer.actScale; // forbid any compile-time widening
        volatile float w = layer.weightScale[n];
        float const expected = a * w;
        CHECK(std::memcmp(&s[n], &expected, sizeof(float)) == 0);
        CHECK(static_cast<double>(s[n]) == static_cast<double>(static_cast<float>(
                  static_cast<double>(layer.actScale) * static_cast<double>(layer.weightScale[n]))));
    }
}

// ---- build-phase callbacks -----------------------------------------------------------------------------
TEST_CASE(outputDataTypes)
{
    TestLayer layer = makeLayer(true);
    auto p = create(true, layer.fields());
    CHECK(p != nullptr);
    if (!p)
        return;
    for (DataType t : {DataType::kFLOAT, DataType::kHALF})
    {
        DataType in[2] = {t, DataType::kINT32};
        DataType out[1] = {DataType::kINT8};
        CHECK(p->getOutputDataTypes(out, 1, in, 2) == 0 && out[0] == t);
    }
    DataType bad[2] = {DataType::kINT64, DataType::kINT32};
    DataType out[1];
    CHECK(p->getOutputDataTypes(out, 1, bad, 2) != 0);
    CHECK(contains(lastMessage(), "input x is INT64"));
    DataType badN4[2] = {DataType::kFLOAT, DataType::kINT64};
    CHECK(p->getOutputDataTypes(out, 1, badN4, 2) != 0);
    CHECK(contains(lastMessage(), "flexiq_max_4bit_ch is INT64"));
    CHECK(p->getOutputDataTypes(out, 1, badN4, 1) != 0);
    CHECK(p->getNbOutputs() == 1);
    DataType int8In[2] = {DataType::kINT8, DataType::kINT32};
    CHECK(p->getOutputDataTypes(out, 1, int8In, 2) != 0);
    CHECK(contains(lastMessage(), "input x is INT8") && contains(lastMessage(), "'input_int8' = 0"));
}

//! The output type follows input_int8 / output_int8 (docs/design.md §2.3); a wrong x type names the field.
TEST_CASE(outputDataTypesOfInt8Edges)
{
    struct Case
    {
        int32_t inputInt8, outputInt8;
        DataType x, want;
    };
    Case const cases[] = {
        {0, 1, DataType::kFLOAT, DataType::kINT8},
        {0, 1, DataType::kHALF, DataType::kINT8},
        {1, 0, DataType::kINT8, DataType::kFLOAT}, // a float output after an INT8 input is FP32
        {1, 1, DataType::kINT8, DataType::kINT8},
    };
    for (Case const& c : cases)
    {
        TestLayer layer = makeLayer(c.inputInt8 == 1);
        layer.inputInt8 = c.inputInt8;
        layer.outputInt8 = c.outputInt8;
        layer.outputScale = 0.02F;
        auto p = create(layer.isConv, layer.fields());
        CHECK(p != nullptr);
        if (!p)
            continue;
        DataType in[2] = {c.x, DataType::kINT32};
        DataType out[1] = {DataType::kBOOL};
        std::string const ctx = "input_int8 " + std::to_string(c.inputInt8) + " output_int8 " + std::to_string(c.outputInt8);
        CHECK_CTX(p->getOutputDataTypes(out, 1, in, 2) == 0 && out[0] == c.want, ctx);
        CHECK_CTX(p->outputTypeFor(c.x) == c.want, ctx);
        if (c.inputInt8 == 1)
        {
            for (DataType wrong : {DataType::kFLOAT, DataType::kHALF})
            {
                DataType bad[2] = {wrong, DataType::kINT32};
                CHECK_CTX(p->getOutputDataTypes(out, 1, bad, 2) != 0, ctx);
                CHECK_CTX(contains(lastMessage(), "'input_int8' = 1 expects an INT8 tensor")
                        && contains(lastMessage(), "node 'node_7'"),
                    ctx + ": " + lastMessage());
            }
        }
    }
}

//! supportsFormatCombination, configurePlugin and problemFor of INT8 edges.
TEST_CASE(formatCombinationsOfInt8Edges)
{
    TestLayer layer = makeLayer(false);
    layer.inputInt8 = 1;
    layer.outputInt8 = 1;
    layer.outputScale = 0.02F;
    layer.outputSigned = 0;
    auto p = create(false, layer.fields());
    TestLayer floatOut = makeLayer(false);
    floatOut.inputInt8 = 1;
    auto q = create(false, floatOut.fields());
    TestLayer int8Out = makeLayer(false);
    int8Out.outputInt8 = 1;
    int8Out.outputScale = 0.5F;
    auto r = create(false, int8Out.fields());
    CHECK(p != nullptr && q != nullptr && r != nullptr);
    if (!p || !q || !r)
        return;
    auto io = [](DataType x, DataType y) {
        std::vector<DynamicPluginTensorDesc> d(3);
        d[0] = tensorDesc({-1, 40}, x, {8, 40});
        d[1] = tensorDesc({3}, DataType::kINT32, {3});
        d[2] = tensorDesc({-1, 8}, y, {8, 8});
        return d;
    };
    auto all = [](flexiq::FlexiqPluginBase& plugin, std::vector<DynamicPluginTensorDesc> const& d) {
        return plugin.supportsFormatCombination(0, d.data(), 2, 1) && plugin.supportsFormatCombination(1, d.data(), 2, 1)
            && plugin.supportsFormatCombination(2, d.data(), 2, 1);
    };
    CHECK(all(*p, io(DataType::kINT8, DataType::kINT8)));
    CHECK(!all(*p, io(DataType::kFLOAT, DataType::kINT8)));
    CHECK(!all(*p, io(DataType::kINT8, DataType::kFLOAT)));
    CHECK(all(*q, io(DataType::kINT8, DataType::kFLOAT)));
    CHECK(!all(*q, io(DataType::kINT8, DataType::kHALF)));
    CHECK(!all(*q, io(DataType::kINT8, DataType::kINT8)));
    CHECK(all(*r, io(DataType::kFLOAT, DataType::kINT8)));
    CHECK(all(*r, io(DataType::kHALF, DataType::kINT8)));
    CHECK(!all(*r, io(DataType::kHALF, DataType::kHALF)));
    CHECK(!all(*r, io(DataType::kINT8, DataType::kINT8)));

    auto ok = io(DataType::kINT8, DataType::kINT8);
    std::vector<DynamicPluginTensorDesc> in(ok.begin(), ok.begin() + 2);
    std::vector<DynamicPluginTensorDesc> out(ok.begin() + 2, ok.end());
    CHECK(p->configurePlugin(in.data(), 2, out.data(), 1) == 0);
    out[0].desc.type = DataType::kFLOAT;
    CHECK(p->configurePlugin(in.data(), 2, out.data(), 1) != 0);
    CHECK(contains(lastMessage(), "output is FP32, expected INT8") && contains(lastMessage(), "'output_int8' = 1"));
    out[0].desc.type = DataType::kINT8;
    in[0].desc.type = DataType::kHALF;
    CHECK(p->configurePlugin(in.data(), 2, out.data(), 1) != 0);
    CHECK(contains(lastMessage(), "input x is FP16") && contains(lastMessage(), "'input_int8' = 1"));

    Dims x2{};
    x2.nbDims = 2;
    x2.d[0] = 5;
    x2.d[1] = 40;
    FlexiqProblem const pr = p->problemFor(x2, DataType::kINT8);
    CHECK(pr.dataType == kFLEXIQ_INT8 && pr.outputType == kFLEXIQ_INT8 && pr.batch == 5);
    FlexiqProblem const pq = q->problemFor(x2, DataType::kINT8);
    CHECK(pq.dataType == kFLEXIQ_INT8 && pq.outputType == kFLEXIQ_FP32);
    FlexiqProblem const prr = r->problemFor(x2, DataType::kHALF);
    CHECK(prr.dataType == kFLEXIQ_FP16 && prr.outputType == kFLEXIQ_INT8);
    bool threw = false;
    try
    {
        static_cast<void>(p->problemFor(x2, DataType::kFLOAT));
    }
    catch (flexiq::FlexiqPluginError const& e)
    {
        threw = contains(e.what(), "'input_int8' = 1");
    }
    CHECK(threw);
    // INT8 I/O needs no more workspace than float I/O.
    auto fin = io(DataType::kFLOAT, DataType::kFLOAT);
    CHECK(p->getWorkspaceSize(ok.data(), 2, ok.data() + 2, 1) == r->getWorkspaceSize(fin.data(), 2, fin.data() + 2, 1));
}

//! The kernels' own problem check: an INT8 output needs output_scale > 0, types must be known.
TEST_CASE(kernelProblemCheckOfInt8Io)
{
    TestLayer layer = makeLayer(false);
    auto p = create(false, layer.fields());
    CHECK(p != nullptr);
    if (!p)
        return;
    flexiq::LayerConfig const& cfg = p->config();
    std::vector<float> const outScale = cfg.outScale();
    FlexiqLayerArgs args = cfg.layerArgs(cfg.permutation.data(), cfg.weightInt8.data(), cfg.weightInt4.data(),
        cfg.weightStep.data(), outScale.data(), cfg.bias.data(), cfg.actStaticShift.data());
    std::vector<int8_t> x(40), y(8);
    FlexiqProblem pr{1, 1, 1, kFLEXIQ_INT8, kFLEXIQ_INT8, x.data(), y.data(), nullptr, nullptr};
    char why[256] = {0};
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_SUCCESS);
    args.outputScale = 0.0F;
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "INT8 output needs output_scale > 0"));
    pr.outputType = kFLEXIQ_FP32;
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_SUCCESS); // unused when the output is float
    pr.dataType = 4; // 3 is a workspace edge (docs/design.md §2.8)
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "input data type"));
    pr.dataType = kFLEXIQ_FP32;
    pr.outputType = -1;
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "output data type"));
    pr.outputType = kFLEXIQ_FP32;
    pr.batch = INT32_MAX / (args.paddedChannels / args.groupSize) + 1; // the pipelined kernels' int32 (pixel, group)
    CHECK(flexiqCanImplementProblem(&args, &pr, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "input pixels x channel groups must fit int32"));
    pr.batch = 1;
    args.outputScale = std::numeric_limits<float>::infinity();
    CHECK(flexiqCanImplement(&args, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "output_scale must be finite"));
    args.outputScale = 1.0F;
    args.outputSigned = 2;
    CHECK(flexiqCanImplement(&args, why, sizeof(why)) == kFLEXIQ_ERROR_INVALID_ARGS);
    CHECK(contains(why, "output_signed must be 0 or 1"));
}

TEST_CASE(formatCombinations)
{
    TestLayer layer = makeLayer(false);
    auto p = create(false, layer.fields());
    CHECK(p != nullptr);
    if (!p)
        return;
    auto io = [](DataType x, DataType n4, DataType y, TensorFormat fx) {
        std::vector<DynamicPluginTensorDesc> d(3);
        d[0] = tensorDesc({-1, 40}, x, {8, 40});
        d[0].desc.format = fx;
        d[1] = tensorDesc({3}, n4, {3});
        d[2] = tensorDesc({-1, 8}, y, {8, 8});
        return d;
    };
    auto all = [&](std::vector<DynamicPluginTensorDesc> const& d) {
        return p->supportsFormatCombination(0, d.data(), 2, 1) && p->supportsFormatCombination(1, d.data(), 2, 1)
            && p->supportsFormatCombination(2, d.data(), 2, 1);
    };
    CHECK(all(io(DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR)));
    CHECK(all(io(DataType::kHALF, DataType::kINT32, DataType::kHALF, TensorFormat::kLINEAR)));
    CHECK(!all(io(DataType::kHALF, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR)));
    CHECK(!all(io(DataType::kINT8, DataType::kINT32, DataType::kINT8, TensorFormat::kLINEAR)));
    CHECK(!all(io(DataType::kFLOAT, DataType::kINT64, DataType::kFLOAT, TensorFormat::kLINEAR)));
    CHECK(!all(io(DataType::kHALF, DataType::kINT32, DataType::kHALF, TensorFormat::kCHW2)));
    auto d = io(DataType::kFLOAT, DataType::kINT32, DataType::kFLOAT, TensorFormat::kLINEAR);
    CHECK(!p->supportsFormatCombination(3, d.data(), 2, 1));
    CHECK(!p->supportsFormatCombination(0, d.data(), 1, 1));
}

TEST_CASE(configureAndWorkspace)
{
    TestLayer layer = makeLayer(true); // C_in 40 -> C_pad 64, 3x3, pad 1
    auto p = create(true, layer.fields());
    CHECK(p != nullptr);
    if (!p)
        return;
    std::vector<DynamicPluginTensorDesc> in = {
        tensorDesc({-1, 40, -1, -1}, DataType::kHALF, {16, 40, 32, 32}), tensorDesc({4}, DataType::kINT32, {4})};
    std::vector<DynamicPluginTensorDesc> out = {tensorDesc({-1, 8, -1, -1}, DataType::kHALF, {16, 8, 32, 32})};
    CHECK(p->configurePlugin(in.data(), 2, out.data(), 1) == 0);
    size_t const ws = p->getWorkspaceSize(in.data(), 2, out.data(), 1);
    // codes8 rows*C_pad + codes4 rows*C_pad/2 + shifts rows*groups, rows = 16*32*32, each 256-aligned.
    size_t const rows = 16 * 32 * 32;
    CHECK(ws >= rows * 64 + rows * 32 + rows * 2);
    FlexiqProblem const pr = p->problemFor(in[0].max, DataType::kHALF);
    FlexiqLayerArgs const args = p->config().layerArgs(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    CHECK(ws == flexiqGetWorkspaceSize(&args, &pr));
    CHECK(pr.batch == 16 && pr.height == 32 && pr.width == 32 && pr.dataType == kFLEXIQ_FP16);

    auto wrongC = in;
    wrongC[0] = tensorDesc({-1, 41, -1, -1}, DataType::kHALF, {16, 41, 32, 32});
    CHECK(p->configurePlugin(wrongC.data(), 2, out.data(), 1) != 0);
    CHECK(contains(lastMessage(), "'in_channels' = 40"));
    auto shortL = in;
    shortL[1] = tensorDesc({1}, DataType::kINT32, {1}); // layer_index 1 needs L >= 2
    CHECK(p->configurePlugin(shortL.data(), 2, out.data(), 1) != 0);
    CHECK(contains(lastMessage(), "'layer_index' = 1") && contains(lastMessage(), "length 1"));
    auto rank3 = in;
    rank3[0] = tensorDesc({-1, 40, 9}, DataType::kHALF, {2, 40, 9});
    CHECK(p->configurePlugin(rank3.data(), 2, out.data(), 1) != 0);
    CHECK(contains(lastMessage(), "rank 4"));
}

TEST_CASE(problemShapes)
{
    TestLayer g = makeLayer(false);
    auto gemm = create(false, g.fields());
    TestLayer c = makeLayer(true);
    c.pads = {0, 0, 0, 0};
    auto conv = create(true, c.fields());
    CHECK(gemm != nullptr && conv != nullptr);
    if (!gemm || !conv)
        return;
    Dims x3{};
    x3.nbDims = 3;
    x3.d[0] = 4;
    x3.d[1] = 197;
    x3.d[2] = 40;
    FlexiqProblem const p = gemm->problemFor(x3, DataType::kFLOAT);
    CHECK(p.batch == 4 * 197 && p.height == 1 && p.width == 1 && p.dataType == kFLEXIQ_FP32);
    Dims tiny{};
    tiny.nbDims = 4;
    tiny.d[0] = 1;
    tiny.d[1] = 40;
    tiny.d[2] = 2;
    tiny.d[3] = 2; // 3x3 kernel without padding does not fit
    bool threw = false;
    try
    {
        static_cast<void>(conv->problemFor(tiny, DataType::kFLOAT));
    }
    catch (flexiq::FlexiqPluginError const& e)
    {
        threw = contains(e.what(), "kernel footprint");
    }
    CHECK(threw);
}

// ---- rejected fields ------------------------------------------------------------------------------------
TEST_CASE(rejectsWrongTypeOfEveryField)
{
    for (bool isConv : {true, false})
    {
        TestLayer layer = makeLayer(isConv);
        for (auto const& f : layer.fields())
        {
            auto fields = layer.fields();
            PluginField& target = fieldByName(fields, f.name);
            bool const isArray = f.type == PluginFieldType::kINT8 || target.length != 1 || std::string(f.name) == "pads";
            // int64/uint8/bool tensors arrive as kFLOAT16 (docs/design.md §6); scalars get the other scalar type.
            target.type = isArray ? PluginFieldType::kFLOAT16
                                  : (f.type == PluginFieldType::kINT32 ? PluginFieldType::kFLOAT32 : PluginFieldType::kINT32);
            expectRejected(isConv, fields, {"'" + std::string(f.name) + "'", "has type"}, std::string("type of ") + f.name);
        }
        auto fields = layer.fields();
        fieldByName(fields, "weight_int8").type = PluginFieldType::kINT64;
        expectRejected(isConv, fields, {"'weight_int8'", "kINT64", "expected kINT8"}, "int64 weights");
    }
}

TEST_CASE(rejectsWrongLengthOfEveryField)
{
    for (bool isConv : {true, false})
    {
        TestLayer layer = makeLayer(isConv);
        for (auto const& f : layer.fields())
        {
            auto fields = layer.fields();
            PluginField& target = fieldByName(fields, f.name);
            target.length = target.length == 1 ? 0 : target.length - 1;
            expectRejected(isConv, fields, {"'" + std::string(f.name) + "' has", "elements, expected"},
                std::string("length of ") + f.name);
        }
    }
}

TEST_CASE(rejectsMissingUnknownAndDuplicateFields)
{
    for (bool isConv : {true, false})
    {
        TestLayer layer = makeLayer(isConv);
        for (auto const& f : layer.fields())
        {
            expectRejected(isConv, flexiq::test::withoutField(layer.fields(), f.name),
                {"required plugin field '" + std::string(f.name) + "' is missing"}, std::string("missing ") + f.name);
        }
        auto extra = layer.fields();
        int32_t const one = 1;
        extra.emplace_back("ratio", &one, PluginFieldType::kINT32, 1);
        expectRejected(isConv, extra, {"unknown plugin field 'ratio'"}, "unknown field");
        auto dup = layer.fields();
        dup.push_back(dup.front());
        expectRejected(isConv, dup, {"'layer_index' is given twice"}, "duplicate");
        auto unnamed = layer.fields();
        unnamed[3].name = nullptr;
        expectRejected(isConv, unnamed, {"#3 has no name"}, "null name");
    }
    // Conv-only fields are not FlexiQGemm fields.
    TestLayer g = makeLayer(false);
    auto fields = g.fields();
    int32_t const ks[2] = {1, 1};
    fields.emplace_back("kernel_shape", ks, PluginFieldType::kINT32, 2);
    expectRejected(false, fields, {"unknown plugin field 'kernel_shape'", "FlexiQGemm"}, "conv field on gemm");
}

TEST_CASE(rejectsOutOfRangeValues)
{
    struct Case
    {
        bool isConv;
        std::function<void(TestLayer&)> mutate;
        std::vector<std::string> parts;
        char const* name;
    };
    float const nan = std::numeric_limits<float>::quiet_NaN();
    float const inf = std::numeric_limits<float>::infinity();
    std::vector<Case> const cases = {
        {false, [](TestLayer& t) { t.layerIndex = -1; }, {"'layer_index' = -1", "out of range"}, "layer_index"},
        {false, [](TestLayer& t) { t.groupSize = 48; }, {"'group_size' = 48", "32 or 64"}, "group_size 48"},
        {false, [](TestLayer& t) { t.groupSize = 16; }, {"'group_size' = 16", "out of range [32, 64]"}, "group 16"},
        {false, [](TestLayer& t) { t.inChannels = 0; }, {"'in_channels' = 0"}, "in_channels"},
        {false, [](TestLayer& t) { t.outChannels = -2; }, {"'out_channels' = -2"}, "out_channels"},
        {false, [](TestLayer& t) { t.actScale = 0.0F; }, {"'act_scale' = 0", "> 0"}, "act_scale 0"},
        {false, [=](TestLayer& t) { t.actScale = nan; }, {"'act_scale' = nan"}, "act_scale nan"},
        {false, [](TestLayer& t) { t.actSigned = 2; }, {"'act_signed' = 2"}, "act_signed"},
        {false, [](TestLayer& t) { t.actShiftMode = 3; }, {"'act_shift_mode' = 3"}, "act_shift_mode"},
        {false, [](TestLayer& t) { t.activation = 10; }, {"'activation' = 10", "[0, 9]"}, "activation"},
        {false, [=](TestLayer& t) { t.alpha = inf; }, {"'activation_alpha' = inf"}, "alpha"},
        {false, [](TestLayer& t) { t.inputInt8 = 3; }, {"'input_int8' = 3", "[0, 2]"}, "input_int8"},
        {false, [](TestLayer& t) { t.outputInt8 = -1; }, {"'output_int8' = -1", "[0, 2]"}, "output_int8"},
        {false, [](TestLayer& t) { t.readerActShiftMode = 2; }, {"'reader_act_shift_mode' = 2", "[0, 1]"},
            "reader_act_shift_mode"},
        {false, [](TestLayer& t) { t.readerLayerIndex = -1; }, {"'reader_layer_index' = -1"}, "reader_layer_index"},
        {false, [](TestLayer& t) { t.outputSigned = 3; }, {"'output_signed' = 3", "[0, 1]"}, "output_signed"},
        {false, [](TestLayer& t) { t.outputInt8 = 1; t.outputScale = 0.0F; }, {"'output_scale' = 0", "> 0"},
            "output_scale 0"},
        {false, [](TestLayer& t) { t.outputScale = -0.5F; }, {"'output_scale' = -0.5", "> 0"}, "output_scale < 0"},
        {false, [=](TestLayer& t) { t.outputInt8 = 1; t.outputScale = nan; }, {"'output_scale' = nan", "finite"},
            "output_scale nan"},
        {true, [=](TestLayer& t) { t.outputScale = inf; }, {"'output_scale' = inf"}, "output_scale inf"},
        {false, [](TestLayer& t) { t.actStaticShift[1] = 5; }, {"'act_static_shift'[1] = 5", "[0, 4]"}, "static"},
        {false, [](TestLayer& t) { t.weightInt8[5] = -128; }, {"'weight_int8'[5] = -128", "[-127, 127]"}, "w8"},
        {false, [](TestLayer& t) { t.weightStep[1] = 0; }, {"'weight_step'[1] = 0", "[1, 16]"}, "weight_step 0"},
        {true, [](TestLayer& t) { t.weightStep[0] = 17; }, {"'weight_step'[0] = 17", "[1, 16]"}, "weight_step 17"},
        {false, [](TestLayer& t) { t.weightScale[3] = 0.0F; }, {"'weight_scale'[3] = 0"}, "weight_scale 0"},
        {false, [=](TestLayer& t) { t.bias[0] = nan; }, {"'bias'[0] = nan"}, "bias nan"},
        {false, [](TestLayer& t) { t.permutation[4] = t.permutation[5]; }, {"'permutation' is not a permutation"},
            "perm dup"},
        {false, [](TestLayer& t) { t.permutation[0] = 64; }, {"'permutation'[0] = 64", "C_pad = 64"}, "perm range"},
        {false, [](TestLayer& t) { t.permutation[0] = -3; }, {"'permutation'[0] = -3"}, "perm negative"},
        {false, [](TestLayer& t) { std::swap(t.permutation[0], t.permutation[50]); },
            {"'permutation'[0]", "zero-padding channel", "must come last"}, "perm padding"},
        {true, [](TestLayer& t) { t.kernelShape[1] = 0; }, {"'kernel_shape'[1] = 0"}, "kernel_shape"},
        {true, [](TestLayer& t) { t.strides[0] = 0; }, {"'strides'[0] = 0"}, "strides"},
        {true, [](TestLayer& t) { t.pads[3] = -1; }, {"'pads'[3] = -1"}, "pads"},
        {true, [](TestLayer& t) { t.dilations[0] = -1; }, {"'dilations'[0] = -1"}, "dilations"},
    };
    for (auto const& c : cases)
    {
        TestLayer layer = makeLayer(c.isConv);
        c.mutate(layer);
        expectRejected(c.isConv, layer.fields(), c.parts, c.name);
    }
}

TEST_CASE(rejectsReductionLengthOverflow)
{
    // Signed: K = 6*6*4096 = 147456 > 131071. Unsigned: K = 6*6*2048 = 73728 > 66311 (fine when signed).
    TestLayer s = makeLayer(true);
    s.kernelShape = {6, 6};
    s.inChannels = 4096;
    expectRejected(true, s.fields(), {"K = R*S*C_pad = 6*6*4096 = 147456", "131071", "MAX_K_SIGNED"}, "K signed");
    TestLayer u = makeLayer(true);
    u.kernelShape = {6, 6};
    u.inChannels = 2048;
    u.actSigned = 0;
    expectRejected(true, u.fields(), {"73728", "MAX_K_UNSIGNED"}, "K unsigned");
    u.actSigned = 1;
    u.outChannels = 1;
    u.fill();
    CHECK(create(true, u.fields()) != nullptr); // the same K is fine for signed codes
    TestLayer g = makeLayer(false);
    g.inChannels = 131072 + 1;
    expectRejected(false, g.fields(), {"exceeds 131071"}, "gemm K");
    // R*S*C_pad beyond int64 (a signed-overflow the fuzzer found): rejected, no undefined behaviour.
    TestLayer huge = makeLayer(true);
    huge.kernelShape = {std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::max()};
    expectRejected(true, huge.fields(), {"K = R*S*C_pad = 2147483647*2147483647*64 >= 4611686014132420609",
        "exceeds 131071"}, "K beyond int64");
}

TEST_CASE(rejectsMalformedCollections)
{
    size_t const before = gFinder.logger.messages.size();
    CHECK(creatorFor(false).createPlugin("node_7", nullptr, TensorRTPhase::kBUILD) == nullptr);
    CHECK(gFinder.logger.messages.size() == before + 1 && contains(lastMessage(), "no plugin fields"));
    PluginFieldCollection bad{-1, nullptr};
    CHECK(creatorFor(true).createPlugin("node_7", &bad, TensorRTPhase::kBUILD) == nullptr);
    CHECK(contains(lastMessage(), "malformed"));
    TestLayer layer = makeLayer(false);
    auto fields = layer.fields();
    fieldByName(fields, "bias").data = nullptr;
    expectRejected(false, fields, {"'bias' has length 24 but no data"}, "null data");
}

} // namespace

int main(int argc, char** argv)
{
    flexiq::setPluginLoggerFinder(&gFinder);
    return flexiq::testing::runRegisteredTests(argc, argv);
}
