# Project warning set; MLES_WARNINGS_AS_ERRORS turns them into errors (CI does).
function(mles_apply_warnings target)
  target_compile_options(${target} INTERFACE
    -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wno-sign-conversion)
  if(MLES_WARNINGS_AS_ERRORS)
    target_compile_options(${target} INTERFACE -Werror)
  endif()
endfunction()
