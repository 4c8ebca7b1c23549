# MLES_SANITIZE="address,undefined" (or "thread") instruments every target that links mles_options.
function(mles_apply_sanitizers target)
  if(MLES_SANITIZE)
    target_compile_options(${target} INTERFACE -fsanitize=${MLES_SANITIZE} -fno-omit-frame-pointer
                                               -fno-sanitize-recover=all)
    target_link_options(${target} INTERFACE -fsanitize=${MLES_SANITIZE})
    if(MLES_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # g++ 12 warns that Asio's atomic_thread_fence is not instrumented by TSan.
      target_compile_options(${target} INTERFACE -Wno-error=tsan -Wno-tsan)
    endif()
  endif()
endfunction()
