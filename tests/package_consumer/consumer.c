/* Uses the installed library from C99: checks that the CMake package, the header and the
 * library agree on the version, then normalizes one row on the SIMT backend and checks it. */
#include <cunorm/cunorm.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  cunormHandle_t handle = NULL;
  float x[4] = {1.0f, 2.0f, 3.0f, 4.0f}, y[4] = {0}, mean = 0.0f;
  void* d = NULL;
  char header_version[32];
  snprintf(header_version, sizeof header_version, "%d.%d.%d", CUNORM_VERSION_MAJOR, CUNORM_VERSION_MINOR,
           CUNORM_VERSION_PATCH);
  if (strcmp(header_version, CUNORM_PACKAGE_VERSION) != 0 || cunormGetVersion() != CUNORM_VERSION) {
    fprintf(stderr, "version: package %s, header %s, library %d\n", CUNORM_PACKAGE_VERSION, header_version,
            cunormGetVersion());
    return 5;
  }
  if (cunormCreate(&handle, CUNORM_BACKEND_SIMT) != CUNORM_STATUS_SUCCESS) return 1;
  if (cunormMalloc(handle, &d, sizeof x + sizeof y) != CUNORM_STATUS_SUCCESS) return 2;
  cunormMemcpyToDevice(handle, d, x, sizeof x);
  if (cunormLayerNormForward(handle, 1, 4, CUNORM_FLOAT32, CUNORM_FLOAT32, d, NULL, NULL, 0.0f, (float*)d + 4, &mean,
                             NULL) != CUNORM_STATUS_SUCCESS) {
    fprintf(stderr, "%s\n", cunormGetLastErrorMessage(handle));
    return 3;
  }
  cunormMemcpyToHost(handle, y, (float*)d + 4, sizeof y);
  cunormFree(handle, d);
  cunormDestroy(handle);
  printf("mean %g y %g %g %g %g\n", mean, y[0], y[1], y[2], y[3]);
  return fabsf(mean - 2.5f) < 1e-6f && fabsf(y[0] + 1.3416408f) < 1e-5f ? 0 : 4;
}
