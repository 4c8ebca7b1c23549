# MLES_SANITIZE="address,undefined" (or "thread") instruments every target that links mles_options.
function(mles_apply_sanitizers target)
  if(MLES_SANITIZE)
    target_compile_options(${target} INTERFACE -fsanitize=${MLES_SANITIZE} -fno-omit-frame-pointer
                                               -fno-sanitize-recover=all)
    target_link_options(${target} INTERFACE -fsanitize=${MLES_SANITIZE})
  endif()
endfunction()
