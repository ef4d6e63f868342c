# Finds the TensorRT public headers (compile-only dependency; the plugin never links TensorRT).
# Search order: TensorRT_ROOT (cache or env) -> system include paths -> third_party/tensorrt_headers
# (filled by scripts/fetch_trt_headers.sh from the kernel-lens wheel, docs/design.md §6).
# Defines TensorRTHeaders_FOUND, TensorRTHeaders_INCLUDE_DIR, TensorRTHeaders_VERSION and the
# INTERFACE target TensorRT::headers.

set(_trt_hints "")
if(DEFINED TensorRT_ROOT)
    list(APPEND _trt_hints "${TensorRT_ROOT}")
endif()
if(DEFINED ENV{TensorRT_ROOT})
    list(APPEND _trt_hints "$ENV{TensorRT_ROOT}")
endif()

find_path(TensorRTHeaders_INCLUDE_DIR NvInferRuntime.h
    HINTS ${_trt_hints}
    PATH_SUFFIXES include include/tensorrt)
if(NOT TensorRTHeaders_INCLUDE_DIR)
    find_path(TensorRTHeaders_INCLUDE_DIR NvInferRuntime.h
        PATHS "${PROJECT_SOURCE_DIR}/third_party/tensorrt_headers"
        NO_DEFAULT_PATH)
endif()

if(TensorRTHeaders_INCLUDE_DIR AND EXISTS "${TensorRTHeaders_INCLUDE_DIR}/NvInferVersion.h")
    file(STRINGS "${TensorRTHeaders_INCLUDE_DIR}/NvInferVersion.h" _trt_ver_lines
        REGEX "^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)? [0-9]+")
    foreach(_part MAJOR MINOR PATCH)
        string(REGEX MATCH "_${_part}(_ENTERPRISE)? ([0-9]+)" _m "${_trt_ver_lines}")
        set(_trt_${_part} "${CMAKE_MATCH_2}")
    endforeach()
    set(TensorRTHeaders_VERSION "${_trt_MAJOR}.${_trt_MINOR}.${_trt_PATCH}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TensorRTHeaders
    REQUIRED_VARS TensorRTHeaders_INCLUDE_DIR
    VERSION_VAR TensorRTHeaders_VERSION
    REASON_FAILURE_MESSAGE "set TensorRT_ROOT to a TensorRT SDK or run scripts/fetch_trt_headers.sh")

if(TensorRTHeaders_FOUND AND NOT TARGET TensorRT::headers)
    add_library(TensorRT::headers INTERFACE IMPORTED)
    target_include_directories(TensorRT::headers SYSTEM INTERFACE "${TensorRTHeaders_INCLUDE_DIR}")
endif()
mark_as_advanced(TensorRTHeaders_INCLUDE_DIR)
