/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Reading and validating `<stem>.flexiq.json` with nlohmann/json, and the ratio -> vector rule of
 * python/flexiq_trt/ratios.py. Built with -ffp-contract=off so the float64 sums and the tolerance
 * product round exactly as NumPy's do.
 */
#include "flexiqRatioTable.h"

#include "flexiqInferErrors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace flexiq
{
namespace app
{
namespace
{
using Json = nlohmann::json;

//! Reads one JSON value with its path ("layers[3].group_macs") for messages.
class Reader
{
public:
    explicit Reader(std::string source)
        : mSource(std::move(source))
    {
    }

    [[noreturn]] void fail(std::string const& path, std::string const& why) const
    {
        throw InputError(mSource + ": field '" + path + "' " + why);
    }

    Json const& member(Json const& obj, std::string const& path, char const* key) const
    {
        auto const it = obj.find(key);
        if (it == obj.end())
        {
            throw InputError(mSource + ": required field '" + join(path, key) + "' is missing");
        }
        return *it;
    }

    Json const& object(Json const& v, std::string const& path) const
    {
        if (!v.is_object())
            fail(path, std::string("must be an object, got ") + v.type_name());
        return v;
    }

    Json const& array(Json const& v, std::string const& path) const
    {
        if (!v.is_array())
            fail(path, std::string("must be an array, got ") + v.type_name());
        return v;
    }

    std::string string(Json const& v, std::string const& path) const
    {
        if (!v.is_string())
            fail(path, std::string("must be a string, got ") + v.type_name());
        return v.get<std::string>();
    }

    //! An integer in [low, high] (JSON floats such as 32.0 are not integers, as in Python).
    int32_t integer(Json const& v, std::string const& path, int64_t low, int64_t high) const
    {
        if (!v.is_number_integer())
            fail(path, std::string("must be an integer, got ") + describe(v));
        int64_t value = 0;
        if (v.is_number_unsigned())
        {
            uint64_t const u = v.get<uint64_t>();
            value = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                                      : static_cast<int64_t>(u);
        }
        else
        {
            value = v.get<int64_t>();
        }
        if (value < low || value > high)
        {
            fail(path, "= " + v.dump() + " is out of range [" + std::to_string(low) + ", " + std::to_string(high) + "]");
        }
        return static_cast<int32_t>(value);
    }

    //! A finite number >= 0 (MACs).
    double nonNegative(Json const& v, std::string const& path) const
    {
        if (!v.is_number())
            fail(path, std::string("must be a number, got ") + describe(v));
        double const d = v.get<double>();
        if (!std::isfinite(d) || d < 0.0)
            fail(path, "= " + v.dump() + " must be a finite number >= 0");
        return d;
    }

    static std::string join(std::string const& path, char const* key)
    {
        return path.empty() ? std::string(key) : path + "." + key;
    }

    static std::string at(std::string const& path, size_t i)
    {
        return path + "[" + std::to_string(i) + "]";
    }

private:
    static std::string describe(Json const& v)
    {
        std::string text = v.dump();
        if (text.size() > 40)
            text = text.substr(0, 37) + "...";
        return std::string(v.type_name()) + " " + text;
    }

    std::string mSource;
};

constexpr int64_t kINT32_MAX = std::numeric_limits<int32_t>::max();

} // namespace

double checkRatio(double ratio, std::string const& what)
{
    if (!(ratio >= 0.0 && ratio <= 1.0))
    {
        std::ostringstream msg;
        msg << what << ": ratio must be a number in [0, 1], got " << ratio;
        throw UsageError(msg.str());
    }
    return ratio;
}

std::string ladderKey(double ratio)
{
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.4f", ratio);
    return buf;
}

RatioTable RatioTable::fromFile(std::string const& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
    {
        throw InputError(path + ": cannot open the ratio table (no such file or not readable)");
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
    {
        throw InputError(path + ": cannot read the ratio table");
    }
    return fromJson(text.str(), path);
}

RatioTable RatioTable::fromJson(std::string const& text, std::string const& source)
{
    Json root;
    try
    {
        root = Json::parse(text);
    }
    catch (Json::parse_error const& e)
    {
        throw InputError(source + ": not a valid JSON file (" + e.what() + ")");
    }
    Reader const r(source);
    if (!root.is_object())
    {
        throw InputError(source + ": not a FlexiQ ratio table (the top level is a " + root.type_name()
            + ", expected an object)");
    }
    std::string const schema = r.string(r.member(root, "", "schema"), "schema");
    if (schema != kRATIO_TABLE_SCHEMA)
    {
        r.fail("schema", "is '" + schema + "', expected '" + kRATIO_TABLE_SCHEMA + "'");
    }

    RatioTable t;
    t.mSource = source;
    // 32 or 64 for every layer, or 0: each layer carries its own (docs/design.md §2.2, ratios.PER_LAYER).
    t.mGroupSize = r.integer(r.member(root, "", "group_size"), "group_size", 0, kINT32_MAX);
    if (t.mGroupSize != 0 && t.mGroupSize != 32 && t.mGroupSize != 64)
    {
        r.fail("group_size", "= " + std::to_string(t.mGroupSize)
            + " is not a supported group size (32 or 64, or 0 = per layer)");
    }

    Json const& layers = r.array(r.member(root, "", "layers"), "layers");
    for (size_t i = 0; i < layers.size(); ++i)
    {
        std::string const p = Reader::at("layers", i);
        Json const& le = r.object(layers[i], p);
        TableLayer l;
        l.name = r.string(r.member(le, p, "name"), Reader::join(p, "name"));
        l.opType = r.string(r.member(le, p, "op_type"), Reader::join(p, "op_type"));
        l.layerIndex = r.integer(r.member(le, p, "layer_index"), Reader::join(p, "layer_index"), 0, kINT32_MAX);
        if (l.layerIndex != static_cast<int32_t>(i))
        {
            r.fail(Reader::join(p, "layer_index"), "= " + std::to_string(l.layerIndex) + ", expected "
                + std::to_string(i) + " (its position in flexiq_max_4bit_ch)");
        }
        l.inChannels = r.integer(r.member(le, p, "in_channels"), Reader::join(p, "in_channels"), 1, kINT32_MAX);
        // A layer's own G; tables written before G was per layer have none and mean the table's.
        std::string const gsPath = Reader::join(p, "group_size");
        l.groupSize = t.mGroupSize;
        if (t.mGroupSize == 0 || le.contains("group_size"))
        {
            l.groupSize = r.integer(r.member(le, p, "group_size"), gsPath, 1, kINT32_MAX);
            if (l.groupSize != 32 && l.groupSize != 64)
            {
                r.fail(gsPath, "= " + std::to_string(l.groupSize) + " is not a supported group size (32 or 64)");
            }
            if (t.mGroupSize != 0 && l.groupSize != t.mGroupSize)
            {
                r.fail(gsPath, "= " + std::to_string(l.groupSize) + " differs from the table's 'group_size' "
                    + std::to_string(t.mGroupSize) + " (use 0 there when G is per layer)");
            }
        }
        std::string const padPath = Reader::join(p, "padded_channels");
        l.paddedChannels = r.integer(r.member(le, p, "padded_channels"), padPath, 1, kINT32_MAX);
        if (l.paddedChannels % l.groupSize != 0 || l.paddedChannels < l.inChannels)
        {
            r.fail(padPath, "= " + std::to_string(l.paddedChannels) + " must be a multiple of group_size "
                + std::to_string(l.groupSize) + " and >= in_channels " + std::to_string(l.inChannels));
        }
        l.macs = r.nonNegative(r.member(le, p, "macs"), Reader::join(p, "macs"));
        std::string const gPath = Reader::join(p, "group_macs");
        Json const& gm = r.array(r.member(le, p, "group_macs"), gPath);
        size_t const groups = static_cast<size_t>(l.paddedChannels / l.groupSize);
        if (gm.size() != groups)
        {
            r.fail(gPath, "has " + std::to_string(gm.size()) + " entries, expected padded_channels / group_size = "
                + std::to_string(groups));
        }
        for (size_t g = 0; g < gm.size(); ++g)
        {
            l.groupMacs.push_back(r.nonNegative(gm[g], Reader::at(gPath, g)));
        }
        t.mLayers.push_back(std::move(l));
    }
    int32_t const numLayers = t.numLayers();
    auto const nl = root.find("num_layers");
    if (nl != root.end())
    {
        int32_t const declared = r.integer(*nl, "num_layers", 0, kINT32_MAX);
        if (declared != numLayers)
        {
            r.fail("num_layers", "= " + std::to_string(declared) + " but 'layers' has " + std::to_string(numLayers)
                + " entries (L mismatch)");
        }
    }

    Json const& order = r.array(r.member(root, "", "order"), "order");
    // n4 counts a prefix of each layer's permutation, so a layer's groups must come in order 0, 1, 2...
    std::vector<int32_t> nextGroup(t.mLayers.size(), 0);
    double running = 0.0;
    for (size_t i = 0; i < order.size(); ++i)
    {
        std::string const p = Reader::at("order", i);
        Json const& item = r.array(order[i], p);
        if (item.size() != 2)
        {
            r.fail(p, "must be a [layer, group] pair, got " + std::to_string(item.size()) + " entries");
        }
        OrderItem o;
        o.layer = r.integer(item[0], Reader::at(p, 0), 0, static_cast<int64_t>(numLayers) - 1);
        int64_t const groups = static_cast<int64_t>(t.mLayers[o.layer].groupMacs.size());
        o.group = r.integer(item[1], Reader::at(p, 1), 0, groups - 1);
        std::string const itemText = "= [" + std::to_string(o.layer) + ", " + std::to_string(o.group) + "]";
        int32_t& next = nextGroup[static_cast<size_t>(o.layer)];
        if (o.group < next)
        {
            r.fail(p, itemText + " repeats an earlier item");
        }
        if (o.group > next)
        {
            r.fail(p, itemText + " comes before group " + std::to_string(next) + " of layer " + std::to_string(o.layer)
                + " (a layer's groups are taken in permutation order)");
        }
        ++next;
        running += t.mLayers[o.layer].groupMacs[o.group]; // numpy.cumsum: sequential float64 sum
        t.mOrder.push_back(o);
        t.mCumulative.push_back(running);
    }

    Json const& ladder = r.array(r.member(root, "", "ladder"), "ladder");
    for (size_t i = 0; i < ladder.size(); ++i)
    {
        std::string const p = Reader::at("ladder", i);
        if (!ladder[i].is_number())
            r.fail(p, std::string("must be a number, got ") + ladder[i].type_name());
        double const v = ladder[i].get<double>();
        if (!(v >= 0.0 && v <= 1.0))
            r.fail(p, "= " + ladder[i].dump() + " is not a ratio in [0, 1]");
        t.mLadder.push_back(v);
    }

    auto const ln = root.find("ladder_n4");
    if (ln != root.end())
    {
        Json const& obj = r.object(*ln, "ladder_n4");
        std::map<std::string, std::vector<int32_t>> table;
        for (auto const& [key, value] : obj.items())
        {
            std::string const p = "ladder_n4['" + key + "']";
            Json const& vec = r.array(value, p);
            if (vec.size() != static_cast<size_t>(numLayers))
            {
                r.fail(p, "has " + std::to_string(vec.size()) + " entries, expected L = " + std::to_string(numLayers)
                    + " (L mismatch)");
            }
            std::vector<int32_t> n4;
            for (size_t i = 0; i < vec.size(); ++i)
            {
                n4.push_back(r.integer(vec[i], Reader::at(p, i), 0, t.mLayers[i].paddedChannels));
            }
            table.emplace(key, std::move(n4));
        }
        t.checkLadderTable(table);
    }
    return t;
}

void RatioTable::checkLadderTable(std::map<std::string, std::vector<int32_t>> const& ladderN4) const
{
    // Python writes {f"{r:.4f}": vector(r)} for r in ladder, the last r winning a shared key.
    std::map<std::string, double> ratioOfKey;
    for (double r : mLadder)
    {
        ratioOfKey[ladderKey(r)] = r;
    }
    for (auto const& [key, n4] : ladderN4)
    {
        auto const it = ratioOfKey.find(key);
        if (it == ratioOfKey.end())
        {
            throw InputError(mSource + ": field 'ladder_n4' has key '" + key + "', which is no ratio of 'ladder'");
        }
        std::vector<int32_t> const want = vector(it->second);
        for (size_t i = 0; i < want.size(); ++i)
        {
            if (n4[i] != want[i])
            {
                throw InputError(mSource + ": field 'ladder_n4['" + key + "'][" + std::to_string(i) + "]' = "
                    + std::to_string(n4[i]) + " but 'order' gives " + std::to_string(want[i])
                    + " (the table is inconsistent)");
            }
        }
    }
}

size_t RatioTable::prefixLength(double ratio) const
{
    checkRatio(ratio, mSource);
    if (ratio <= 0.0 || mOrder.empty())
    {
        return 0;
    }
    // numpy.searchsorted(cum, ratio * cum[-1] * (1 - 1e-12)) (side 'left') + 1, capped at len(order).
    double const target = ratio * mCumulative.back() * (1.0 - 1e-12);
    auto const it = std::lower_bound(mCumulative.begin(), mCumulative.end(), target);
    return std::min(static_cast<size_t>(it - mCumulative.begin()) + 1, mOrder.size());
}

std::vector<int32_t> RatioTable::vector(double ratio) const
{
    std::vector<int32_t> n4(mLayers.size(), 0);
    size_t const n = prefixLength(ratio);
    for (size_t i = 0; i < n; ++i)
    {
        size_t const layer = static_cast<size_t>(mOrder[i].layer);
        n4[layer] += mLayers[layer].groupSize;
    }
    return n4;
}

double RatioTable::achievedRatio(std::vector<int32_t> const& n4) const
{
    if (n4.size() != mLayers.size())
    {
        throw InputError(mSource + ": a vector of " + std::to_string(n4.size()) + " entries for L = "
            + std::to_string(mLayers.size()) + " layers");
    }
    double total = 0.0;
    double four = 0.0;
    for (size_t i = 0; i < mLayers.size(); ++i)
    {
        TableLayer const& l = mLayers[i];
        int32_t const groups = std::max(0, std::min(n4[i], l.paddedChannels)) / l.groupSize;
        for (size_t g = 0; g < l.groupMacs.size(); ++g)
        {
            total += l.groupMacs[g];
            if (static_cast<int32_t>(g) < groups)
                four += l.groupMacs[g];
        }
    }
    return total > 0.0 ? four / total : 0.0;
}

} // namespace app
} // namespace flexiq
