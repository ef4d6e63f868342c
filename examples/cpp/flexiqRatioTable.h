/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The ratio table `<stem>.flexiq.json` in C++: any ratio in [0, 1] -> the int32 [L] vector bound to
 * `flexiq_max_4bit_ch`. It computes exactly what python/flexiq_trt/ratios.py computes (same float64
 * cumulative sums, same tolerance, same search), so a C++ service and `flexiq-trt ratio` feed the
 * engine the same vector; tests/unit/examples/test_flexiq_infer.py checks this on real tables.
 */
#ifndef FLEXIQ_RATIO_TABLE_H
#define FLEXIQ_RATIO_TABLE_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flexiq
{
namespace app
{

//! ratios.SIDECAR_SCHEMA: the only schema this reader accepts.
constexpr char const* kRATIO_TABLE_SCHEMA = "flexiq_trt.ratio_table/1";

//! One FlexiQ layer (ratios.LayerEntry).
struct TableLayer
{
    std::string name;
    std::string opType;
    int32_t layerIndex{0};
    int32_t inChannels{0};
    int32_t paddedChannels{0};
    int32_t groupSize{0}; //!< this layer's G, 32 or 64 (its "group_size", else the table's)
    double macs{0.0};
    std::vector<double> groupMacs; //!< MACs of each channel group, in permutation order
};

//! One item of the global priority order: group `group` of layer `layer`.
struct OrderItem
{
    int32_t layer{0};
    int32_t group{0};
};

//! A validated ratio table. Every error names the source file and the JSON field.
class RatioTable
{
public:
    //! Reads and validates a `.flexiq.json` file (throws InputError).
    static RatioTable fromFile(std::string const& path);
    //! Parses JSON text; `source` names it in messages (throws InputError).
    static RatioTable fromJson(std::string const& text, std::string const& source);

    //! L, the length of the runtime vector.
    int32_t numLayers() const noexcept
    {
        return static_cast<int32_t>(mLayers.size());
    }
    //! The table's group_size: the G every layer shares, or 0 when G is per layer (TableLayer::groupSize).
    int32_t groupSize() const noexcept
    {
        return mGroupSize;
    }
    std::vector<TableLayer> const& layers() const noexcept
    {
        return mLayers;
    }
    std::vector<OrderItem> const& order() const noexcept
    {
        return mOrder;
    }
    std::vector<double> const& ladder() const noexcept
    {
        return mLadder;
    }
    std::string const& source() const noexcept
    {
        return mSource;
    }

    //! Shortest prefix of the global order whose MACs cover `ratio` of all eligible MACs.
    size_t prefixLength(double ratio) const;
    //! int32 [L]: 4-bit input channels (a multiple of the layer's G) per layer at `ratio` (ratios.RatioTable.vector).
    std::vector<int32_t> vector(double ratio) const;
    //! The share of eligible MACs that `n4` runs in 4-bit (ratios.RatioTable.achieved_ratio).
    double achievedRatio(std::vector<int32_t> const& n4) const;

private:
    RatioTable() = default;
    void checkLadderTable(std::map<std::string, std::vector<int32_t>> const& ladderN4) const;

    std::string mSource;
    int32_t mGroupSize{0};
    std::vector<TableLayer> mLayers;
    std::vector<OrderItem> mOrder;
    std::vector<double> mLadder;
    std::vector<double> mCumulative; //!< float64 running sum of group MACs along mOrder
};

//! Rejects ratios outside [0, 1] or NaN (ratios.check_ratio); `what` names the origin in the message.
double checkRatio(double ratio, std::string const& what);

//! "%.4f" of a ratio: the key of `ladder_n4` (Python's f"{r:.4f}").
std::string ladderKey(double ratio);

} // namespace app
} // namespace flexiq

#endif // FLEXIQ_RATIO_TABLE_H
