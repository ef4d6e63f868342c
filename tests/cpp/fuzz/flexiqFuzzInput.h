/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * The byte format the plugin-field fuzz target reads: a whole PluginFieldCollection as TensorRT hands
 * it to createPlugin (build phase, from the ONNX parser) or to deserialization (runtime phase, from
 * getFieldsToSerialize). tests/unit/hardening/fuzz_corpus.py writes seeds in this format from real
 * converted models.
 *
 *   byte 0        bit 0: 1 = FlexiQConv, 0 = FlexiQGemm
 *   per field (until the input ends, at most kMAX_FIELDS):
 *     u8          name: i < kFIELD_COUNT -> kFIELDS[i].name, kFIELD_COUNT -> an unknown name,
 *                 kFIELD_COUNT + 1 -> a null name (taken modulo kFIELD_COUNT + 2)
 *     u8          PluginFieldType value (any byte: out-of-range values are passed on as they are)
 *     i32 LE      length (any value, negative included)
 *     u8          0 = null data pointer, else data follows
 *     bytes       length * elementSize(type) bytes of data (missing input bytes read as zero)
 *
 * Each field's data gets its own heap block of exactly length * elementSize(type) bytes, so a parser
 * that reads past what the length promises is caught by AddressSanitizer. A length whose data would
 * exceed kMAX_FIELD_BYTES is passed with a null data pointer (the parser must reject it unread).
 */
#ifndef FLEXIQ_FUZZ_INPUT_H
#define FLEXIQ_FUZZ_INPUT_H

#include "NvInferRuntime.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace flexiq
{
namespace fuzz
{

constexpr size_t kMAX_FIELDS = 64;
constexpr int64_t kMAX_FIELD_BYTES = int64_t{256} << 10;

//! Bytes per element of a PluginFieldType (1 for values outside the enum).
size_t elementSize(nvinfer1::PluginFieldType type);

//! A decoded collection; `collection` points into this object.
struct DecodedFields
{
    bool isConv{false};
    std::vector<std::unique_ptr<uint8_t[]>> blocks;
    std::vector<nvinfer1::PluginField> fields;
    nvinfer1::PluginFieldCollection collection{};
};

//! Decodes fuzz bytes (never fails: every input is some collection).
void decode(uint8_t const* data, size_t size, DecodedFields& out);

} // namespace fuzz
} // namespace flexiq

#endif // FLEXIQ_FUZZ_INPUT_H
