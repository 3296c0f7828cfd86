// Copy kernels with known answers for the performance model's test (test_performance_model.py):
// grid-stride copies, one element per thread per iteration (the loop is not unrolled, so one
// iteration's loads are all a warp has in flight), of 16, 8, 4 and 2 bytes; the 16-byte copy with N
// dependent FMAs on each value (issue-bound for large N); and the 16-byte copy with 48 KiB of
// static shared memory per 128-thread block (4 resident blocks per SM on sm_90: 25% occupancy);
// and a row kernel with a staging loop (the streaming loop's choice).
// Compiled by the test with nvcc -cubin for sm_90; never linked into the library.
#include <cstdint>

template <typename T>
__global__ void __launch_bounds__(256) copy(const T* __restrict__ x, T* __restrict__ y, std::int64_t n) {
#pragma unroll 1
  for (std::int64_t i = blockIdx.x * 256LL + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * 256) {
    y[i] = x[i];
  }
}
template __global__ void copy<float4>(const float4*, float4*, std::int64_t);
template __global__ void copy<float2>(const float2*, float2*, std::int64_t);
template __global__ void copy<float>(const float*, float*, std::int64_t);
template __global__ void copy<unsigned short>(const unsigned short*, unsigned short*, std::int64_t);

template <int N>
__global__ void __launch_bounds__(256) fma_copy(const float4* __restrict__ x, float4* __restrict__ y, std::int64_t n) {
#pragma unroll 1
  for (std::int64_t i = blockIdx.x * 256LL + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * 256) {
    float4 v = x[i];
#pragma unroll
    for (int k = 0; k < N; ++k) {
      v.x = fmaf(v.x, 1.0001f, 0.5f);
      v.y = fmaf(v.y, 1.0001f, 0.5f);
      v.z = fmaf(v.z, 1.0001f, 0.5f);
      v.w = fmaf(v.w, 1.0001f, 0.5f);
    }
    y[i] = v;
  }
}
template __global__ void fma_copy<4>(const float4*, float4*, std::int64_t);
template __global__ void fma_copy<64>(const float4*, float4*, std::int64_t);
template __global__ void fma_copy<256>(const float4*, float4*, std::int64_t);

__global__ void __launch_bounds__(128)
    copy_quarter_occupancy(const float4* __restrict__ x, float4* __restrict__ y, std::int64_t n) {
  __shared__ float4 pad[3072];  // 48 KiB: limits residency, touched so that it is kept
  pad[threadIdx.x] = make_float4(0.f, 0.f, 0.f, 0.f);
  __syncthreads();
#pragma unroll 1
  for (std::int64_t i = blockIdx.x * 128LL + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * 128) {
    float4 v = x[i];
    v.x += pad[(threadIdx.x + 1) % 128].x;
    y[i] = v;
  }
}

// A row kernel's shape: a scale staged into shared memory once per block (scalar loads), then rows
// in a grid-stride loop, each swept by an inner loop over its 16-byte packs: the streaming loop is
// the inner one (performance_model.streaming_loop), not the staging loop.
__global__ void __launch_bounds__(256) staged_rows_copy(const float* __restrict__ scale, const float4* __restrict__ x,
                                                        float4* __restrict__ y, std::int64_t rows, int packs) {
  __shared__ float staged[4096];
#pragma unroll 1
  for (int j = threadIdx.x; j < 4 * packs && j < 4096; j += 256) staged[j] = scale[j];
  __syncthreads();
#pragma unroll 1
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
#pragma unroll 1
    for (int p = threadIdx.x; p < packs; p += 256) {
      float4 v = x[r * packs + p];
      v.x *= staged[(4 * p) % 4096];
      y[r * packs + p] = v;
    }
  }
}
