# FLEXIQ_CUDA_ARCHS -> CMAKE_CUDA_ARCHITECTURES (SASS for every entry, PTX for the last) and a check
# that every entry has int8/int4 mma.sync m16n8k32 (sm_80+). Call before project() enables CUDA.
# The kernels' own CMakeLists applies the same list per target (plugins/kernels/CMakeLists.txt).

function(flexiq_set_cuda_architectures)
    set(_archs "")
    foreach(_arch IN LISTS FLEXIQ_CUDA_ARCHS)
        if(NOT _arch MATCHES "^[0-9]+$")
            message(FATAL_ERROR "FLEXIQ_CUDA_ARCHS: '${_arch}' is not an SM number such as 86")
        endif()
        if(_arch LESS 80)
            message(FATAL_ERROR "FLEXIQ_CUDA_ARCHS: sm_${_arch} has no int8/int4 mma.sync m16n8k32 (need >= 80)")
        endif()
        list(APPEND _archs "${_arch}-real")
    endforeach()
    list(GET FLEXIQ_CUDA_ARCHS -1 _last)
    list(APPEND _archs "${_last}-virtual")
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
        set(CMAKE_CUDA_ARCHITECTURES "${_archs}" CACHE STRING "derived from FLEXIQ_CUDA_ARCHS")
    endif()
endfunction()
