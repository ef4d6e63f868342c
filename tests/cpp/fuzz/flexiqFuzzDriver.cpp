/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * A bounded mutation driver for LLVMFuzzerTestOneInput, used when the compiler has no libFuzzer
 * (GCC): replays every corpus file, then mutates corpus entries with a fixed seed (bit flips,
 * interesting bytes and int32s, chunk copies, inserts, erases) until -runs or -max_total_time is
 * reached. It accepts the libFuzzer flags the tests pass, so tests/unit/hardening runs either binary
 * the same way. No coverage feedback: weaker than libFuzzer, but deterministic for a given -runs.
 *
 * Usage: flexiq_fuzz_plugin_fields [-seed=N] [-runs=N] [-max_total_time=S] [-max_len=N] PATH...
 */
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size);

namespace
{

using Bytes = std::vector<uint8_t>;

Bytes readFile(std::filesystem::path const& p)
{
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void mutate(Bytes& b, std::mt19937_64& rng, size_t maxLen)
{
    static int32_t const kInts[] = {0, 1, -1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 4096, 65536, 131071,
        131072, 1 << 30, INT32_MAX, INT32_MIN, -128};
    static uint8_t const kBytes[] = {0, 1, 2, 3, 4, 5, 0x7F, 0x80, 0x81, 0xFE, 0xFF};
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % (n == 0 ? 1 : n)); };
    int const steps = 1 + static_cast<int>(rng() % 4);
    for (int s = 0; s < steps; ++s)
    {
        switch (rng() % 7)
        {
        case 0: // flip one bit
            if (!b.empty())
                b[pick(b.size())] ^= static_cast<uint8_t>(1U << (rng() % 8));
            break;
        case 1: // an interesting byte
            if (!b.empty())
                b[pick(b.size())] = kBytes[pick(sizeof(kBytes))];
            break;
        case 2: // an interesting little-endian int32
            if (b.size() >= 4)
            {
                int32_t const v = kInts[pick(sizeof(kInts) / sizeof(kInts[0]))];
                std::memcpy(b.data() + pick(b.size() - 3), &v, 4);
            }
            break;
        case 3: // erase a chunk
            if (!b.empty())
            {
                size_t const at = pick(b.size());
                size_t const n = 1 + pick(std::min<size_t>(64, b.size() - at));
                b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
            }
            break;
        case 4: // insert random bytes
            if (b.size() < maxLen)
            {
                size_t const at = pick(b.size() + 1);
                size_t const n = 1 + pick(16);
                Bytes ins(n);
                for (auto& c : ins)
                    c = static_cast<uint8_t>(rng());
                b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
            }
            break;
        case 5: // copy a chunk over another place
            if (b.size() > 8)
            {
                size_t const from = pick(b.size());
                size_t const to = pick(b.size());
                size_t const n = std::min<size_t>({1 + pick(32), b.size() - from, b.size() - to});
                std::memmove(b.data() + to, b.data() + from, n);
            }
            break;
        default: // a random byte
            if (!b.empty())
                b[pick(b.size())] = static_cast<uint8_t>(rng());
            break;
        }
    }
    if (b.size() > maxLen)
        b.resize(maxLen);
}

} // namespace

int main(int argc, char** argv)
{
    uint64_t seed = 1;
    long long runs = -1;
    double maxSeconds = 0.0;
    size_t maxLen = 0;
    std::vector<Bytes> corpus;
    for (int i = 1; i < argc; ++i)
    {
        std::string const a = argv[i];
        if (a.rfind("-seed=", 0) == 0)
            seed = std::strtoull(a.c_str() + 6, nullptr, 10);
        else if (a.rfind("-runs=", 0) == 0)
            runs = std::strtoll(a.c_str() + 6, nullptr, 10);
        else if (a.rfind("-max_total_time=", 0) == 0)
            maxSeconds = std::strtod(a.c_str() + 16, nullptr);
        else if (a.rfind("-max_len=", 0) == 0)
            maxLen = std::strtoull(a.c_str() + 9, nullptr, 10);
        else if (a.rfind("-", 0) == 0)
            std::fprintf(stderr, "flexiq fuzz driver: ignoring libFuzzer flag %s\n", a.c_str());
        else if (std::filesystem::is_directory(a))
        {
            for (auto const& e : std::filesystem::directory_iterator(a))
                if (e.is_regular_file())
                    corpus.push_back(readFile(e.path()));
        }
        else
            corpus.push_back(readFile(a));
    }
    if (corpus.empty())
        corpus.emplace_back(); // an empty input is still an input
    if (maxLen == 0)
        for (auto const& c : corpus)
            maxLen = std::max(maxLen, c.size() + 64);
    auto const start = std::chrono::steady_clock::now();
    long long done = 0;
    for (auto const& c : corpus) // replay the corpus first, as libFuzzer does
    {
        LLVMFuzzerTestOneInput(c.data(), c.size());
        ++done;
    }
    std::printf("flexiq fuzz driver: replayed %zu corpus inputs\n", corpus.size());
    std::mt19937_64 rng(seed);
    if (runs < 0 && maxSeconds <= 0.0)
        runs = 0;
    for (long long i = 0; runs < 0 || i < runs; ++i)
    {
        if (maxSeconds > 0.0 && (i & 63) == 0
            && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= maxSeconds)
            break;
        Bytes b = corpus[static_cast<size_t>(rng() % corpus.size())];
        mutate(b, rng, maxLen);
        LLVMFuzzerTestOneInput(b.data(), b.size());
        ++done;
    }
    double const secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("Done %lld runs in %.0f second(s) (flexiq bounded mutation driver, seed %llu)\n", done, secs,
        static_cast<unsigned long long>(seed));
    return 0;
}
