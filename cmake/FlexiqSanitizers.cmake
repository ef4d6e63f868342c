# FLEXIQ_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on every C++ translation unit
# and C++ link of this build (CUDA device code and nvcc's host stubs are not instrumented). Any
# report aborts the process (-fno-sanitize-recover=all), so a test that passes had none.
# Used for the build-asan tree of scripts/build_plugins.sh --hardening (docs/cpp.md).

set(FLEXIQ_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    CACHE INTERNAL "compile and link flags of FLEXIQ_SANITIZE")

#! Adds the sanitizer flags to all C++ compiles and C++ links of the current directory and below.
function(flexiq_enable_sanitizers)
    foreach(_flag IN LISTS FLEXIQ_SANITIZER_FLAGS)
        add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${_flag}>)
        add_link_options($<$<LINK_LANGUAGE:CXX>:${_flag}>)
    endforeach()
    message(STATUS "FlexiQ: ASan + UBSan on C++ code (${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION})")
endfunction()
