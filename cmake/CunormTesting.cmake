# cunorm_discover_tests(<target> <label> [<property> <value>...]): registers every test of a
# GoogleTest program with ctest, under ctest label <label>. Tests are named by their GoogleTest
# names alone: the value-parameterized suites name each case (op, dtypes, shape, affine,
# backend), and CMake's "pretty" names would append gtest's byte dump of the parameter. Typed
# tests keep CMake's names, which give the type (Suite.Test<__half>).
include(GoogleTest)
function(cunorm_discover_tests target label)
  gtest_discover_tests(${target} NO_PRETTY_VALUES DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS ${label} ${ARGN})
endfunction()
