# Warning flags shared by every target: -Wall -Wextra as errors for g++ and for the host side of
# nvcc, every nvcc warning as an error, and ptxas told to warn on register spills and local-memory
# use, which --Werror turns into a failed build.
add_library(cunorm_warnings INTERFACE)
target_compile_options(cunorm_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror --Werror=all-warnings
                             -Xptxas=-warn-spills,-warn-lmem-usage --threads=2>)

# Sanitizers (CUNORM_SANITIZER, from CUNORM_SANITIZE in the top CMakeLists.txt) reach every target
# through cunorm_warnings. ThreadSanitizer instruments everything but the SIMT engine itself: the
# engine's scheduler state is shared by the fibers of one OS thread, which TSan would take for
# threads racing; the engine instead tells TSan about fibers and barriers (sanitizer_hooks.hpp).
if(CUNORM_SANITIZER STREQUAL "address")
  add_library(cunorm_sanitize INTERFACE)
  target_compile_options(cunorm_sanitize INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer>)
  target_link_options(cunorm_sanitize INTERFACE -fsanitize=address,undefined)
  target_link_libraries(cunorm_warnings INTERFACE cunorm_sanitize)
elseif(CUNORM_SANITIZER STREQUAL "thread")
  add_library(cunorm_sanitize INTERFACE)
  target_compile_options(cunorm_sanitize INTERFACE
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<NOT:$<BOOL:$<TARGET_PROPERTY:CUNORM_TSAN_UNINSTRUMENTED>>>>:-fsanitize=thread -fno-omit-frame-pointer>)
  target_link_options(cunorm_sanitize INTERFACE -fsanitize=thread)
  target_link_libraries(cunorm_warnings INTERFACE cunorm_sanitize)
endif()

# Coverage (CUNORM_COVERAGE) reaches every target the same way. Counters are plain increments
# (atomic ones made the run 3x slower): .ci/run runs the coverage build's tests with one engine
# worker thread (CUNORM_SIMT_WORKERS=1), so kernel code is counted from one OS thread; the few tests
# that call the library from several host threads may lose increments, which can make gcov derive
# negative branch counts, lines scripts/coverage.sh skips.
if(CUNORM_COVERAGE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(FATAL_ERROR "CUNORM_COVERAGE needs GCC (gcov), got ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_library(cunorm_coverage INTERFACE)
  target_compile_options(cunorm_coverage INTERFACE $<$<COMPILE_LANGUAGE:CXX>:--coverage -fprofile-update=single>)
  target_link_options(cunorm_coverage INTERFACE --coverage)
  target_link_libraries(cunorm_warnings INTERFACE cunorm_coverage)
endif()
