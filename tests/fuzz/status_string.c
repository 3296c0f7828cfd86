/* cunormGetStatusString called from C, where any int converts to cunormStatus_t: how the API fuzzer
   passes values outside the enum, which the same cast would make undefined behaviour in C++. */
#include "cunorm/cunorm.h"

const char* fuzz_status_string(int value);

const char* fuzz_status_string(int value) { return cunormGetStatusString((cunormStatus_t)value); }
