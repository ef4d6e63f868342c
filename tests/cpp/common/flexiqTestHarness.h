/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The project's minimal C++ test harness (header-only, no dependency): TEST_CASE registers a test,
 * CHECK/CHECK_CTX count checks and report failures with file and line, runRegisteredTests runs the
 * tests whose name contains a filter and prints one line per test plus a summary. Shared by the
 * plugin host tests (tests/cpp/host) and the flexiq_infer host tests (examples/cpp/tests); one
 * executable per suite, so the globals below are per executable.
 */
#ifndef FLEXIQ_TEST_HARNESS_H
#define FLEXIQ_TEST_HARNESS_H

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace flexiq::testing
{

inline int gChecks = 0;
inline int gFailed = 0;
inline bool gVerbose = false; //!< "-v" on the command line: tests may print details

inline std::vector<std::pair<std::string, std::function<void()>>>& registry()
{
    static std::vector<std::pair<std::string, std::function<void()>>> tests;
    return tests;
}

struct Register
{
    Register(char const* name, std::function<void()> fn)
    {
        registry().emplace_back(name, std::move(fn));
    }
};

//! Runs every registered test whose name contains the command line's filter ("-v": verbose).
//! Exit status 0 only when at least one test ran and no check failed.
inline int runRegisteredTests(int argc, char** argv)
{
    std::string filter;
    for (int i = 1; i < argc; ++i)
    {
        if (std::strcmp(argv[i], "-v") == 0)
            gVerbose = true;
        else
            filter = argv[i];
    }
    int ran = 0;
    for (auto const& [name, fn] : registry())
    {
        if (!filter.empty() && name.find(filter) == std::string::npos)
            continue;
        int const failedBefore = gFailed;
        fn();
        ++ran;
        std::printf("[%s] %s\n", gFailed == failedBefore ? "  OK  " : "FAILED", name.c_str());
    }
    std::printf("%d test cases, %d checks, %d failed\n", ran, gChecks, gFailed);
    return (gFailed == 0 && ran > 0) ? 0 : 1;
}

} // namespace flexiq::testing

#define TEST_CASE(name)                                                                                                \
    void name();                                                                                                       \
    ::flexiq::testing::Register const kReg_##name(#name, name);                                                        \
    void name()

#define CHECK_CTX(cond, ctx)                                                                                           \
    do                                                                                                                 \
    {                                                                                                                  \
        ++::flexiq::testing::gChecks;                                                                                  \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            ++::flexiq::testing::gFailed;                                                                              \
            std::printf("  FAILED %s:%d: %s [%s]\n", __FILE__, __LINE__, #cond, std::string(ctx).c_str());             \
        }                                                                                                              \
    } while (false)

#define CHECK(cond)                                                                                                    \
    do                                                                                                                 \
    {                                                                                                                  \
        ++::flexiq::testing::gChecks;                                                                                  \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            ++::flexiq::testing::gFailed;                                                                              \
            std::printf("  FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);                                            \
        }                                                                                                              \
    } while (false)

#endif // FLEXIQ_TEST_HARNESS_H
