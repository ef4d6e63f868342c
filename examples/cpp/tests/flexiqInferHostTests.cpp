/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * CPU tests of flexiq_infer's host logic: the ratio table (ratio -> vector, nested prefixes, every
 * rejected table with a message naming the file and the field), the command line and the engine
 * path checks. No TensorRT runtime and no GPU.
 *
 * Usage: flexiq_infer_host_tests [-v] [name-substring]   exit status 0 = all passed.
 */
#include "flexiqInferErrors.h"
#include "flexiqInferOptions.h"
#include "flexiqRatioTable.h"
#include "flexiqTestHarness.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <unistd.h>
#include <vector>

using flexiq::app::InputError;
using flexiq::app::Options;
using flexiq::app::RatioTable;
using flexiq::app::UsageError;
using Json = nlohmann::json;

using flexiq::testing::gVerbose;

namespace
{
bool contains(std::string const& s, std::string const& part)
{
    return s.find(part) != std::string::npos;
}

//! `fn` must throw E whose message contains every part.
template <typename E>
void expectThrow(std::function<void()> const& fn, std::vector<std::string> const& parts, std::string const& ctx)
{
    try
    {
        fn();
        CHECK_CTX(false, ctx + ": nothing was thrown");
    }
    catch (E const& e)
    {
        std::string const msg = e.what();
        for (auto const& p : parts)
            CHECK_CTX(contains(msg, p), ctx + ": expected '" + p + "' in: " + msg);
        if (gVerbose)
            std::printf("    %s -> %s\n", ctx.c_str(), msg.c_str());
    }
    catch (std::exception const& e)
    {
        CHECK_CTX(false, ctx + ": wrong exception type: " + e.what());
    }
}

// ---- a small table: 3 layers, G = 32 -------------------------------------------------------------------
//   layer 0: 2 groups (64 channels), layer 1: 1 group, layer 2: 3 groups (in 70 -> padded 96)
Json smallTable()
{
    Json t;
    t["schema"] = "flexiq_trt.ratio_table/1";
    t["group_size"] = 32;
    t["layers"] = Json::array();
    std::vector<std::vector<double>> const macs = {{100.0, 50.0}, {25.0}, {200.0, 25.0, 0.0}};
    std::vector<int> const inCh = {64, 32, 70};
    for (size_t i = 0; i < macs.size(); ++i)
    {
        double sum = 0.0;
        for (double m : macs[i])
            sum += m;
        t["layers"].push_back({{"name", "conv" + std::to_string(i)}, {"op_type", "FlexiQConv"},
            {"layer_index", static_cast<int>(i)}, {"in_channels", inCh[i]},
            {"padded_channels", static_cast<int>(macs[i].size()) * 32}, {"macs", sum}, {"group_macs", macs[i]}});
    }
    // Total 400 MACs; cumulative: 200, 300, 350, 375, 400, 400.
    t["order"] = Json::array({{2, 0}, {0, 0}, {0, 1}, {1, 0}, {2, 1}, {2, 2}});
    t["ladder"] = {0.0, 0.5, 1.0};
    t["selector"] = "greedy";
    t["extra"] = Json::object();
    t["num_layers"] = 3;
    t["ladder_n4"] = {{"0.0000", {0, 0, 0}}, {"0.5000", {0, 0, 32}}, {"1.0000", {64, 32, 64}}};
    return t;
}

RatioTable parse(Json const& j)
{
    return RatioTable::fromJson(j.dump(), "t.flexiq.json");
}

void expectBadTable(Json const& j, std::vector<std::string> parts, std::string const& ctx)
{
    parts.push_back("t.flexiq.json: ");
    expectThrow<InputError>([&] { parse(j); }, parts, ctx);
}

// ---- ratio -> vector ----------------------------------------------------------------------------------
TEST_CASE(vectorFollowsThePriorityOrder)
{
    RatioTable const t = parse(smallTable());
    CHECK(t.numLayers() == 3 && t.groupSize() == 32 && t.order().size() == 6);
    struct Case
    {
        double ratio;
        size_t prefix;
        std::vector<int32_t> n4;
    };
    std::vector<Case> const cases = {
        {0.0, 0, {0, 0, 0}},
        {1e-9, 1, {0, 0, 32}},     // any positive ratio takes the first item
        {0.5, 1, {0, 0, 32}},      // 200 of 400 MACs: exactly the first item (tolerance 1e-12)
        {0.5000001, 2, {32, 0, 32}},
        {0.75, 2, {32, 0, 32}},
        {0.875, 3, {64, 0, 32}},
        {0.9, 4, {64, 32, 32}},
        {1.0, 5, {64, 32, 64}},    // 400 reached at item 5; the zero-MAC group after it stays 8-bit
    };
    for (auto const& c : cases)
    {
        std::string const ctx = "ratio " + std::to_string(c.ratio);
        CHECK_CTX(t.prefixLength(c.ratio) == c.prefix, ctx + " prefix " + std::to_string(t.prefixLength(c.ratio)));
        CHECK_CTX(t.vector(c.ratio) == c.n4, ctx);
    }
    CHECK(std::fabs(t.achievedRatio({64, 32, 64}) - 1.0) < 1e-15);
    CHECK(std::fabs(t.achievedRatio({32, 0, 32}) - 0.75) < 1e-15);
    CHECK(t.achievedRatio({9999, 0, 0}) == 150.0 / 400.0); // clamped to padded channels
    expectThrow<InputError>([&] { t.achievedRatio({0, 0}); }, {"2 entries", "L = 3"}, "achieved length");
}

TEST_CASE(vectorsAreNestedPrefixes)
{
    RatioTable const t = parse(smallTable());
    std::vector<int32_t> prev(3, 0);
    for (int i = 0; i <= 1000; ++i)
    {
        std::vector<int32_t> const v = t.vector(i / 1000.0);
        for (size_t l = 0; l < v.size(); ++l)
        {
            CHECK_CTX(v[l] >= prev[l] && v[l] % 32 == 0 && v[l] <= t.layers()[l].paddedChannels, std::to_string(i));
        }
        prev = v;
    }
}

TEST_CASE(rejectsBadRatios)
{
    RatioTable const t = parse(smallTable());
    double const nan = std::numeric_limits<double>::quiet_NaN();
    for (double r : {-0.01, 1.0001, nan})
        expectThrow<UsageError>([&] { t.vector(r); }, {"ratio must be a number in [0, 1]"}, "ratio");
}

TEST_CASE(emptyOrderGivesZeros)
{
    Json j = smallTable();
    j["order"] = Json::array();
    j.erase("ladder_n4");
    RatioTable const t = parse(j);
    CHECK(t.vector(1.0) == std::vector<int32_t>({0, 0, 0}) && t.prefixLength(1.0) == 0);
}

TEST_CASE(allZeroMacsTakeTheFirstItem)
{
    // numpy.searchsorted(cum = [0, ...], 0) = 0 -> prefix 1 for any positive ratio, as in ratios.py.
    Json j = smallTable();
    for (auto& l : j["layers"])
        for (auto& m : l["group_macs"])
            m = 0.0;
    j.erase("ladder_n4");
    RatioTable const t = parse(j);
    CHECK(t.prefixLength(0.3) == 1 && t.vector(1.0) == std::vector<int32_t>({0, 0, 32}));
    CHECK(t.prefixLength(0.0) == 0 && t.achievedRatio({64, 32, 96}) == 0.0);
}

// ---- G per layer (docs/design.md §2.2): table group_size 0, each layer its own -----------------------------
//   smallTable with layer 0 at G = 64: one group of 64 channels (150 MACs); layers 1 and 2 stay at G = 32.
Json mixedTable()
{
    Json t = smallTable();
    t["group_size"] = 0;
    t["layers"][0]["group_size"] = 64;
    t["layers"][0]["group_macs"] = {150.0};
    t["layers"][1]["group_size"] = 32;
    t["layers"][2]["group_size"] = 32;
    // Cumulative: 200, 350, 375, 400, 400.
    t["order"] = Json::array({{2, 0}, {0, 0}, {1, 0}, {2, 1}, {2, 2}});
    t["ladder_n4"] = {{"0.0000", {0, 0, 0}}, {"0.5000", {0, 0, 32}}, {"1.0000", {64, 32, 64}}};
    return t;
}

TEST_CASE(perLayerGroupSizes)
{
    RatioTable const t = parse(mixedTable());
    CHECK(t.groupSize() == 0 && t.layers()[0].groupSize == 64 && t.layers()[1].groupSize == 32);
    CHECK(t.vector(0.5) == std::vector<int32_t>({0, 0, 32}));
    CHECK(t.vector(0.6) == std::vector<int32_t>({64, 0, 32})); // one item of layer 0 is 64 channels
    CHECK(t.vector(0.9) == std::vector<int32_t>({64, 32, 32}));
    CHECK(t.vector(1.0) == std::vector<int32_t>({64, 32, 64}));
    CHECK(std::fabs(t.achievedRatio({64, 0, 32}) - 350.0 / 400.0) < 1e-15);
    CHECK(t.achievedRatio({63, 0, 0}) == 0.0); // below one 64-channel group: 8-bit
    std::vector<int32_t> prev(3, 0);
    for (int i = 0; i <= 200; ++i)
    {
        std::vector<int32_t> const v = t.vector(i / 200.0);
        for (size_t l = 0; l < v.size(); ++l)
            CHECK_CTX(v[l] >= prev[l] && v[l] % t.layers()[l].groupSize == 0, std::to_string(i));
        prev = v;
    }
}

TEST_CASE(tablesWithoutPerLayerGroupSizeUseTheTables)
{
    RatioTable const old = parse(smallTable()); // written before G was per layer
    for (auto const& l : old.layers())
        CHECK(l.groupSize == 32);
    Json j = smallTable();
    for (auto& l : j["layers"])
        l["group_size"] = 32; // uniform tables written now carry both
    CHECK(parse(j).vector(0.9) == old.vector(0.9));
}

TEST_CASE(rejectsBadPerLayerGroupSizes)
{
    struct Case
    {
        std::function<void(Json&)> mutate;
        std::vector<std::string> parts;
        char const* name;
    };
    std::vector<Case> const cases = {
        {[](Json& j) { j["layers"][1].erase("group_size"); }, {"required field 'layers[1].group_size' is missing"},
            "missing with table 0"},
        {[](Json& j) { j["layers"][2]["group_size"] = 48; }, {"'layers[2].group_size' = 48", "(32 or 64)"}, "48"},
        {[](Json& j) { j["layers"][2]["group_size"] = "32"; }, {"'layers[2].group_size' must be an integer"}, "str"},
        {[](Json& j) { j["layers"][2]["group_size"] = 0; }, {"'layers[2].group_size' = 0 is out of range"}, "zero"},
        {[](Json& j) { j["layers"][0]["group_size"] = 32; }, {"'layers[0].group_macs' has 1 entries",
            "expected padded_channels / group_size = 2"}, "group count under the layer's G"},
        {[](Json& j) { j["layers"][2]["group_size"] = 64; }, {"'layers[2].padded_channels' = 96",
            "multiple of group_size 64"}, "padding under the layer's G"},
        {[](Json& j) { j["group_size"] = 32; }, {"'layers[0].group_size' = 64 differs from the table's 'group_size' 32"},
            "uniform table, other layer G"},
        {[](Json& j) { j["group_size"] = -1; }, {"'group_size' = -1 is out of range"}, "negative table G"},
    };
    for (auto const& c : cases)
    {
        Json j = mixedTable();
        c.mutate(j);
        expectBadTable(j, c.parts, c.name);
    }
}

// ---- rejected tables -----------------------------------------------------------------------------------
TEST_CASE(rejectsMissingKeys)
{
    for (char const* key : {"schema", "group_size", "layers", "order", "ladder"})
    {
        Json j = smallTable();
        j.erase(key);
        expectBadTable(j, {std::string("required field '") + key + "' is missing"}, key);
    }
    for (char const* key : {"name", "op_type", "layer_index", "in_channels", "padded_channels", "macs", "group_macs"})
    {
        Json j = smallTable();
        j["layers"][1].erase(key);
        expectBadTable(j, {std::string("required field 'layers[1].") + key + "' is missing"}, key);
    }
}

TEST_CASE(rejectsWrongTypes)
{
    struct Case
    {
        std::function<void(Json&)> mutate;
        std::vector<std::string> parts;
        char const* name;
    };
    std::vector<Case> const cases = {
        {[](Json& j) { j["group_size"] = "32"; }, {"'group_size' must be an integer, got string"}, "group_size str"},
        {[](Json& j) { j["group_size"] = 32.0; }, {"'group_size' must be an integer, got number"}, "group_size float"},
        {[](Json& j) { j["group_size"] = 48; }, {"'group_size' = 48", "32 or 64, or 0 = per layer"}, "group_size 48"},
        {[](Json& j) { j["schema"] = "other/2"; }, {"'schema' is 'other/2'"}, "schema"},
        {[](Json& j) { j["schema"] = 1; }, {"'schema' must be a string"}, "schema type"},
        {[](Json& j) { j["layers"] = Json::object(); }, {"'layers' must be an array, got object"}, "layers"},
        {[](Json& j) { j["layers"][0] = 7; }, {"'layers[0]' must be an object, got number"}, "layer type"},
        {[](Json& j) { j["layers"][2]["group_macs"][1] = "x"; }, {"'layers[2].group_macs[1]' must be a number"},
            "group_macs entry"},
        {[](Json& j) { j["layers"][2]["group_macs"][1] = -1.0; }, {"'layers[2].group_macs[1]' = -1.0", ">= 0"},
            "negative macs"},
        {[](Json& j) { j["layers"][2]["group_macs"] = {1.0, 2.0}; }, {"'layers[2].group_macs' has 2 entries",
            "expected padded_channels / group_size = 3"}, "group count"},
        {[](Json& j) { j["layers"][1]["layer_index"] = 2; }, {"'layers[1].layer_index' = 2, expected 1"}, "index"},
        {[](Json& j) { j["layers"][1]["padded_channels"] = 40; }, {"'layers[1].padded_channels' = 40",
            "multiple of group_size 32"}, "padded"},
        {[](Json& j) { j["layers"][1]["name"] = Json(); }, {"'layers[1].name' must be a string, got null"}, "name"},
        {[](Json& j) { j["order"][3] = {1, 0, 0}; }, {"'order[3]' must be a [layer, group] pair, got 3 entries"},
            "order triple"},
        {[](Json& j) { j["order"][3] = 5; }, {"'order[3]' must be an array, got number"}, "order item"},
        {[](Json& j) { j["order"][3][0] = 3; }, {"'order[3][0]' = 3 is out of range [0, 2]"}, "order layer"},
        {[](Json& j) { j["order"][3][1] = 1; }, {"'order[3][1]' = 1 is out of range [0, 0]"}, "order group"},
        {[](Json& j) { j["order"][3][1] = -1; }, {"'order[3][1]' = -1 is out of range"}, "order negative"},
        {[](Json& j) { j["order"][3] = {0, 1}; }, {"'order[3]' = [0, 1] repeats an earlier item"}, "order dup"},
        {[](Json& j) { j["order"][4] = {2, 2}; j["order"][5] = {2, 1}; },
            {"'order[4]' = [2, 2] comes before group 1 of layer 2", "permutation order"}, "order within a layer"},
        {[](Json& j) { j["ladder"][1] = 1.5; }, {"'ladder[1]' = 1.5 is not a ratio"}, "ladder range"},
        {[](Json& j) { j["ladder"][1] = "half"; }, {"'ladder[1]' must be a number, got string"}, "ladder type"},
        {[](Json& j) { j["ladder_n4"] = Json::array(); }, {"'ladder_n4' must be an object"}, "ladder_n4 type"},
        {[](Json& j) { j["ladder_n4"]["0.5000"][2] = 64; }, {"'ladder_n4['0.5000'][2]' = 64 but 'order' gives 32"},
            "ladder_n4 inconsistent"},
        {[](Json& j) { j["ladder_n4"]["0.2500"] = {0, 0, 0}; }, {"key '0.2500', which is no ratio of 'ladder'"},
            "ladder_n4 key"},
        {[](Json& j) { j["ladder_n4"]["0.5000"][2] = 128; }, {"'ladder_n4['0.5000'][2]' = 128 is out of range [0, 96]"},
            "ladder_n4 range"},
    };
    for (auto const& c : cases)
    {
        Json j = smallTable();
        c.mutate(j);
        expectBadTable(j, c.parts, c.name);
    }
}

TEST_CASE(rejectsLayerCountMismatch)
{
    Json j = smallTable();
    j["num_layers"] = 4;
    expectBadTable(j, {"'num_layers' = 4 but 'layers' has 3 entries", "L mismatch"}, "num_layers");
    Json k = smallTable();
    k["ladder_n4"]["0.5000"] = {0, 0, 32, 0};
    expectBadTable(k, {"'ladder_n4['0.5000']' has 4 entries, expected L = 3", "L mismatch"}, "ladder_n4 L");
}

TEST_CASE(rejectsNonJsonAndMissingFiles)
{
    expectThrow<InputError>([] { RatioTable::fromJson("{\"schema\": ", "t.flexiq.json"); },
        {"t.flexiq.json: not a valid JSON file"}, "truncated");
    expectThrow<InputError>([] { RatioTable::fromJson("[1, 2]", "t.flexiq.json"); },
        {"t.flexiq.json: not a FlexiQ ratio table", "array"}, "array");
    expectThrow<InputError>([] { RatioTable::fromJson("{\"x\": NaN}", "t.flexiq.json"); },
        {"not a valid JSON file"}, "NaN");
    expectThrow<InputError>([] { RatioTable::fromFile("/nonexistent/m.flexiq.json"); },
        {"/nonexistent/m.flexiq.json: cannot open the ratio table"}, "missing file");
}

// ---- command line and engine path ----------------------------------------------------------------------
TEST_CASE(parsesTheCommandLine)
{
    Options const o = flexiq::app::parseArgs({"--engine", "m.engine", "--table", "m.json", "--ratios", "0,0.25,1",
                                                 "--batch", "8", "--iterations", "5", "--warmup", "0", "--no-graph"},
        nullptr, nullptr);
    CHECK(o.enginePath == "m.engine" && o.tablePath == "m.json");
    CHECK(o.ratios == std::vector<double>({0.0, 0.25, 1.0}));
    std::vector<double> const tiny = flexiq::app::parseRatioList("5e-324,1e-300,0.1");
    CHECK(tiny.size() == 3 && tiny[0] > 0.0 && tiny[0] == std::numeric_limits<double>::denorm_min() && tiny[2] == 0.1);
    CHECK(o.batch == 8 && o.iterations == 5 && o.warmup == 0 && !o.useGraph && !o.printVectors);
    CHECK(o.pluginPath == "libflexiq_plugins.so" && o.trtLibrary == "libnvinfer.so.10");
    Options const e = flexiq::app::parseArgs({"--table", "m.json", "--print-vectors"}, "/x/libp.so", "libnvinfer.so.11");
    CHECK(e.printVectors && e.enginePath.empty() && e.pluginPath == "/x/libp.so" && e.trtLibrary == "libnvinfer.so.11");
    Options const f = flexiq::app::parseArgs({"--table", "m.json", "--engine", "e", "--plugin", "p.so"}, "/x.so", "");
    CHECK(f.pluginPath == "p.so" && f.useGraph && f.ratios.empty());
    CHECK(flexiq::app::parseArgs({"--help"}, nullptr, nullptr).help);
    CHECK(contains(flexiq::app::usage("flexiq_infer"), "--print-vectors"));
}

TEST_CASE(rejectsBadCommandLines)
{
    using V = std::vector<std::string>;
    struct Case
    {
        V args;
        std::string part;
    };
    std::vector<Case> const cases = {
        {{"--engine", "m.engine"}, "--table is required"},
        {{"--table", "m.json"}, "--engine is required"},
        {{"--table", "m.json", "--engine", "e", "--frobnicate"}, "unknown argument '--frobnicate'"},
        {{"--table"}, "--table needs a value"},
        {{"--table", "--engine", "e"}, "--table needs a value"},
        {{"--table", "t", "--engine", "e", "--ratios", "0.5,1.5"}, "ratio must be a number in [0, 1], got 1.5"},
        {{"--table", "t", "--engine", "e", "--ratios", "0.5,abc"}, "'abc' is not a number"},
        {{"--table", "t", "--engine", "e", "--ratios", "0.5,"}, "comma-separated list"},
        {{"--table", "t", "--engine", "e", "--ratios", "nan"}, "ratio must be a number in [0, 1]"},
        {{"--table", "t", "--engine", "e", "--ratios", "1e999"}, "ratio must be a number in [0, 1], got inf"},
        {{"--table", "t", "--engine", "e", "--ratios", ""}, "comma-separated list"},
        {{"--table", "t", "--engine", "e", "--batch", "0"}, "--batch expects an integer in [1,"},
        {{"--table", "t", "--engine", "e", "--iterations", "2x"}, "--iterations expects an integer"},
        {{"--table", "t", "--engine", "e", "--warmup", "-1"}, "--warmup expects an integer in [0,"},
    };
    for (auto const& c : cases)
    {
        std::string ctx;
        for (auto const& a : c.args)
            ctx += a + " ";
        expectThrow<UsageError>([&] { flexiq::app::parseArgs(c.args, nullptr, nullptr); }, {c.part}, ctx);
    }
}

TEST_CASE(checksTheEnginePath)
{
    expectThrow<InputError>([] { flexiq::app::checkEngineFile("/nonexistent/m.engine"); },
        {"/nonexistent/m.engine: engine file not found"}, "missing");
    expectThrow<InputError>([] { flexiq::app::checkEngineFile("/"); }, {"/: engine path is not a regular file"},
        "directory");
    char name[] = "/tmp/flexiq_infer_test_XXXXXX";
    int const fd = ::mkstemp(name);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    ::close(fd);
    expectThrow<InputError>([&] { flexiq::app::checkEngineFile(name); }, {"engine file is empty"}, "empty");
    {
        std::ofstream(name, std::ios::binary) << "not really an engine";
    }
    std::vector<char> const bytes = flexiq::app::readEngineFile(name);
    CHECK(std::string(bytes.begin(), bytes.end()) == "not really an engine");
    ::unlink(name);
}

} // namespace

int main(int argc, char** argv)
{
    return flexiq::testing::runRegisteredTests(argc, argv);
}
