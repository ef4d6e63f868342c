/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Command line of flexiq_infer and the checks that need no GPU (engine file present, ratio list), so
 * they are unit-tested on the CPU (examples/cpp/tests/flexiqInferHostTests.cpp).
 */
#ifndef FLEXIQ_INFER_OPTIONS_H
#define FLEXIQ_INFER_OPTIONS_H

#include <cstdint>
#include <string>
#include <vector>

namespace flexiq
{
namespace app
{

//! Everything flexiq_infer is told; defaults are the documented ones (usage()).
struct Options
{
    std::string enginePath;                   //!< --engine (required unless --print-vectors)
    std::string tablePath;                    //!< --table (required)
    std::string pluginPath{"libflexiq_plugins.so"}; //!< --plugin, else $FLEXIQ_PLUGIN_LIB
    std::string trtLibrary{"libnvinfer.so.10"};     //!< --trt-lib, else $FLEXIQ_TRT_LIB
    std::vector<double> ratios;               //!< --ratios; empty = the table's ladder
    int32_t batch{0};                         //!< --batch; 0 = the profile's opt batch
    int32_t warmup{20};                       //!< --warmup launches per ratio
    int32_t iterations{200};                  //!< --iterations timed launches per ratio
    bool useGraph{true};                      //!< false with --no-graph
    bool printVectors{false};                 //!< --print-vectors: print ratio -> vector and exit
    bool help{false};                         //!< --help
};

//! The usage text (printed by --help and after a usage error).
std::string usage(char const* program);

//! Parses argv (throws UsageError naming the option). `env` lookups are passed in for testing.
Options parseArgs(std::vector<std::string> const& args, char const* envPluginLib, char const* envTrtLib);

//! "0,0.25,0.5" -> {0, 0.25, 0.5}; every entry a number in [0, 1] (throws UsageError).
std::vector<double> parseRatioList(std::string const& text);

//! Throws InputError naming the path when the engine file is missing, not a regular file,
//! unreadable or empty (checked before TensorRT is looked for).
void checkEngineFile(std::string const& path);

//! The bytes of a serialized engine (checkEngineFile, then read).
std::vector<char> readEngineFile(std::string const& path);

} // namespace app
} // namespace flexiq

#endif // FLEXIQ_INFER_OPTIONS_H
