/* The smallest complete cunorm program, in C99: LayerNorm forward and backward of a 2 x 4 batch
 * on whatever backend is usable (a GPU, else the SIMT engine, which runs the same kernels on the
 * CPU), with every status checked. Build against an installed cunorm (PREFIX):
 *
 *   cc -std=c99 layer_norm.c -I$PREFIX/include -I/usr/local/cuda/include \
 *      -L$PREFIX/lib -lcunorm -Wl,-rpath,$PREFIX/lib -o layer_norm
 *
 * or with CMake: find_package(cunorm) and target_link_libraries(app PRIVATE cunorm::cunorm)
 * (examples/CMakeLists.txt). */
#include <cunorm/cunorm.h>
#include <stdio.h>

/* Prints the failing call's status and the library's one-sentence reason, and fails. */
static int failed(cunormHandle_t handle, const char* call, cunormStatus_t status) {
  fprintf(stderr, "%s: %s: %s\n", call, cunormGetStatusString(status), cunormGetLastErrorMessage(handle));
  return 1;
}

#define CHECK(handle, call)                                                      \
  do {                                                                           \
    const cunormStatus_t status_ = (call);                                       \
    if (status_ != CUNORM_STATUS_SUCCESS) return failed(handle, #call, status_); \
  } while (0)

int main(void) {
  enum { kRows = 2, kCols = 4, kCount = kRows * kCols };
  const float x[kCount] = {1, 2, 3, 4, -1, 0, 0, 5};
  const float dy[kCount] = {1, 0, 0, 0, 0, 1, 0, 0};
  float y[kCount], dx[kCount], mean[kRows], rstd[kRows];
  cunormHandle_t handle = NULL;
  cunormBackend_t backend = CUNORM_BACKEND_AUTO;
  float* memory = NULL; /* device memory on a GPU, host memory on the SIMT engine */

  if (cunormGetVersion() != CUNORM_VERSION) {
    fprintf(stderr, "cunorm header %d, library %d\n", CUNORM_VERSION, cunormGetVersion());
    return 1;
  }
  CHECK(NULL, cunormCreate(&handle, CUNORM_BACKEND_AUTO));
  CHECK(handle, cunormGetBackend(handle, &backend));
  printf("cunorm %d.%d.%d on the %s backend\n", CUNORM_VERSION_MAJOR, CUNORM_VERSION_MINOR, CUNORM_VERSION_PATCH,
         backend == CUNORM_BACKEND_CUDA ? "CUDA" : "SIMT");

  /* x, y, dy, dx, mean, rstd in one allocation; gamma and beta NULL (1 and 0). */
  CHECK(handle, cunormMalloc(handle, (void**)&memory, (4 * kCount + 2 * kRows) * sizeof(float)));
  float* d_x = memory;
  float* d_y = d_x + kCount;
  float* d_dy = d_y + kCount;
  float* d_dx = d_dy + kCount;
  float* d_mean = d_dx + kCount;
  float* d_rstd = d_mean + kRows;
  CHECK(handle, cunormMemcpyToDevice(handle, d_x, x, sizeof x));
  CHECK(handle, cunormMemcpyToDevice(handle, d_dy, dy, sizeof dy));
  CHECK(handle, cunormLayerNormForward(handle, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x, NULL, NULL, 1e-5f,
                                       d_y, d_mean, d_rstd));
  CHECK(handle, cunormLayerNormBackward(handle, kRows, kCols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_dy, d_x, d_mean, d_rstd,
                                        NULL, d_dx, NULL, NULL));
  CHECK(handle, cunormMemcpyToHost(handle, y, d_y, sizeof y));
  CHECK(handle, cunormMemcpyToHost(handle, dx, d_dx, sizeof dx));
  CHECK(handle, cunormMemcpyToHost(handle, mean, d_mean, sizeof mean));
  CHECK(handle, cunormMemcpyToHost(handle, rstd, d_rstd, sizeof rstd));
  for (int r = 0; r < kRows; ++r) {
    printf("row %d: mean %.4f rstd %.4f y", r, mean[r], rstd[r]);
    for (int c = 0; c < kCols; ++c) printf(" %8.4f", y[r * kCols + c]);
    printf("  dx");
    for (int c = 0; c < kCols; ++c) printf(" %8.4f", dx[r * kCols + c]);
    printf("\n");
  }
  CHECK(handle, cunormFree(handle, memory));
  CHECK(handle, cunormDestroy(handle));
  return 0;
}
