/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Errors of the flexiq_infer example. Each kind maps to one exit status, so scripts can tell a
 * wrong command line (2) from a bad file or a failed TensorRT/CUDA call (1).
 */
#ifndef FLEXIQ_INFER_ERRORS_H
#define FLEXIQ_INFER_ERRORS_H

#include <stdexcept>
#include <string>

namespace flexiq
{
namespace app
{

//! Exit statuses of flexiq_infer.
constexpr int kEXIT_OK = 0;
constexpr int kEXIT_FAILURE = 1; //!< a file, TensorRT or CUDA problem
constexpr int kEXIT_USAGE = 2;   //!< a bad command line

//! A bad command line; the message names the option.
class UsageError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

//! A bad input file (engine, ratio table) or a failed runtime call; the message names the file/field.
class InputError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

} // namespace app
} // namespace flexiq

#endif // FLEXIQ_INFER_ERRORS_H
