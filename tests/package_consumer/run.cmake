# cmake -P script: install BUILD_DIR into WORK_DIR/prefix, configure and build SOURCE_DIR
# against it, run the consumer, then build and run EXAMPLES_DIR the same way. Any failing step
# fails the test.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${result}):\n${out}\n${err}")
  endif()
endfunction()
file(REMOVE_RECURSE "${WORK_DIR}")
step(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
step(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
step(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
step(${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${WORK_DIR}/prefix/lib" "${WORK_DIR}/build/consumer_c")
# The examples of examples/, built as a user's project builds them, must build and run.
step(${CMAKE_COMMAND} -S "${EXAMPLES_DIR}" -B "${WORK_DIR}/examples" "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
     -DCUNORM_EXAMPLES_WARNINGS_AS_ERRORS=ON)
step(${CMAKE_COMMAND} --build "${WORK_DIR}/examples")
foreach(example layer_norm batch_norm_training)
  step(${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${WORK_DIR}/prefix/lib" "${WORK_DIR}/examples/${example}")
endforeach()
