/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Plugin logging: messages go to the ILogger that TensorRT's ILoggerFinder returns (set through the
 * exported setLoggerFinder) and to stderr when there is none (TensorRT-RTX's finder returned no
 * logger in our test, docs/design.md §6). Thread-safe; never throws.
 */
#ifndef FLEXIQ_LOGGER_H
#define FLEXIQ_LOGGER_H

#include "NvInferRuntime.h"

#include <string>

namespace flexiq
{

//! Stores the finder TensorRT hands to the library (may be null to detach).
void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! Logs `msg` with the "[flexiq]" prefix at `severity`.
void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) noexcept;

inline void logError(std::string const& msg) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kERROR, msg);
}

inline void logWarning(std::string const& msg) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kWARNING, msg);
}

inline void logVerbose(std::string const& msg) noexcept
{
    logMessage(nvinfer1::ILogger::Severity::kVERBOSE, msg);
}

} // namespace flexiq

#endif // FLEXIQ_LOGGER_H
