/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Error handling of the plugin host code (docs/conventions.md, "Errors"): user input is checked with
 * FLEXIQ_VALIDATE, which throws FlexiqPluginError inside plugin methods; every noexcept entry point
 * catches it with caughtError() and returns a TensorRT failure code. Nothing aborts, nothing
 * escapes a noexcept function.
 */
#ifndef FLEXIQ_CHECK_H
#define FLEXIQ_CHECK_H

#include "flexiqLogger.h"

#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>

namespace flexiq
{

//! A problem with a plugin node's fields, shapes or types; the message names the node and field.
class FlexiqPluginError : public std::runtime_error
{
public:
    explicit FlexiqPluginError(std::string const& msg)
        : std::runtime_error(msg)
    {
    }
};

//! Logs an exception caught at a noexcept boundary (`where` names the plugin method).
inline void caughtError(std::exception const& e, char const* where) noexcept
{
    logError(std::string(where) + ": " + e.what());
}

//! Logs a non-standard exception caught at a noexcept boundary.
inline void caughtUnknownError(char const* where) noexcept
{
    logError(std::string(where) + ": unknown exception");
}

} // namespace flexiq

//! Throws FlexiqPluginError with a streamed message when `cond` is false.
#define FLEXIQ_VALIDATE(cond, streamMsg)                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            std::ostringstream flexiqValidateOss_;                                                                     \
            flexiqValidateOss_ << streamMsg;                                                                           \
            throw ::flexiq::FlexiqPluginError(flexiqValidateOss_.str());                                               \
        }                                                                                                              \
    } while (false)

//! Body wrapper for noexcept plugin methods: returns `failValue` after logging any exception.
#define FLEXIQ_TRY try
#define FLEXIQ_CATCH_RETURN(where, failValue)                                                                          \
    catch (std::exception const& flexiqErr_)                                                                           \
    {                                                                                                                  \
        ::flexiq::caughtError(flexiqErr_, where);                                                                      \
        return failValue;                                                                                              \
    }                                                                                                                  \
    catch (...)                                                                                                        \
    {                                                                                                                  \
        ::flexiq::caughtUnknownError(where);                                                                           \
        return failValue;                                                                                              \
    }

#endif // FLEXIQ_CHECK_H
