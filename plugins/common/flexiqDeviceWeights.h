/*
 * SPDX-License-Identifier: Apache-2.0
 *
 * Device copies of a layer's constant arrays (permutation, weights, weight steps, out_scale, bias; for the int8
 * backends the effective weights w4 * step_w), made
 * once per device at run time (attachToContext / first enqueue), never at build time: an
 * ahead-of-time build on a GPU-less machine must not touch CUDA. One allocation, shared by the
 * clones of a plugin on the same device.
 */
#ifndef FLEXIQ_DEVICE_WEIGHTS_H
#define FLEXIQ_DEVICE_WEIGHTS_H

#include "flexiqKernels.h"
#include "flexiqLayerConfig.h"

#include <memory>

namespace flexiq
{

//! The device the plugin runs on and the backend chosen for it (docs/design.md §4).
struct DeviceSelection
{
    int32_t device{-1};
    int32_t smMajor{0};
    int32_t smMinor{0};
    FlexiqBackend backend{kFLEXIQ_BACKEND_AUTO};
};

//! Queries the current CUDA device and picks the kernel backend for the layer of `cfg` (its group size
//! matters: flexiqSelectLayerBackend); throws FlexiqPluginError on sm_75 and older, or when no CUDA device
//! is usable.
DeviceSelection selectDeviceBackend(LayerConfig const& cfg);

//! A backend's name for logs, e.g. "INT8_PIPELINED (4-bit groups as effective int8 codes)".
char const* backendName(FlexiqBackend backend);

//! Device arrays of one layer, in one cudaMalloc'd block (256-byte aligned parts).
class DeviceWeights
{
public:
    //! Copies the arrays of `cfg` to the current device (synchronous); throws FlexiqPluginError. `backend`: the
    //! layer's backend on this device (flexiqRunnerLayerBackend: sm_90+, or sm_80 with G = 32, give an int8
    //! one); an int8 one also gets the effective weights (FlexiqLayerArgs::weightEffective).
    DeviceWeights(LayerConfig const& cfg, FlexiqBackend backend);
    ~DeviceWeights();
    DeviceWeights(DeviceWeights const&) = delete;
    DeviceWeights& operator=(DeviceWeights const&) = delete;

    //! Kernel arguments pointing at the device arrays.
    FlexiqLayerArgs const& args() const noexcept
    {
        return mArgs;
    }

    int32_t device() const noexcept
    {
        return mDevice;
    }

private:
    void* mBlock{nullptr};
    int32_t mDevice{-1};
    FlexiqLayerArgs mArgs{};
};

} // namespace flexiq

#endif // FLEXIQ_DEVICE_WEIGHTS_H
