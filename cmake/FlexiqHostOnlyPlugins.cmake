# Host-only plugin objects for sanitizer trees (FLEXIQ_KERNELS_LIBRARY set; docs/cpp.md).
#
# A sanitizer tree needs the plugin's host code instrumented, not its device code, and compiling
# the CUDA kernels a second time costs CI minutes. So here the plugin host sources and the kernels'
# host C++ files are compiled (with the tree's flags, e.g. ASan + UBSan), and only the CUDA objects
# come from the libflexiq_kernels.a of a normal build of the same sources. The object library is
# named like plugins/CMakeLists.txt's, so tests/cpp/host links it unchanged. Included at top level
# (not in a function) so the CUDAToolkit variables reach tests/cpp/host.

if(NOT EXISTS "${FLEXIQ_KERNELS_LIBRARY}")
    message(FATAL_ERROR "FLEXIQ_KERNELS_LIBRARY='${FLEXIQ_KERNELS_LIBRARY}' does not exist: build the normal tree "
        "first (scripts/build_plugins.sh) and pass its plugins/kernels/libflexiq_kernels.a")
endif()
find_package(TensorRTHeaders REQUIRED)
find_package(CUDAToolkit REQUIRED)

set(_flexiq_plugins_dir "${PROJECT_SOURCE_DIR}/plugins")
file(GLOB _flexiq_host_sources CONFIGURE_DEPENDS
    "${_flexiq_plugins_dir}/common/*.cpp"
    "${_flexiq_plugins_dir}/flexiq*Plugin/*.cpp"
    "${_flexiq_plugins_dir}/kernels/*.cpp")
# The kernels' C ABI test library is not part of the plugin.
list(FILTER _flexiq_host_sources EXCLUDE REGEX "Capi\\.cpp$")
file(GLOB _flexiq_plugin_dirs LIST_DIRECTORIES true "${_flexiq_plugins_dir}/flexiq*Plugin")

add_library(flexiq_kernels_prebuilt STATIC IMPORTED)
set_target_properties(flexiq_kernels_prebuilt PROPERTIES IMPORTED_LOCATION "${FLEXIQ_KERNELS_LIBRARY}")

# Objects are linked whole, before the archive: the archive then only supplies the CUDA objects.
add_library(flexiq_plugin_objects OBJECT ${_flexiq_host_sources})
target_include_directories(flexiq_plugin_objects PUBLIC
    "${_flexiq_plugins_dir}/common" "${_flexiq_plugins_dir}/kernels" ${_flexiq_plugin_dirs})
target_link_libraries(flexiq_plugin_objects PUBLIC TensorRT::headers flexiq_kernels_prebuilt CUDA::cudart)
# Same numeric flags as the normal tree (docs/design.md §2).
target_compile_options(flexiq_plugin_objects PRIVATE -Wall -Wextra -ffp-contract=off)
message(STATUS "FlexiQ: host-only plugin objects, CUDA kernels from ${FLEXIQ_KERNELS_LIBRARY}")
