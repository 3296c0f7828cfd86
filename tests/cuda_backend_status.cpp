// Says in one line, before ctest runs, whether this machine can run the CUDA-backend test cases
// and, if not, why (the reason each skipped case gives): scripts/test.sh prints it.
#include <cstdio>

#include "cunorm/cunorm.h"

int main() {
  cunormHandle_t handle = nullptr;
  if (cunormCreate(&handle, CUNORM_BACKEND_CUDA) == CUNORM_STATUS_SUCCESS) {
    std::printf("CUDA backend usable: the CUDA test cases run on this machine's GPU.\n");
    return cunormDestroy(handle) == CUNORM_STATUS_SUCCESS ? 0 : 1;
  }
  std::printf("CUDA backend not usable here: %s. The CUDA test cases will be skipped, each with this reason.\n",
              cunormGetLastErrorMessage(nullptr));
  return 0;
}
