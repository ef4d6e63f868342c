/*
 * Registers the FlexiQ plugin creators in the TensorRT plugin registry of the process that loads
 * this library. Triton's TensorRT backend loads plugin libraries with
 * --backend-config=tensorrt,plugins=<lib.so>, which only dlopen()s them; libflexiq_plugins.so
 * registers nothing on its own (its creators are handed out by getCreators, which
 * IPluginRegistry::loadLibrary calls), so this library is the one listed there, and its load-time
 * constructor asks the registry to load libflexiq_plugins.so.
 *
 * Which library: $FLEXIQ_PLUGIN_LIB, else libflexiq_plugins.so in this library's own folder.
 * Build it against the TensorRT headers and libnvinfer of the Triton server (build_register.sh):
 * the registry's interface must match the TensorRT that runs it.
 */
#include <NvInferRuntime.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace
{

std::string flexiqPluginPath()
{
    if (char const* env = std::getenv("FLEXIQ_PLUGIN_LIB"))
    {
        return env;
    }
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&flexiqPluginPath), &info) != 0 && info.dli_fname != nullptr)
    {
        std::string const self(info.dli_fname);
        auto const slash = self.find_last_of('/');
        return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/libflexiq_plugins.so";
    }
    return "libflexiq_plugins.so";
}

__attribute__((constructor)) void flexiqRegisterPlugins()
{
    std::string const path = flexiqPluginPath();
    nvinfer1::IPluginRegistry* registry = getPluginRegistry();
    if (registry == nullptr)
    {
        std::fprintf(stderr, "[flexiq] no TensorRT plugin registry; %s not loaded\n", path.c_str());
        return;
    }
    if (registry->loadLibrary(path.c_str()) == nullptr)
    {
        std::fprintf(stderr, "[flexiq] the TensorRT registry could not load %s (set FLEXIQ_PLUGIN_LIB)\n", path.c_str());
        return;
    }
    std::fprintf(stderr, "[flexiq] registered the FlexiQ plugins from %s\n", path.c_str());
}

} // namespace
