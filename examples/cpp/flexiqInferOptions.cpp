/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqInferOptions.h"

#include "flexiqInferErrors.h"
#include "flexiqRatioTable.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace flexiq
{
namespace app
{
namespace
{

//! A whole-string integer in [low, high] for option `name`.
int32_t parseInt(std::string const& name, std::string const& text, int32_t low, int32_t high)
{
    char* end = nullptr;
    errno = 0;
    long long const v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end == nullptr || *end != '\0' || errno == ERANGE || v < low || v > high)
    {
        throw UsageError(name + " expects an integer in [" + std::to_string(low) + ", " + std::to_string(high)
            + "], got '" + text + "'");
    }
    return static_cast<int32_t>(v);
}

} // namespace

std::string usage(char const* program)
{
    std::ostringstream u;
    u << "usage: " << program << " --engine MODEL.engine --table MODEL.flexiq.json [options]\n"
      << "\n"
      << "Runs a FlexiQ TensorRT engine under CUDA-graph replay at several 4-bit ratios (one host-to-device\n"
      << "copy of the int32 [L] flexiq_max_4bit_ch vector per switch) and prints the latency per ratio.\n"
      << "\n"
      << "  --engine PATH     serialized engine (flexiq-trt build)\n"
      << "  --table PATH      ratio table <stem>.flexiq.json written by flexiq-trt convert\n"
      << "  --plugin PATH     plugin library (default $FLEXIQ_PLUGIN_LIB or libflexiq_plugins.so)\n"
      << "  --trt-lib NAME    TensorRT runtime library to dlopen (default $FLEXIQ_TRT_LIB or libnvinfer.so.10)\n"
      << "  --ratios LIST     comma-separated ratios in [0, 1] (default: the table's ladder)\n"
      << "  --batch N         batch size for a dynamic batch dimension (default: the profile's opt)\n"
      << "  --warmup N        untimed launches per ratio (default 20)\n"
      << "  --iterations N    timed launches per ratio (default 200)\n"
      << "  --no-graph        call enqueueV3 directly instead of replaying a CUDA graph\n"
      << "  --print-vectors   print ratio -> flexiq_max_4bit_ch and exit (no engine, no GPU needed)\n"
      << "  --help            this text\n"
      << "\n"
      << "exit status: 0 ok, 1 bad file or failed TensorRT/CUDA call, 2 bad command line\n";
    return u.str();
}

std::vector<double> parseRatioList(std::string const& text)
{
    std::vector<double> ratios;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ','))
    {
        // No ERANGE check: an underflow (5e-324) is a valid tiny ratio, an overflow (inf) fails checkRatio.
        char* end = nullptr;
        double const v = std::strtod(item.c_str(), &end);
        if (item.empty() || end == nullptr || *end != '\0')
        {
            throw UsageError("--ratios: '" + item + "' is not a number");
        }
        ratios.push_back(checkRatio(v, "--ratios"));
    }
    if (ratios.empty() || (!text.empty() && text.back() == ','))
    {
        throw UsageError("--ratios expects a comma-separated list of ratios in [0, 1], got '" + text + "'");
    }
    return ratios;
}

Options parseArgs(std::vector<std::string> const& args, char const* envPluginLib, char const* envTrtLib)
{
    Options o;
    if (envPluginLib != nullptr && *envPluginLib != '\0')
        o.pluginPath = envPluginLib;
    if (envTrtLib != nullptr && *envTrtLib != '\0')
        o.trtLibrary = envTrtLib;
    for (size_t i = 0; i < args.size(); ++i)
    {
        std::string const& a = args[i];
        auto value = [&]() -> std::string const& {
            if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
                throw UsageError(a + " needs a value");
            return args[++i];
        };
        if (a == "--help" || a == "-h")
            o.help = true;
        else if (a == "--engine")
            o.enginePath = value();
        else if (a == "--table")
            o.tablePath = value();
        else if (a == "--plugin")
            o.pluginPath = value();
        else if (a == "--trt-lib")
            o.trtLibrary = value();
        else if (a == "--ratios")
            o.ratios = parseRatioList(value());
        else if (a == "--batch")
            o.batch = parseInt(a, value(), 1, 1 << 20);
        else if (a == "--warmup")
            o.warmup = parseInt(a, value(), 0, 1 << 20);
        else if (a == "--iterations")
            o.iterations = parseInt(a, value(), 1, 1 << 20);
        else if (a == "--no-graph")
            o.useGraph = false;
        else if (a == "--print-vectors")
            o.printVectors = true;
        else
            throw UsageError("unknown argument '" + a + "'");
    }
    if (o.help)
        return o;
    if (o.tablePath.empty())
        throw UsageError("--table is required (the <stem>.flexiq.json written by flexiq-trt convert)");
    if (o.enginePath.empty() && !o.printVectors)
        throw UsageError("--engine is required (a serialized engine from flexiq-trt build)");
    return o;
}

void checkEngineFile(std::string const& path)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0)
        throw InputError(path + ": engine file not found");
    if (!S_ISREG(st.st_mode))
        throw InputError(path + ": engine path is not a regular file");
    if (!std::ifstream(path, std::ios::binary))
        throw InputError(path + ": engine file is not readable");
    if (st.st_size == 0)
        throw InputError(path + ": engine file is empty");
}

std::vector<char> readEngineFile(std::string const& path)
{
    checkEngineFile(path);
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    std::vector<char> bytes(static_cast<size_t>(in.tellg()));
    in.seekg(0);
    if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
        throw InputError(path + ": engine file could not be read completely");
    return bytes;
}

} // namespace app
} // namespace flexiq
