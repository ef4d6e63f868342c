/*
 * SPDX-License-Identifier: Apache-2.0
 */
#include "flexiqLogger.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace flexiq
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};
std::mutex gStderrMutex;

char const* severityName(nvinfer1::ILogger::Severity severity)
{
    switch (severity)
    {
    case nvinfer1::ILogger::Severity::kINTERNAL_ERROR: return "INTERNAL_ERROR";
    case nvinfer1::ILogger::Severity::kERROR: return "ERROR";
    case nvinfer1::ILogger::Severity::kWARNING: return "WARNING";
    case nvinfer1::ILogger::Severity::kINFO: return "INFO";
    case nvinfer1::ILogger::Severity::kVERBOSE: return "VERBOSE";
    }
    return "?";
}

//! stderr fallback shows errors and warnings; FLEXIQ_PLUGIN_VERBOSE=1 shows everything.
bool shownOnStderr(nvinfer1::ILogger::Severity severity)
{
    static bool const verbose = [] {
        char const* v = std::getenv("FLEXIQ_PLUGIN_VERBOSE");
        return v != nullptr && v[0] == '1';
    }();
    return verbose || severity <= nvinfer1::ILogger::Severity::kWARNING;
}
} // namespace

void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    gLoggerFinder.store(finder);
    // Records what the loading runtime provides (docs/design.md §6: TensorRT-RTX's finder returned no logger).
    logVerbose(std::string("setLoggerFinder: finder ") + (finder != nullptr ? "set" : "null") + ", logger "
        + (finder != nullptr && finder->findLogger() != nullptr ? "available" : "not available (stderr fallback)"));
}

void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) noexcept
{
    try
    {
        std::string const text = "[flexiq] " + msg;
        nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
        nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
        if (logger != nullptr)
        {
            logger->log(severity, text.c_str());
            return;
        }
        if (shownOnStderr(severity))
        {
            std::lock_guard<std::mutex> lock(gStderrMutex);
            std::fprintf(stderr, "[flexiq %s] %s\n", severityName(severity), msg.c_str());
            std::fflush(stderr);
        }
    }
    catch (...)
    {
        // Logging must never take the process down (allocation failure while formatting).
    }
}

} // namespace flexiq
