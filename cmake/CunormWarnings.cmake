# Warning flags shared by every target: -Wall -Wextra as errors for g++ and for the host side of
# nvcc, every nvcc warning as an error, and ptxas told to warn on register spills and local-memory
# use, which --Werror turns into a failed build.
add_library(cunorm_warnings INTERFACE)
target_compile_options(cunorm_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror --Werror=all-warnings
                             -Xptxas=-warn-spills,-warn-lmem-usage --threads=2>)

if(CUNORM_SANITIZE)
  add_library(cunorm_sanitize INTERFACE)
  target_compile_options(cunorm_sanitize INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer>)
  target_link_options(cunorm_sanitize INTERFACE -fsanitize=address,undefined)
  target_link_libraries(cunorm_warnings INTERFACE cunorm_sanitize)
endif()
